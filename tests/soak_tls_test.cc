// Soak test over TLS with --auth-file: the plaintext soak's server, limits
// and well-behaved clients (soak_run.h), authenticated, next to hostile
// clients that do not authenticate or never finish a handshake.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"
#include "client/tls.h"
#include "soak_run.h"
#include "soak_support.h"
#include "soak_well_behaved.h"
#include "test_ca.h"

namespace gradientd::soak {
namespace {

// The same server over TLS with --auth-file: authenticated producers and
// queriers alongside clients that complete the handshake but never
// authenticate (their requests, aimed at the producers' series, must change
// nothing), clients with a wrong token, connections that never start a
// handshake, handshakes trickled a byte at a time, and plaintext clients.
// Run with SOAK_TLS=1 (the ctest entry soak_tls_test does).
struct TlsHostile {
  uint16_t port;
  std::string address;
  client::ConnectOptions tls;  // trusts the server, no token
  const Producers* producers;
  Problems* problems;
  Tally* tally;

  v1::Request IngestToAProducer(std::mt19937_64& rng) const {
    v1::Request r;
    r.mutable_ingest()->set_series((*producers)[rng() % producers->size()]->spec.series);
    for (int i = 0; i < 50; ++i) {
      r.mutable_ingest()->add_x(1e6 + i);
      r.mutable_ingest()->add_y(-1e6);
    }
    return r;
  }

  // TLS, no Hello: every request is UNAUTHENTICATED and changes nothing.
  void Unauthenticated(std::mt19937_64& rng) const {
    std::unique_ptr<client::Client> c;
    if (Status s = client::Client::Connect(address, tls, &c); !s.ok()) {
      return tally->Count("unauthenticated", "could not connect (at the limit)");
    }
    for (int i = 0; i < 5; ++i) {
      v1::Request ingest = IngestToAProducer(rng);
      v1::Response r;
      if (Status s = c->Call(ingest, &r); !s.ok()) {
        return tally->Count("unauthenticated", "closed (at the limit)");
      }
      if (IsRefusal(r)) return tally->Count("unauthenticated", "refused at the limit");
      if (!r.has_error() || r.error().code() != v1::Error::UNAUTHENTICATED) {
        return problems->Add("unauthenticated: an ingest without a Hello got " +
                             r.ShortDebugString());
      }
    }
    tally->Count("unauthenticated", "ingests refused as UNAUTHENTICATED", 5);
  }

  void WrongToken(std::mt19937_64&) const {
    client::ConnectOptions wrong = tls;
    wrong.token = "not-a-token-the-server-knows-0123456789";
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address, wrong, &c);
    if (s.code() == StatusCode::kUnauthenticated) {
      return tally->Count("wrong token", "refused as UNAUTHENTICATED");
    }
    if (s.ok()) return problems->Add("wrong token: the Hello was accepted");
    tally->Count("wrong token", "could not connect (at the limit)");
  }

  // Connects and never sends a byte: closed within --request-timeout (plus
  // patience), never served.
  void Handshakeless(std::mt19937_64&) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("handshake-less: cannot connect");
    const auto since = Clock::now();
    std::string reply;
    if (s.Read(&reply, since + kRequestTimeout + kPatience) != RawSocket::End::kClosed) {
      return problems->Add("handshake-less: not closed within " +
                           std::to_string(Millis(kRequestTimeout + kPatience)) + " ms");
    }
    tally->Count("handshake-less", "closed");
  }

  // A TLS record header and then random bytes, one every quarter of
  // --request-timeout: the handshake's deadline runs from its first byte,
  // so it is closed within about the timeout however long it trickles.
  void Trickle(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("trickler: cannot connect");
    const std::string header("\x16\x03\x01\x02\x00", 5);  // handshake, 512 bytes
    const auto since = Clock::now();
    for (int i = 0; i < 400; ++i) {
      const char byte = i < 5 ? header[static_cast<std::size_t>(i)] : static_cast<char>(rng());
      if (s.SendSome(std::string_view(&byte, 1)) < 0) break;
      std::string reply;
      if (s.Read(&reply, Clock::now() + kRequestTimeout / 4) == RawSocket::End::kClosed) break;
      if (Clock::now() - since > kRequestTimeout + kPatience) {
        return problems->Add("trickler: a handshake trickled for " +
                             std::to_string(Millis(Clock::now() - since)) + " ms stays open");
      }
    }
    tally->Count("tricklers", "closed");
  }

  // A plaintext request to the TLS server: the handshake fails, closed.
  void Plaintext(std::mt19937_64&) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("plaintext: cannot connect");
    v1::Request list;
    list.mutable_list();
    s.SendAll(Framed(list), Clock::now() + kPatience);
    std::string reply;
    if (s.Read(&reply, Clock::now() + kRequestTimeout + kPatience) != RawSocket::End::kClosed) {
      return problems->Add("plaintext: not closed");
    }
    tally->Count("plaintext", "closed");
  }
};

constexpr const char* kProduceToken = "soak-producer-token-5f1e9a7c3b2d4e6f";
constexpr const char* kQueryToken = "soak-querier-token-8a0b2c4d6e1f3a5b";

