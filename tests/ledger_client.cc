// ledger_client: a load driver that keeps an independent ledger of what a
// real gradientd acknowledged, and checks a server's state against it. The
// full-disk and kill -9 torture tests (tests/full_disk_test.sh,
// tests/torture_test.sh) drive it; it knows nothing of the server's insides.
//
//   ledger_client produce --server HOST:PORT --ledger FILE [options]
//     Worker threads, each on its own pipelining connection, stream batches
//     of integer-valued points (so counts and sums are exact) from a stream
//     of short-lived producers: exactly-once ones (a fresh producer_id every
//     few batches, sequences 1, 2, ...) into series "eo-NNN" and plain ones
//     (no producer_id) into "plain-NNN". Every batch ends in the ledger as
//     acked / duplicate (acknowledged), refused (answered with an Error) or
//     unknown (sent, connection lost before the answer). When the connection
//     breaks, the worker reconnects (for at most --retry-for seconds) and
//     resends its unanswered exactly-once batches with the same id and
//     sequence; plain ones stay unknown.
//   ledger_client resend --server HOST:PORT --ledger FILE
//     Resends every exactly-once batch the ledger does not show acknowledged,
//     in sequence order, and records the answers in the ledger.
//   ledger_client probe --server HOST:PORT --ledger FILE [--probes N]
//     Resends N (default 500) exactly-once batches the ledger shows
//     acknowledged, spread over the ledger: each must be answered as a
//     duplicate (the server remembers every producer's sequence).
//   ledger_client check --server HOST:PORT --ledger FILE [--ledger FILE...]
//     Compares the server's `list` with the ledgers: per series, n must equal
//     the acknowledged points (plus at most the unknown ones), mean_x and
//     mean_y the acknowledged points' means; exactly-once batches must all be
//     acknowledged (--eo-unacked-ok 1: before they resent, count those as
//     unknown). Prints every difference precisely; exits 1 on any.
//
// Every wait is bounded: --deadline SECONDS (default 120) ends the process
// with status 3 and a message; --answer-timeout SECONDS (default 20) reports a
// connection whose requests go unanswered that long as a HANG, writes
// --hang-marker FILE, and stops sending (see StartWatchdog).
//
// The batches and the ledger file are in ledger.h, the check in
// ledger_check.cc.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client/client.h"
#include "ledger.h"

namespace ledger {
namespace {

using gradientd::Status;
using gradientd::client::Client;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// The watchdogs: a hung server must fail the test, not hang it.
//
// The deadline ends the process (status 3). The answer timeout notices a
// connection whose oldest request has waited too long for its answer: it says
// so, writes the marker file (--hang-marker) so that the test can kill the
// hung server, and from then on nobody reconnects or sends anything new: the
// workers end when their connections break, and the ledger is written with
// the unanswered batches as unknown.

std::atomic<bool> g_hung{false};

// What a Sender shows the watchdog: its oldest unanswered request's age.
struct Progress {
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> last_answer_ns{0};  // steady clock; or when the wait began
  int worker = 0;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::mutex g_progress_mu;
std::vector<Progress*> g_progress;

void StartWatchdog(double deadline, double answer_timeout, std::string marker, std::string what) {
  std::thread([=] {
    const auto end = Clock::now() + std::chrono::duration<double>(deadline);
    while (Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (g_hung) continue;
      std::lock_guard<std::mutex> lock(g_progress_mu);
      for (Progress* p : g_progress) {
        const double waited = static_cast<double>(NowNs() - p->last_answer_ns) * 1e-9;
        if (p->in_flight > 0 && waited > answer_timeout) {
          std::fprintf(stderr,
                       "ledger_client: %s: HANG: connection %d has %" PRId64
                       " requests sent and no answer for %.0f s: the server stopped "
                       "answering them\n",
                       what.c_str(), p->worker, p->in_flight.load(), waited);
          std::fflush(stderr);
          g_hung = true;
          if (!marker.empty()) std::ofstream(marker) << "hung\n";
          break;
        }
      }
    }
    std::fprintf(stderr,
                 "ledger_client: %s: no end after %.0f s (--deadline): the server stopped "
                 "answering or never came back\n",
                 what.c_str(), deadline);
    std::fflush(stderr);
    ::_exit(3);
  }).detach();
}

// ---------------------------------------------------------------------------
// A pipelining sender over one connection with reconnects: the engine of
// produce and resend.

struct SenderOptions {
  std::string server;
  int window = 8;
  double retry_for = 30;  // seconds to keep reconnecting after a break
  bool resend_refused = false;
  int stop_after_refusals = 0;  // 0: never stop because of refusals
};

class Sender {
 public:
  Sender(SenderOptions options, std::vector<Batch>* batches, int worker = 0)
      : options_(std::move(options)), batches_(*batches) {
    progress_.worker = worker;
    std::lock_guard<std::mutex> lock(g_progress_mu);
    g_progress.push_back(&progress_);
  }
  ~Sender() {
    std::lock_guard<std::mutex> lock(g_progress_mu);
    g_progress.erase(std::find(g_progress.begin(), g_progress.end(), &progress_));
  }

