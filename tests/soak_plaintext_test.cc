// Soak test over plaintext: the real gradientd binary, for a bounded time (SOAK_SECONDS,
// default GRADIENTD_SOAK_DEFAULT_SECONDS), loopback only, with tight limits.
// Well-behaved exactly-once producers (pipelining, each on its own series)
// and queriers connect first and keep their connections; alongside them,
// hostile clients loop for the whole run: garbage senders, mid-frame
// disconnecters, stallers, connection hoarders (up to the limit and beyond,
// reading nothing), clients that pipeline and never read, and oversize
// frames. Afterwards every acknowledged point is counted exactly once (n
// exact; the least-squares line equal to an exact integer reference), the
// server's peak RSS is within a bound derived from its limits, a fresh
// connection is answered, and SIGTERM ends it with exit status 0.
//
// No speed or latency is asserted: the only timing checks are lower bounds
// (the server must not close a connection before its timeout), which a slow
// machine cannot break. Every wait is bounded, and a watchdog SIGKILLs the
// server if the run overstays, so a hung server fails the test instead of
// hanging it.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"
#include "soak_run.h"
#include "soak_support.h"
#include "soak_well_behaved.h"

namespace gradientd::soak {
namespace {

// ---- Hostile clients -------------------------------------------------------

struct Hostile {
  uint16_t port;
  const Producers* producers;
  const std::atomic<bool>* stop;
  Problems* problems;
  Tally* tally;

  // A connection a hostile client holds, and when it started waiting on it.
  struct Opened {
    RawSocket socket;
    Clock::time_point since;
  };

  // A valid ingest frame for a well-behaved producer's series: if any of it
  // were applied, that series' exact totals would be off.
  std::string IngestFrame(std::mt19937_64& rng) const {
    v1::Request r;
    r.set_id(rng() % 1000 + 1);
    r.mutable_ingest()->set_series((*producers)[rng() % producers->size()]->spec.series);
    const int n = 1 + static_cast<int>(rng() % 500);
    for (int i = 0; i < n; ++i) {
      r.mutable_ingest()->add_x(1e6 + i);
      r.mutable_ingest()->add_y(-1e6);
    }
    return Framed(r);
  }

  // Reads until the server closes; false (with a problem) if it does not
  // within kPatience.
  bool ReadToClose(RawSocket& s, std::string* bytes, const std::string& kind) const {
    if (s.Read(bytes, Clock::now() + kPatience) == RawSocket::End::kClosed) return true;
    problems->Add(kind + ": the server did not close the connection within " +
                  std::to_string(Millis(kPatience)) + " ms");
    return false;
  }

  // Random bytes then end of input: the server may answer whatever parses
  // (well-formed responses only) and must then close. Or a frame whose
  // body cannot be a Request (a tag varint longer than 64 bits): exactly one
  // INVALID_ARGUMENT error, then the close.
  void Garbage(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("garbage: cannot connect");
    const bool random = rng() % 2 == 0;
    std::string bytes;
    if (random) {
      bytes.resize(1 + rng() % 4096);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      const std::string body(11 + rng() % 50, '\xff');
      bytes = Varint(body.size()) + body;
    }
    const auto sent = s.SendAll(bytes, Clock::now() + kPatience);
    if (sent == RawSocket::SendResult::kTimedOut) {
      return problems->Add("garbage: the server stopped reading without closing");
    }
    if (random) s.ShutdownWrite();
    std::string reply;
    if (!ReadToClose(s, &reply, "garbage")) return;
    std::vector<v1::Response> responses;
    if (!ParseResponses(reply, &responses)) {
      return problems->Add("garbage: the reply is not well-formed response frames (" +
                           std::to_string(reply.size()) + " bytes)");
    }
    if (responses.size() == 1 && IsRefusal(responses[0])) {
      return tally->Count("garbage", "refused at the limit");
    }
    if (random) {
      return tally->Count("garbage", responses.empty() ? "random bytes, closed silently"
                                                       : "random bytes, answered then closed");
    }
    if (responses.size() != 1 ||
        !IsError(responses[0], v1::Error::INVALID_ARGUMENT, "cannot decode")) {
      return problems->Add("garbage: expected one INVALID_ARGUMENT error, got " +
                           std::to_string(responses.size()) + " response(s)" +
                           (responses.empty() ? "" : ": " + responses[0].ShortDebugString()));
    }
    tally->Count("garbage", "undecodable frame, error then close");
  }