// A CA, the server's certificate and key and the auth file in `dir`; the
// server's flags for them after the limits.
std::vector<std::string> WriteCredentials(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  testing::TestCa ca("gradientd soak CA");
  ca.WriteCertificate(dir + "/ca.pem");
  ca.Issue("gradientd soak server", "IP:127.0.0.1,DNS:localhost", dir + "/server.pem",
           dir + "/server.key");
  {
    std::ofstream auth(dir + "/auth");
    auth << "producers produce " << kProduceToken << "\nqueriers query " << kQueryToken << "\n";
  }
  std::filesystem::permissions(
      dir + "/auth", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::vector<std::string> args = LimitFlags();
  args.insert(args.end(), {"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key",
                           "--auth-file", dir + "/auth"});
  return args;
}

// The queriers and the hostile loops for `duration`.
void RunTlsHostileLoops(SoakRun& run, const TlsHostile& hostile, std::chrono::seconds duration) {
  run.StartQueriers();
  using Action = void (TlsHostile::*)(std::mt19937_64&) const;
  const std::pair<Action, int> loops[] = {
      // Several handshake-less and trickling clients at once, as an
      // attacker holding descriptors would.
      {&TlsHostile::Unauthenticated, 2}, {&TlsHostile::WrongToken, 1},
      {&TlsHostile::Handshakeless, 6},   {&TlsHostile::Trickle, 4},
      {&TlsHostile::Plaintext, 1},
  };
  for (const auto& loop : loops) {
    const Action action = loop.first;
    for (int copy = 0; copy < loop.second; ++copy) {
      run.StartLoop([&hostile, action](std::mt19937_64& rng) { (hostile.*action)(rng); }, 5ms, 20);
    }
  }
  Pause(duration, run.stop);
}

void ExpectEveryKindGotThrough(const Tally& tally) {
  for (const char* kind : {"handshake-less", "tricklers", "plaintext"}) {
    EXPECT_GT(tally.Get(kind, "closed"), 0u) << kind;
  }
  EXPECT_GT(tally.Get("unauthenticated", "ingests refused as UNAUTHENTICATED"), 0u);
  EXPECT_GT(tally.Get("wrong token", "refused as UNAUTHENTICATED"), 0u);
}

TEST(SoakTest, OverTlsWithAuthUnauthenticatedAndHandshakelessClientsDoNotHurtOthers) {
  if (std::getenv("SOAK_TLS") == nullptr) {
    GTEST_SKIP() << "the TLS + auth variant runs with SOAK_TLS=1 (ctest: soak_tls_test)";
  }
  ::signal(SIGPIPE, SIG_IGN);
  const auto duration = SoakDuration();
  const std::string dir = ::testing::TempDir() + "soak_tls_" + std::to_string(::getpid());
  ServerProcess server;
  ASSERT_EQ(server.Start(GRADIENTD_BINARY, WriteCredentials(dir)), "");
  const auto watchdog_limit = duration + 6 * kPatience;
  Watchdog watchdog(server.pid(), watchdog_limit);

  client::ConnectOptions tls;
  client::TlsOptions trust;
  trust.ca_file = dir + "/ca.pem";
  ASSERT_TRUE(client::MakeClientTlsContext(trust, &tls.tls).ok());
  client::ConnectOptions produce = tls, query = tls;
  produce.token = kProduceToken;
  query.token = kQueryToken;
  SoakRun run;
  ASSERT_NO_FATAL_FAILURE(run.ConnectWellBehaved(server.address(), produce, query));

  std::cout << "soak (TLS + auth): " << duration.count() << " s (SOAK_SECONDS), seed " << run.seed
            << ", gradientd on " << server.address() << "\n";
  const bool producing = run.StartProducers();
  const TlsHostile hostile{server.port(),  server.address(), tls,
                           &run.producers, &run.problems,    &run.tally};
  if (producing) RunTlsHostileLoops(run, hostile, duration);
  run.StopAndJoin();

  // A fresh authenticated connection is answered (retrying a refusal while
  // the server closes the hostile ones), and every acknowledged point was
  // counted exactly once: none of the unauthenticated ingests got in.
  std::unique_ptr<client::Client> fresh;
  int attempts = 0;
  const std::string fresh_problem =
      AnswerFreshConnection(server.address(), query, /*retry_any=*/true, &fresh, &attempts);
  EXPECT_EQ(fresh_problem, "") << "a fresh connection after the soak was not answered";
  if (fresh_problem.empty()) ExpectExactTotals(run.producers, *fresh);
  fresh.reset();

  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the run took longer than " << Seconds(watchdog_limit) << " s";
  Clock::duration stop_took{};
  EXPECT_EQ(server.Terminate(kPatience, &stop_took), "");
  if (producing) ExpectEveryKindGotThrough(run.tally);
  EXPECT_EQ(run.problems.count(), 0u) << run.problems.Report();
  std::cout << "soak (TLS + auth): " << run.PointsAcked() << " points acknowledged\n";
  for (const char* kind :
       {"unauthenticated", "wrong token", "handshake-less", "tricklers", "plaintext"}) {
    std::cout << "soak (TLS + auth): hostile " << run.tally.Line(kind) << "\n";
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradientd::soak
