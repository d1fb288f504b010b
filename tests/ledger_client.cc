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
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client/client.h"

namespace {

using gradientd::Status;
using gradientd::client::Client;
namespace v1 = gradientd::v1;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Options: --key value pairs; --ledger may repeat.

struct Options {
  std::string command;
  std::map<std::string, std::vector<std::string>> values;

  std::string Get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second.back();
  }
  int64_t Int(const std::string& key, int64_t fallback) const {
    const std::string v = Get(key);
    return v.empty() ? fallback : std::stoll(v);
  }
  double Double(const std::string& key, double fallback) const {
    const std::string v = Get(key);
    return v.empty() ? fallback : std::stod(v);
  }
  bool Has(const std::string& key) const { return values.count(key) > 0; }
};

bool ParseOptions(int argc, char** argv, Options* options) {
  if (argc < 2) return false;
  options->command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::cerr << "ledger_client: expected --key value, got '" << key << "'\n";
      return false;
    }
    options->values[key.substr(2)].push_back(argv[++i]);
  }
  return true;
}

// ---------------------------------------------------------------------------
// Batches and the ledger.

enum class State { kPending, kAcked, kDuplicate, kRefused, kUnknown };

const char* StateName(State s) {
  switch (s) {
    case State::kPending:
      return "pending";
    case State::kAcked:
      return "acked";
    case State::kDuplicate:
      return "duplicate";
    case State::kRefused:
      return "refused";
    case State::kUnknown:
      return "unknown";
  }
  return "?";
}

bool ParseState(const std::string& text, State* s) {
  for (State c :
       {State::kPending, State::kAcked, State::kDuplicate, State::kRefused, State::kUnknown}) {
    if (text == StateName(c)) {
      *s = c;
      return true;
    }
  }
  return false;
}

bool Acknowledged(State s) { return s == State::kAcked || s == State::kDuplicate; }

// One batch: its identity determines its points (Points below).
struct Batch {
  bool exactly_once = false;
  std::string series;
  std::string label;  // the producer: its producer_id when exactly-once
  uint64_t seq = 0;   // sent as the sequence when exactly-once
  uint32_t n = 0;
  int64_t sum_x = 0;
  int64_t sum_y = 0;
  State state = State::kPending;
  int attempts = 0;
  std::string error;  // the last Error's message, when refused
};

uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// The batch's points, integer-valued: x in [-1000, 1000], y = 3x - 7 + noise.
void Points(const Batch& b, std::vector<int64_t>* xs, std::vector<int64_t>* ys) {
  const uint64_t h = Fnv1a(b.series + "|" + b.label + "|" + std::to_string(b.seq));
  xs->clear();
  ys->clear();
  for (uint32_t i = 0; i < b.n; ++i) {
    const int64_t x = static_cast<int64_t>(((h >> 7) + 37u * i) % 2001u) - 1000;
    xs->push_back(x);
    ys->push_back(3 * x - 7 + static_cast<int64_t>((h + i) % 11u));
  }
}

Batch MakeBatch(bool exactly_once, std::string series, std::string label, uint64_t seq,
                uint32_t max_points) {
  Batch b;
  b.exactly_once = exactly_once;
  b.series = std::move(series);
  b.label = std::move(label);
  b.seq = seq;
  b.n = 1 + static_cast<uint32_t>(Fnv1a(b.label + "#" + std::to_string(seq)) % max_points);
  std::vector<int64_t> xs, ys;
  Points(b, &xs, &ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    b.sum_x += xs[i];
    b.sum_y += ys[i];
  }
  return b;
}

v1::Request IngestRequest(const Batch& b) {
  v1::Request r;
  v1::PointBatch* p = r.mutable_ingest();
  p->set_series(b.series);
  std::vector<int64_t> xs, ys;
  Points(b, &xs, &ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    p->add_x(static_cast<double>(xs[i]));
    p->add_y(static_cast<double>(ys[i]));
  }
  if (b.exactly_once) {
    p->set_producer_id(b.label);
    p->set_sequence(b.seq);
  }
  return r;
}