  // A valid ingest frame cut short, then a close or a reset.
  void MidFrame(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("mid-frame: cannot connect");
    const std::string frame = IngestFrame(rng);
    const std::size_t cut = 1 + rng() % (frame.size() - 1);
    if (s.SendAll(std::string_view(frame).substr(0, cut), Clock::now() + kPatience) ==
        RawSocket::SendResult::kTimedOut) {
      return problems->Add("mid-frame: the server stopped reading without closing");
    }
    if (rng() % 2 == 0) {
      s.Close();
      tally->Count("mid-frame", "closed");
    } else {
      s.Reset();
      tally->Count("mid-frame", "reset");
    }
  }

  // Several connections each send part of a frame and wait: the server must
  // close each, without answering, once --request-timeout has passed (never
  // before).
  void Stall(std::mt19937_64& rng) const {
    std::vector<Opened> stalled;
    for (int i = 0; i < kStallersAtOnce; ++i) {
      RawSocket s = RawSocket::Connect(port);
      if (!s.valid()) return problems->Add("staller: cannot connect");
      const std::string frame = IngestFrame(rng);
      const std::size_t cut = 1 + rng() % (frame.size() - 1);
      const auto since = Clock::now();
      const auto sent = s.SendAll(std::string_view(frame).substr(0, cut), since + kPatience);
      if (sent == RawSocket::SendResult::kTimedOut) {
        problems->Add("staller: the server stopped reading without closing");
        continue;
      }
      if (sent == RawSocket::SendResult::kBroken) {
        tally->Count("stallers", "refused at the limit");  // closed before we were done
        continue;
      }
      stalled.push_back({std::move(s), since});
    }
    for (auto& [socket, since] : stalled) {
      std::string reply;
      if (socket.Read(&reply, since + kRequestTimeout + kPatience) != RawSocket::End::kClosed) {
        problems->Add("staller: not closed within " +
                      std::to_string(Millis(kRequestTimeout + kPatience)) + " ms of stalling");
        continue;
      }
      const auto after = Clock::now() - since;
      std::vector<v1::Response> responses;
      if (!reply.empty()) {
        if (ParseResponses(reply, &responses) && responses.size() == 1 && IsRefusal(responses[0])) {
          tally->Count("stallers", "refused at the limit");
        } else {
          problems->Add("staller: the server answered a partial frame (" +
                        std::to_string(reply.size()) + " bytes)");
        }
        continue;
      }
      if (after < kRequestTimeout) {
        problems->Add("staller: closed after " + std::to_string(Millis(after)) +
                      " ms, before --request-timeout");
        continue;
      }
      tally->Count("stallers", "closed after the request timeout");
    }
  }

  // Opens connections up to the limit and beyond, reads nothing, holds them
  // (sometimes past --idle-timeout), then lets them go. Before letting go,
  // sends each a request to learn its fate: served (answers), refused (the
  // RESOURCE_EXHAUSTED refusal), or closed as idle (only allowed after
  // --idle-timeout). The served ones were all open at once, next to the
  // well-behaved clients, so at most kMaxConnections - kWellBehaved.
  void Hoard(std::mt19937_64& rng) const {
    std::vector<Opened> held;
    for (int i = 0; i < kMaxConnections + kHoardExtra && !*stop; ++i) {
      const auto since = Clock::now();
      RawSocket s = RawSocket::Connect(port);
      if (!s.valid()) return problems->Add("hoarder: cannot connect");
      held.push_back({std::move(s), since});
    }
    // Two rounds in three hold them for less than the idle timeout (the
    // first round always does), the third for longer.
    const bool past_idle = tally->Get("hoarders", "rounds") % 3 == 2;
    const auto hold = past_idle ? kIdleTimeout + std::chrono::milliseconds(500 + rng() % 1500)
                                : std::chrono::milliseconds(500 + rng() % 2500);
    Pause(hold, *stop);
    v1::Request list;
    list.set_id(1);
    list.mutable_list();
    const std::string frame = Framed(list);
    uint64_t served = 0, refused = 0, idle_closed = 0;
    for (auto& [socket, since] : held) {
      const auto asked = Clock::now();
      socket.SendAll(frame, asked + kPatience);  // a refused one may be closed already
      std::string reply;
      if (socket.Read(&reply, asked + kPatience, /*stop_after_frame=*/true) !=
          RawSocket::End::kClosed) {
        problems->Add("hoarder: a held connection neither answered nor closed within " +
                      std::to_string(Millis(kPatience)) + " ms");
        continue;
      }
      std::vector<v1::Response> responses;
      if (reply.empty()) {
        if (asked - since < kIdleTimeout) {
          problems->Add("hoarder: a connection idle for " + std::to_string(Millis(asked - since)) +
                        " ms was closed, before --idle-timeout");
        }
        ++idle_closed;
      } else if (!ParseResponses(reply, &responses) || responses.size() != 1) {
        problems->Add("hoarder: the reply is not one well-formed response (" +
                      std::to_string(reply.size()) + " bytes)");
      } else if (IsRefusal(responses[0])) {
        ++refused;
      } else if (responses[0].has_series_list() && responses[0].id() == 1) {
        ++served;
      } else {
        problems->Add("hoarder: unexpected reply " + responses[0].ShortDebugString());
      }
    }
    if (served > static_cast<uint64_t>(kMaxConnections - kWellBehaved)) {
      problems->Add("hoarder: " + std::to_string(served) + " connections were served at once " +
                    "besides the " + std::to_string(kWellBehaved) + " well-behaved ones, over " +
                    "--max-connections " + std::to_string(kMaxConnections));
    }
    tally->Count("hoarders", "rounds");
    tally->Count("hoarders", "held and served", served);
    tally->Count("hoarders", "refused at the limit", refused);
    tally->Count("hoarders", "closed as idle", idle_closed);
    held.clear();  // let them go
    Pause(std::chrono::milliseconds(500 + static_cast<int64_t>(rng() % 1500)), *stop);
  }