  // Sends the batches of `next` (indices into the batches, taken in order;
  // it returns false when there are no more) until all are answered or the
  // server stays away longer than retry_for. Returns false in that case.
  template <typename Next>
  bool Run(Next next) {
    bool more = true;  // `next` may have more
    while (true) {
      if (!client_ && !Reconnect()) return false;
      while (client_ && client_->in_flight() < static_cast<uint64_t>(options_.window)) {
        size_t index;
        if (!resend_.empty()) {
          index = resend_.front();
          resend_.pop_front();
        } else if (!more || stopping_ || g_hung || !next(&index)) {
          more = false;
          break;
        }
        if (!Send(index)) break;
      }
      if (!client_) continue;
      if (!in_flight_.empty()) {
        Receive();
      } else if (resend_.empty()) {
        return true;
      }
    }
  }

  int refusals() const { return refusals_; }
  int reconnects() const { return reconnects_; }

 private:
  bool Send(size_t index) {
    Batch& b = batches_[index];
    v1::Request request = IngestRequest(b);
    ++b.attempts;
    b.state = State::kUnknown;  // from now on the server may have it
    if (in_flight_.empty()) progress_.last_answer_ns = NowNs();
    in_flight_.push_back(index);
    progress_.in_flight = static_cast<int64_t>(in_flight_.size());
    if (!client_->Send(request).ok()) {
      Broken();
      return false;
    }
    return true;
  }

  void Receive() {
    v1::Response response;
    if (!client_->Receive(&response).ok()) {
      Broken();
      return;
    }
    const size_t index = in_flight_.front();
    in_flight_.pop_front();
    progress_.in_flight = static_cast<int64_t>(in_flight_.size());
    progress_.last_answer_ns = NowNs();
    Batch& b = batches_[index];
    if (response.has_ack()) {
      b.state = response.ack().duplicate() ? State::kDuplicate : State::kAcked;
      b.error.clear();
      return;
    }
    b.state = State::kRefused;
    b.error = response.has_error() ? gradientd::client::ResponseStatus(response).message()
                                   : "a response that is neither an ack nor an error";
    std::replace(b.error.begin(), b.error.end(), '\n', ' ');
    ++refusals_;
    if (options_.stop_after_refusals > 0 && refusals_ >= options_.stop_after_refusals) {
      stopping_ = true;
    }
    if (b.exactly_once && options_.resend_refused && !stopping_ && b.attempts < 20) {
      resend_.push_back(index);
    }
  }

  // The connection broke: what was in flight is unknown; exactly-once
  // batches are resent first, in the order they were sent.
  void Broken() {
    client_.reset();
    for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) {
      if (batches_[*it].exactly_once) resend_.push_front(*it);
    }
    in_flight_.clear();
    progress_.in_flight = 0;
  }