// Ledger line: STATE KIND SERIES LABEL SEQ N SUM_X SUM_Y ATTEMPTS [ERROR...]
void WriteLedger(const std::string& path, const std::vector<Batch>& batches) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    for (const Batch& b : batches) {
      out << StateName(b.state) << ' ' << (b.exactly_once ? "eo" : "plain") << ' ' << b.series
          << ' ' << b.label << ' ' << b.seq << ' ' << b.n << ' ' << b.sum_x << ' ' << b.sum_y << ' '
          << b.attempts;
      if (!b.error.empty()) out << ' ' << b.error;
      out << '\n';
    }
    if (!out) {
      std::cerr << "ledger_client: cannot write " << temp << "\n";
      std::exit(2);
    }
  }
  std::rename(temp.c_str(), path.c_str());
}

bool ReadLedger(const std::string& path, std::vector<Batch>* batches) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "ledger_client: cannot read ledger " << path << "\n";
    return false;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream fields(line);
    std::string state, kind;
    Batch b;
    if (!(fields >> state >> kind >> b.series >> b.label >> b.seq >> b.n >> b.sum_x >> b.sum_y >>
          b.attempts) ||
        !ParseState(state, &b.state)) {
      std::cerr << "ledger_client: " << path << ":" << number << ": bad line: " << line << "\n";
      return false;
    }
    b.exactly_once = kind == "eo";
    std::getline(fields >> std::ws, b.error);
    batches->push_back(std::move(b));
  }
  return true;
}

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

// ---------------------------------------------------------------------------
// check

struct Expected {
  uint64_t acked_n = 0;
  int64_t acked_sum_x = 0;
  int64_t acked_sum_y = 0;
  uint64_t unknown_n = 0;  // plain batches whose fate is unknown
  uint64_t refused_n = 0;  // batches whose last answer was an Error
  uint64_t refused_batches = 0;
  uint64_t unacked_eo = 0;  // exactly-once batches never acknowledged
};

bool Near(double actual, double expected) {
  return std::fabs(actual - expected) <= 1e-9 * std::max(1.0, std::fabs(expected));
}