  // Pipelines requests and never reads: the server must stop reading it and,
  // once its responses could not be written for --write-timeout, close it.
  void NonReader(std::mt19937_64&) const {
    RawSocket s = RawSocket::Connect(port, /*receive_buffer=*/4096);
    if (!s.valid()) return problems->Add("non-reader: cannot connect");
    v1::Request list;
    list.set_id(1);
    list.mutable_list();
    // First one request, read, to tell a refusal from being served.
    std::string reply;
    if (s.SendAll(Framed(list), Clock::now() + kPatience) != RawSocket::SendResult::kSent ||
        s.Read(&reply, Clock::now() + kPatience, /*stop_after_frame=*/true) !=
            RawSocket::End::kClosed) {
      return problems->Add("non-reader: no answer to its first request");
    }
    std::vector<v1::Response> responses;
    if (!ParseResponses(reply, &responses) || responses.size() != 1) {
      return problems->Add("non-reader: malformed first reply");
    }
    if (IsRefusal(responses[0])) return tally->Count("non-readers", "refused at the limit");
    if (!responses[0].has_series_list()) {
      return problems->Add("non-reader: first reply " + responses[0].ShortDebugString());
    }
    std::string frames;
    for (int i = 0; i < 1000; ++i) frames += Framed(list);
    const auto start = Clock::now();
    uint64_t sent = 0;
    std::size_t at = 0;
    while (true) {
      const ssize_t n = s.SendSome(std::string_view(frames).substr(at));
      if (n < 0) break;  // closed by the server
      sent += static_cast<uint64_t>(n);
      at = (at + static_cast<std::size_t>(n)) % frames.size();  // frames are all alike
      if (Clock::now() - start > kWriteTimeout + kPatience) {
        return problems->Add(
            "non-reader: still open " + std::to_string(Millis(kWriteTimeout + kPatience)) +
            " ms after it stopped reading (" + std::to_string(sent) + " bytes sent)");
      }
      if (n == 0) std::this_thread::sleep_for(10ms);
    }
    const auto after = Clock::now() - start;
    if (after < kWriteTimeout) {
      return problems->Add("non-reader: closed after " + std::to_string(Millis(after)) +
                           " ms, before --write-timeout");
    }
    tally->Count("non-readers", "closed after the write timeout");
    tally->Max("non-readers", "bytes at most sent before the close", sent);
  }