  bool Reconnect() {
    const auto until = Clock::now() + std::chrono::duration<double>(options_.retry_for);
    while (true) {
      if (g_hung) return false;  // the server hung: end with what we have
      Status s = Client::Connect(options_.server, &client_);
      if (s.ok()) {
        ++reconnects_;
        return true;
      }
      client_.reset();
      if (Clock::now() >= until) {
        std::cerr << "ledger_client: giving up after " << options_.retry_for
                  << " s of reconnecting: " << s.message() << "\n";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  const SenderOptions options_;
  std::vector<Batch>& batches_;
  std::unique_ptr<Client> client_;
  std::deque<size_t> in_flight_;
  std::deque<size_t> resend_;
  Progress progress_;
  bool stopping_ = false;
  int refusals_ = 0;
  int reconnects_ = -1;  // the first connection is not a reconnect
};

SenderOptions MakeSenderOptions(const Options& o) {
  SenderOptions s;
  s.server = o.Get("server");
  s.window = static_cast<int>(o.Int("window", 8));
  s.retry_for = o.Double("retry-for", 30);
  s.resend_refused = o.Int("resend-refused", 0) != 0;
  s.stop_after_refusals = static_cast<int>(o.Int("stop-after-refusals", 0));
  return s;
}

// ---------------------------------------------------------------------------
// produce

struct WorkerResult {
  std::vector<Batch> batches;
  bool finished = false;
  int refusals = 0;
  int reconnects = 0;
};

// Worker `w`'s stream of producers: each lives 1..max_life batches, is
// exactly-once with probability eo_share, and writes into a random series.
void RunWorker(const Options& o, int w, WorkerResult* result) {
  const std::string tag = o.Get("tag", "p");
  const int64_t max_batches = o.Int("batches", 1000);
  const int series = static_cast<int>(o.Int("series", 16));
  const int max_life = static_cast<int>(o.Int("producer-life", 8));
  const uint32_t max_points = static_cast<uint32_t>(o.Int("max-points", 20));
  const double eo_share = o.Double("eo-share", 0.5);
  const double duration = o.Double("duration", 0);
  const auto stop_at = Clock::now() + std::chrono::duration<double>(duration);
  std::mt19937_64 rng(static_cast<uint64_t>(o.Int("seed", 1)) * 1000003u +
                      static_cast<uint64_t>(w));

  auto& batches = result->batches;
  batches.reserve(static_cast<size_t>(max_batches));
  int producer = 0, life = 0;
  uint64_t seq = 0;
  bool eo = false;
  std::string series_name, label;
  auto next = [&](size_t* index) {
    if (static_cast<int64_t>(batches.size()) >= max_batches) return false;
    if (duration > 0 && Clock::now() >= stop_at) return false;
    if (life == 0) {
      life = 1 + static_cast<int>(rng() % static_cast<uint64_t>(max_life));
      eo = static_cast<double>(rng() % 1000) < eo_share * 1000;
      char name[32];
      std::snprintf(name, sizeof name, "%s-%03d", eo ? "eo" : "plain",
                    static_cast<int>(rng() % static_cast<uint64_t>(series)));
      series_name = name;
      label = tag + "-w" + std::to_string(w) + "-" + std::to_string(producer++);
      seq = 0;
    }
    --life;
    batches.push_back(MakeBatch(eo, series_name, label, ++seq, max_points));
    *index = batches.size() - 1;
    return true;
  };
  Sender sender(MakeSenderOptions(o), &batches, w);
  result->finished = sender.Run(next);
  result->refusals = sender.refusals();
  result->reconnects = std::max(0, sender.reconnects());
}

int Produce(const Options& o) {
  const int threads = static_cast<int>(o.Int("threads", 4));
  std::vector<WorkerResult> results(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back(RunWorker, std::cref(o), w, &results[static_cast<size_t>(w)]);
  }
  for (auto& t : workers) t.join();
  std::vector<Batch> all;
  bool finished = true;
  int refusals = 0, reconnects = 0;
  for (auto& r : results) {
    finished = finished && r.finished;
    refusals += r.refusals;
    reconnects += r.reconnects;
    for (auto& b : r.batches) all.push_back(std::move(b));
  }
  WriteLedger(o.Get("ledger"), all);
  std::map<State, int> by_state;
  std::set<std::string> producers;
  for (const Batch& b : all) {
    ++by_state[b.state];
    if (b.exactly_once) producers.insert(b.label);
  }
  std::printf(
      "ledger_client produce: %zu batches (%d acked, %d duplicate, %d refused, %d "
      "unknown), %zu exactly-once producer ids, %d reconnects%s\n",
      all.size(), by_state[State::kAcked], by_state[State::kDuplicate], by_state[State::kRefused],
      by_state[State::kUnknown], producers.size(), reconnects,
      g_hung     ? "; the server HUNG (see above)"
      : finished ? ""
                 : "; gave up reconnecting");
  if (refusals > 0) {
    for (const Batch& b : all) {
      if (b.state == State::kRefused) {
        std::printf("ledger_client produce: first refusal: %s\n", b.error.c_str());
        break;
      }
    }
  }
  return g_hung ? 5 : finished ? 0 : 4;
}

// ---------------------------------------------------------------------------
// resend

int Resend(const Options& o) {
  const std::string path = o.Get("ledger");
  std::vector<Batch> batches;
  if (!ReadLedger(path, &batches)) return 2;
  std::vector<size_t> order;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].exactly_once && !Acknowledged(batches[i].state)) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(batches[a].label, batches[a].seq) < std::tie(batches[b].label, batches[b].seq);
  });
  size_t position = 0;
  SenderOptions options = MakeSenderOptions(o);
  options.resend_refused = false;
  options.stop_after_refusals = 0;
  Sender sender(options, &batches);
  const bool finished = sender.Run([&](size_t* index) {
    if (position >= order.size()) return false;
    *index = order[position++];
    return true;
  });
  WriteLedger(path, batches);
  int acked = 0, duplicate = 0, other = 0;
  for (size_t i : order) {
    if (batches[i].state == State::kAcked)
      ++acked;
    else if (batches[i].state == State::kDuplicate)
      ++duplicate;
    else
      ++other;
  }
  std::printf(
      "ledger_client resend: %zu unacknowledged exactly-once batches resent: %d applied "
      "now, %d duplicates (applied before), %d still not acknowledged\n",
      order.size(), acked, duplicate, other);
  return g_hung ? 5 : finished ? 0 : 4;
}

// ---------------------------------------------------------------------------
// probe: exactly-once batches acknowledged before must be duplicates now.

int Probe(const Options& o) {
  std::vector<Batch> batches;
  if (!ReadLedger(o.Get("ledger"), &batches)) return 2;
  std::vector<Batch> probes;
  for (const Batch& b : batches) {
    if (b.exactly_once && Acknowledged(b.state)) probes.push_back(b);
  }
  // An even spread over the ledger (old and new producers alike).
  const size_t want = static_cast<size_t>(o.Int("probes", 500));
  if (probes.size() > want) {
    std::vector<Batch> spread;
    for (size_t i = 0; i < want; ++i) spread.push_back(probes[i * probes.size() / want]);
    probes.swap(spread);
  }
  for (Batch& b : probes) b.state = State::kPending;
  size_t position = 0;
  SenderOptions options = MakeSenderOptions(o);
  options.resend_refused = false;
  Sender sender(options, &probes);
  const bool finished = sender.Run([&](size_t* index) {
    if (position >= probes.size()) return false;
    *index = position++;
    return true;
  });
  int problems = 0;
  for (const Batch& b : probes) {
    if (b.state == State::kDuplicate) continue;
    if (++problems <= 20) {
      std::printf("MISMATCH: exactly-once producer %s sequence %" PRIu64
                  " (series %s), acknowledged before, resent now: %s%s\n",
                  b.label.c_str(), b.seq, b.series.c_str(),
                  b.state == State::kAcked ? "applied again (counted twice: the producer's "
                                             "sequence was forgotten)"
                                           : StateName(b.state),
                  b.error.empty() ? "" : (" (" + b.error + ")").c_str());
    }
  }
  std::printf(
      "ledger_client probe: %zu acknowledged exactly-once batches resent: %d not "
      "answered as duplicates\n",
      probes.size(), problems);
  return problems > 0 ? 1 : finished ? 0 : 4;
}

}  // namespace
}  // namespace ledger

int main(int argc, char** argv) {
  using namespace ledger;  // NOLINT(google-build-using-namespace)
  Options o;
  if (!ParseOptions(argc, argv, &o) || !o.Has("server") || !o.Has("ledger")) {
    std::cerr << "usage: ledger_client produce|resend|probe|check --server HOST:PORT --ledger FILE "
                 "[--key value...] (see tests/ledger_client.cc)\n";
    return 2;
  }
  StartWatchdog(o.Double("deadline", 120), o.Double("answer-timeout", 20), o.Get("hang-marker"),
                o.command);
  if (o.command == "produce") return Produce(o);
  if (o.command == "resend") return Resend(o);
  if (o.command == "check") return Check(o);
  if (o.command == "probe") return Probe(o);
  std::cerr << "ledger_client: unknown command '" << o.command << "'\n";
  return 2;
}