int Check(const Options& o) {
  std::vector<Batch> batches;
  auto paths = o.values.count("ledger") ? o.values.at("ledger") : std::vector<std::string>{};
  for (const auto& path : paths) {
    if (!ReadLedger(path, &batches)) return 2;
  }
  std::map<std::string, Expected> expected;
  std::vector<std::string> problems;
  uint64_t acked_batches = 0, unacked_reported = 0;
  // Before the exactly-once producers resent: their unacknowledged batches
  // are unknown, not yet a problem.
  const bool eo_unacked_ok = o.Int("eo-unacked-ok", 0) != 0;
  for (const Batch& b : batches) {
    Expected& e = expected[b.series];
    if (Acknowledged(b.state)) {
      e.acked_n += b.n;
      e.acked_sum_x += b.sum_x;
      e.acked_sum_y += b.sum_y;
      ++acked_batches;
    } else if (b.exactly_once) {
      ++e.unacked_eo;
      e.unknown_n += b.n;
      if (b.state == State::kRefused) ++e.refused_batches, e.refused_n += b.n;
      if (!eo_unacked_ok && ++unacked_reported <= 10) {
        problems.push_back("exactly-once producer " + b.label + " sequence " +
                           std::to_string(b.seq) + " (series " + b.series +
                           ") was never acknowledged: " + StateName(b.state) +
                           (b.error.empty() ? "" : " (" + b.error + ")"));
      }
    } else if (b.state == State::kRefused) {
      e.refused_n += b.n;
      ++e.refused_batches;
    } else {
      e.unknown_n += b.n;
    }
  }

  // Every page of the listing.
  std::unique_ptr<Client> client;
  Status s = Client::Connect(o.Get("server"), &client);
  std::vector<v1::Response> pages;
  for (std::string token; s.ok();) {
    v1::Request request;
    request.mutable_list()->set_page_token(token);
    request.mutable_list()->set_page_size(100);  // several pages in the torture test
    v1::Response& response = pages.emplace_back();
    s = client->Call(request, &response);
    if (s.ok() && !response.has_series_list()) s = gradientd::client::ResponseStatus(response);
    if (!s.ok()) break;
    token = response.series_list().next_page_token();
    if (token.empty()) break;
  }
  if (!s.ok()) {
    std::cerr << "ledger_client check: cannot list the series: " << s.message() << "\n";
    return 2;
  }
  std::map<std::string, const v1::FitReply*> actual;
  for (const v1::Response& page : pages) {
    for (const auto& fit : page.series_list().series()) actual[fit.series()] = &fit;
  }

  for (const auto& [name, fit] : actual) {
    if (!expected.count(name)) {
      problems.push_back("series " + name + ": n " + std::to_string(fit->n()) +
                         " after restart, but the ledger never sent to it");
    }
  }
  uint64_t total_acked = 0, total_n = 0;
  for (const auto& [name, e] : expected) {
    const auto it = actual.find(name);
    const uint64_t n = it == actual.end() ? 0 : it->second->n();
    total_acked += e.acked_n;
    total_n += n;
    const std::string head = "series " + name + ": n after restart " + std::to_string(n) +
                             ", acknowledged " + std::to_string(e.acked_n);
    if (n < e.acked_n) {
      problems.push_back(head + ": " + std::to_string(e.acked_n - n) + " acknowledged points lost");
    } else if (n > e.acked_n + e.unknown_n) {
      std::string why = std::to_string(n - e.acked_n) + " points more than acknowledged";
      if (e.unknown_n > 0) why += " (and only " + std::to_string(e.unknown_n) + " unknown)";
      if (e.refused_n > 0) {
        why += "; " + std::to_string(e.refused_n) + " points in " +
               std::to_string(e.refused_batches) +
               " batches were answered with Error here: refused batches came back";
      } else {
        why += ": points counted twice";
      }
      problems.push_back(head + ": " + why);
    } else if (e.unknown_n == 0 && n > 0) {
      const double mx = static_cast<double>(e.acked_sum_x) / static_cast<double>(n);
      const double my = static_cast<double>(e.acked_sum_y) / static_cast<double>(n);
      if (!Near(it->second->mean_x(), mx) || !Near(it->second->mean_y(), my)) {
        char text[200];
        std::snprintf(text, sizeof text,
                      ": n matches but mean_x %.17g, mean_y %.17g differ from the "
                      "acknowledged points' %.17g, %.17g",
                      it->second->mean_x(), it->second->mean_y(), mx, my);
        problems.push_back(head + text);
      }
    }
  }
  std::printf("ledger_client check: %zu series, %zu batches in the ledger (%" PRIu64
              " acknowledged), %" PRIu64 " acknowledged points, %" PRIu64 " points on the server\n",
              expected.size(), batches.size(), acked_batches, total_acked, total_n);
  const size_t shown = std::min<size_t>(problems.size(), 25);
  for (size_t i = 0; i < shown; ++i) std::printf("MISMATCH: %s\n", problems[i].c_str());
  if (problems.size() > shown) {
    std::printf("MISMATCH: ... and %zu more\n", problems.size() - shown);
  }
  if (unacked_reported > 10) {
    problems.push_back("... " + std::to_string(unacked_reported - 10) +
                       " more exactly-once batches never acknowledged");
  }
  if (!problems.empty()) {
    std::printf("ledger_client check: FAILED: %zu differences between the server and the ledger\n",
                problems.size());
    return 1;
  }
  std::printf("ledger_client check: the server's state is exactly the acknowledged ledger\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
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