  // A frame header declaring more than --max-frame-bytes (or a malformed
  // one), maybe with a few body bytes: one error, then the close, without
  // waiting for the body.
  void Oversize(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("oversize: cannot connect");
    const bool malformed = rng() % 4 == 0;
    std::string bytes;
    if (malformed) {
      bytes = std::string(9, '\x80') + '\x7f';  // a varint beyond 64 bits
    } else {
      bytes = Varint(kMaxFrameBytes + 1 + rng() % (uint64_t{1} << (rng() % 40)));
    }
    for (uint64_t i = rng() % 16; i > 0; --i) bytes.push_back(static_cast<char>(rng()));
    if (s.SendAll(bytes, Clock::now() + kPatience) == RawSocket::SendResult::kTimedOut) {
      return problems->Add("oversize: the server stopped reading without closing");
    }
    std::string reply;
    if (!ReadToClose(s, &reply, "oversize")) return;
    std::vector<v1::Response> responses;
    if (!ParseResponses(reply, &responses) || responses.size() != 1) {
      return problems->Add("oversize: expected one response, got " + std::to_string(reply.size()) +
                           " bytes");
    }
    if (IsRefusal(responses[0])) return tally->Count("oversize", "refused at the limit");
    const bool ok =
        malformed ? IsError(responses[0], v1::Error::INVALID_ARGUMENT, "malformed frame header")
                  : IsError(responses[0], v1::Error::RESOURCE_EXHAUSTED, "limit");
    if (!ok) return problems->Add("oversize: " + responses[0].ShortDebugString());
    tally->Count("oversize", malformed ? "malformed header, error then close"
                                       : "over the limit, error then close");
  }
};

// Each kind of hostile client, and the outcomes that mean it got through to
// the server (rather than being refused at the connection limit).
const std::vector<std::pair<std::string, std::vector<std::string>>>& HostileKinds() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"garbage",
       {"undecodable frame, error then close", "random bytes, answered then closed",
        "random bytes, closed silently"}},
      {"mid-frame", {"closed", "reset"}},
      {"stallers", {"closed after the request timeout"}},
      {"hoarders", {"held and served"}},
      {"non-readers", {"closed after the write timeout"}},
      {"oversize", {"over the limit, error then close", "malformed header, error then close"}},
  };
  return kinds;
}

// The kinds that have not got through yet.
std::vector<std::string> NotYetExercised(const Tally& tally) {
  std::vector<std::string> missing;
  for (const auto& kind_and_outcomes : HostileKinds()) {
    const std::string& kind = kind_and_outcomes.first;
    const std::vector<std::string>& outcomes = kind_and_outcomes.second;
    if (std::none_of(outcomes.begin(), outcomes.end(),
                     [&](const std::string& o) { return tally.Get(kind, o) > 0; })) {
      missing.push_back(kind);
    }
  }
  return missing;
}

// ---- The test's phases -----------------------------------------------------

// Peak RSS after starting and answering one request.
void MeasureBaseline(const ServerProcess& server, std::size_t* baseline) {
  {
    std::unique_ptr<client::Client> c;
    ASSERT_TRUE(client::Client::Connect(server.address(), &c).ok());
    v1::Request list;
    list.mutable_list();
    v1::Response r;
    ASSERT_TRUE(c->Call(list, &r).ok());
    ASSERT_TRUE(r.has_series_list()) << r.ShortDebugString();
  }
  *baseline = ProcStatusBytes(server.pid(), "VmHWM");
  ASSERT_GT(*baseline, 0u) << "cannot read VmHWM from /proc/" << server.pid() << "/status";
}

// When the run's phases ended.
struct Timeline {
  Clock::time_point soak_start, wind_down, soak_end;
  Clock::duration extended{};  // beyond the duration, until every kind got through
};

// The queriers and one loop per kind of hostile client for `duration`,
// then until every kind got through (at most kExtension more).
void RunHostileLoops(SoakRun& run, const Hostile& hostile, std::chrono::seconds duration,
                     Timeline* t) {
  run.StartQueriers();
  using Action = void (Hostile::*)(std::mt19937_64&) const;
  const std::pair<Action, Clock::duration> loops[] = {
      {&Hostile::Garbage, 5ms}, {&Hostile::MidFrame, 5ms},   {&Hostile::Stall, 50ms},
      {&Hostile::Hoard, 0ms},   {&Hostile::NonReader, 50ms}, {&Hostile::Oversize, 5ms},
  };
  for (const auto& loop : loops) {
    const Action action = loop.first;
    run.StartLoop([&hostile, action](std::mt19937_64& rng) { (hostile.*action)(rng); }, loop.second,
                  10);
  }
  Pause(duration, run.stop);
  const auto time_up = Clock::now();
  while (!NotYetExercised(run.tally).empty() && Clock::now() < time_up + kExtension) {
    std::this_thread::sleep_for(50ms);
  }
  t->extended = Clock::now() - time_up;
}

struct Outcome {
  std::string fresh_problem;
  int attempts = 0;
  std::size_t peak = 0, bound = 0;
  std::string stopped;
  Clock::duration stop_took{};
};

void PrintReport(const SoakRun& run, const Timeline& t, std::size_t baseline, const Outcome& o) {
  uint64_t batches_acked = 0, duplicates = 0;
  for (const auto& p : run.producers) {
    batches_acked += p->batches_acked;
    duplicates += p->duplicates_acked;
  }
  std::cout << "soak: ran " << Seconds(t.soak_end - t.soak_start) << " s (extended by "
            << Seconds(t.extended)
            << " s until every kind of hostile client got through; wind-down "
            << Seconds(t.soak_end - t.wind_down) << " s)\n"
            << "soak: well-behaved: " << kProducers << " producers, " << batches_acked
            << " batches / " << run.PointsAcked() << " points acknowledged, " << duplicates
            << " repeated batches acknowledged as duplicates; " << kQueriers << " queriers, "
            << run.tally.Get("queriers", "rounds") << " rounds of gradient+fit+list+missing\n";
  for (const auto& kind : HostileKinds()) {
    std::cout << "soak: hostile " << run.tally.Line(kind.first) << "\n";
  }
  std::cout << "soak: server RSS: baseline " << MiB(baseline) << " MiB, peak (VmHWM) "
            << MiB(o.peak) << " MiB, bound " << MiB(o.bound) << " MiB\n"
            << "soak: fresh connection: "
            << (o.fresh_problem.empty() ? "answered" : "NOT answered (" + o.fresh_problem + ")")
            << " after " << o.attempts << " attempt(s); SIGTERM: "
            << (o.stopped.empty()
                    ? "exit status 0 in " + std::to_string(Seconds(o.stop_took)) + " s"
                    : o.stopped)
            << "\n";
}

TEST(SoakTest, HostileClientsChangeNothingForWellBehavedOnesAndMemoryStaysBounded) {
  ::signal(SIGPIPE, SIG_IGN);
  const auto duration = SoakDuration();
  ServerProcess server;
  const std::string started = server.Start(GRADIENTD_BINARY, LimitFlags());
  ASSERT_EQ(started, "");
  // The run, the wind-down (each hostile client's current action is bounded
  // by kPatience, a few times over) and the checks, with room to spare.
  const auto watchdog_limit = duration + kExtension + 6 * kPatience;
  Watchdog watchdog(server.pid(), watchdog_limit);
  std::size_t baseline = 0;
  ASSERT_NO_FATAL_FAILURE(MeasureBaseline(server, &baseline));

  // The well-behaved clients connect first and keep their connections.
  SoakRun run;
  ASSERT_NO_FATAL_FAILURE(run.ConnectWellBehaved(server.address(), {}, {}));
  std::cout << "soak: " << duration.count() << " s (SOAK_SECONDS), " << kBuildKind
            << " build, seed " << run.seed << ", gradientd on " << server.address()
            << " (--max-connections " << kMaxConnections << ", --idle-timeout "
            << kIdleTimeout.count() << "ms, --request-timeout " << kRequestTimeout.count()
            << "ms, --write-timeout " << kWriteTimeout.count() << "ms)\n";
  const bool producing = run.StartProducers();
  Timeline t;
  t.soak_start = Clock::now();
  const Hostile hostile{server.port(), &run.producers, &run.stop, &run.problems, &run.tally};
  if (producing) RunHostileLoops(run, hostile, duration, &t);
  t.wind_down = Clock::now();
  run.StopAndJoin();
  t.soak_end = Clock::now();

  // A fresh connection is answered once the hoarded ones are gone (the
  // server may still be closing them: a refusal is retried, within bounds).
  Outcome o;
  std::unique_ptr<client::Client> fresh;
  o.fresh_problem =
      AnswerFreshConnection(server.address(), {}, /*retry_any=*/false, &fresh, &o.attempts);
  EXPECT_EQ(o.fresh_problem, "") << "a fresh connection after the soak was not answered";
  if (o.fresh_problem.empty()) ExpectExactTotals(run.producers, *fresh);
  fresh.reset();

  o.peak = ProcStatusBytes(server.pid(), "VmHWM");
  o.bound = RssBoundBytes(baseline);
  EXPECT_GT(o.peak, 0u) << "cannot read VmHWM from /proc/" << server.pid() << "/status";
  EXPECT_LE(o.peak, o.bound) << "the server's peak RSS (VmHWM) went past the bound derived from "
                                "its limits";

  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the run took longer than " << Seconds(watchdog_limit)
                                 << " s; the server was killed";
  o.stopped = server.Terminate(kPatience, &o.stop_took);
  EXPECT_EQ(o.stopped, "");

  // Every kind of hostile client must have got through to the server at
  // least once, or the run did not test what it claims.
  if (producing) {
    for (const auto& kind : NotYetExercised(run.tally)) {
      ADD_FAILURE() << "no " << kind << " client got past the connection limit in "
                    << Seconds(t.soak_end - t.soak_start) << " s";
    }
  }
  EXPECT_EQ(run.problems.count(), 0u) << run.problems.Report();
  PrintReport(run, t, baseline, o);
}

}  // namespace
}  // namespace gradientd::soak
