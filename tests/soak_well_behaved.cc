#include "soak_well_behaved.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <sstream>
#include <utility>

namespace gradientd::soak {
namespace {

struct Batch {
  v1::Request request;
  ExactSums sums;
  uint64_t points = 0;
};

Batch MakeBatch(const ProducerSpec& spec, uint64_t sequence, std::mt19937_64& rng) {
  Batch b;
  // Mostly small batches (many requests), sometimes large ones.
  const int count =
      std::uniform_int_distribution<int>(2, rng() % 2 == 0 ? 64 : kMaxBatchPoints)(rng);
  std::uniform_int_distribution<int64_t> k_dist(-kHalfRangeK, kHalfRangeK);
  std::uniform_int_distribution<int64_t> noise(-400, 400);
  v1::PointBatch* batch = b.request.mutable_ingest();
  batch->set_series(spec.series);
  batch->set_producer_id(spec.producer_id);
  batch->set_sequence(sequence);
  batch->mutable_x()->Reserve(count);
  batch->mutable_y()->Reserve(count);
  int64_t sk = 0, sj = 0, skk = 0, skj = 0;
  for (int i = 0; i < count; ++i) {
    // The first batch spans the range, so x has spread from the start.
    const int64_t k = sequence == 1 && i < 2 ? (i == 0 ? -kHalfRangeK : kHalfRangeK) : k_dist(rng);
    const int64_t j = spec.slope4 * k + spec.intercept4 + noise(rng);
    batch->add_x(spec.offset + static_cast<double>(k));
    batch->add_y(static_cast<double>(j) * 0.25);
    sk += k;
    sj += j;
    skk += k * k;
    skj += k * j;
  }
  b.points = static_cast<uint64_t>(count);
  b.sums = {count, sk, sj, skk, skj};
  return b;
}

// One producer's loop: a window of sent, unacknowledged batches, each ack
// checked against the exact running total.
class ProducerLoop {
 public:
  ProducerLoop(ProducerState& p, client::Client& c, uint64_t seed, Problems& problems)
      : p_(p), c_(c), rng_(seed), problems_(problems), who_("producer " + p.spec.series) {}

  void Run(const std::atomic<bool>& stop) {
    while (!stop) {
      Pending pending = Next();
      if (Status s = c_.Send(pending.request); !s.ok()) {
        return Fail("send failed (the server must not drop a well-behaved client): " + s.message());
      }
      window_.push_back(std::move(pending));
      while (window_.size() >= kWindow) {
        if (!ReceiveOne()) return;
      }
    }
    while (!window_.empty()) {
      if (!ReceiveOne()) return;
    }
  }

 private:
  struct Pending {
    v1::Request request;  // kept until acknowledged, to be repeated later
    uint64_t points = 0;
    bool duplicate = false;
    ExactSums sums;
  };

  void Fail(const std::string& what) {
    problems_.Add(who_ + ": " + what);
    p_.dropped = true;
  }

  // A new batch, or every kDuplicateEvery-th send an acknowledged batch
  // again (same producer id, sequence, points): the server must
  // acknowledge it as a duplicate and apply nothing.
  Pending Next() {
    Pending pending;
    if (++sends_ % kDuplicateEvery == 0 && last_acked_) {
      pending.request = *last_acked_;
      pending.duplicate = true;
      pending.points = static_cast<uint64_t>(pending.request.ingest().x_size());
      return pending;
    }
    Batch batch = MakeBatch(p_.spec, ++sequence_, rng_);
    pending.request = std::move(batch.request);
    pending.points = batch.points;
    pending.sums = batch.sums;
    p_.points_sent += batch.points;  // before the server can apply it
    return pending;
  }

  bool ReceiveOne() {
    v1::Response r;
    if (Status s = c_.Receive(&r); !s.ok()) {
      Fail("connection lost with " + std::to_string(window_.size()) +
           " batches unacknowledged (the server must not drop a well-behaved client): " +
           s.message());
      return false;
    }
    Pending front = std::move(window_.front());
    window_.pop_front();
    if (r.id() != front.request.id() || !r.has_ack()) {
      Fail("expected the ack of request " + std::to_string(front.request.id()) + ", got " +
           r.ShortDebugString());
      return false;
    }
    // The series is this producer's alone, so its total is known exactly.
    const v1::IngestAck& ack = r.ack();
    const uint64_t accepted = front.duplicate ? 0 : front.points;
    if (ack.series() != p_.spec.series || ack.duplicate() != front.duplicate ||
        ack.accepted() != accepted || ack.total() != total_ + accepted) {
      Fail("ack of request " + std::to_string(front.request.id()) + " (" +
           std::to_string(front.points) + " points" +
           (front.duplicate ? ", a repeated sequence" : "") + ") is wrong after " +
           std::to_string(total_) + " points: " + ack.ShortDebugString());
      return false;
    }
    total_ = ack.total();
    if (front.duplicate) {
      ++p_.duplicates_acked;
    } else {
      p_.acked.Add(front.sums);
      p_.points_acked += front.points;
      ++p_.batches_acked;
      last_acked_ = std::move(front.request);
    }
    return true;
  }

  ProducerState& p_;
  client::Client& c_;
  std::mt19937_64 rng_;
  Problems& problems_;
  const std::string who_;
  std::deque<Pending> window_;
  std::optional<v1::Request> last_acked_;  // the newest acknowledged new batch
  uint64_t sequence_ = 0, total_ = 0, sends_ = 0;
};

bool Finite(double v) { return std::isfinite(v); }

// What a reply about producer series `p` must satisfy: well-formed, finite,
// and n between the points acknowledged before the query was sent and those
// sent by the time its reply arrived.
std::string CheckFit(const v1::FitReply& f, const std::string& series, uint64_t lo, uint64_t hi) {
  std::ostringstream bad;
  if (f.series() != series) bad << "series '" << f.series() << "' ";
  if (f.n() < lo || f.n() > hi) bad << "n " << f.n() << " outside [" << lo << ", " << hi << "] ";
  if (!Finite(f.descent().m()) || !Finite(f.descent().b()) || !f.descent().has_loss() ||
      !Finite(f.descent().loss()) || f.descent().loss() < 0) {
    bad << "descent line not finite ";
  }
  if (!f.has_least_squares() || !Finite(f.least_squares().m()) || !Finite(f.least_squares().b()) ||
      !Finite(f.least_squares().loss())) {
    bad << "no finite least-squares line ";
  }
  if (f.has_r_squared() && !(f.r_squared() >= 0 && f.r_squared() <= 1 + 1e-9)) {
    bad << "r_squared " << f.r_squared() << " ";
  }
  if (!Finite(f.mean_x()) || !Finite(f.mean_y()) || !Finite(f.learning_rate()) ||
      f.learning_rate() <= 0) {
    bad << "means or learning rate not finite ";
  }
  const std::string text = bad.str();
  return text.empty() ? "" : "fit of " + series + ": " + text + "in " + f.ShortDebugString();
}

std::string CheckGradient(const v1::GradientReply& g, const std::string& series, uint64_t lo,
                          uint64_t hi) {
  if (g.series() == series && g.n() >= lo && g.n() <= hi && Finite(g.m()) && Finite(g.b()) &&
      Finite(g.intercept_gradient()) && Finite(g.slope_gradient()) && Finite(g.loss()) &&
      g.loss() >= 0) {
    return "";
  }
  return "gradient of " + series + " (n in [" + std::to_string(lo) + ", " + std::to_string(hi) +
         "]) is wrong: " + g.ShortDebugString();
}

// One querier round's requests, about producer series `p`.
struct QueryRound {
  std::size_t p = 0;
  std::vector<uint64_t> lo, hi;  // each producer's points acked before, sent after
  v1::Request gradient, fit, list, missing;
  std::vector<v1::Response> replies;

  std::vector<v1::Request*> Requests() { return {&gradient, &fit, &list, &missing}; }
};

QueryRound MakeQueryRound(const Producers& producers, std::mt19937_64& rng) {
  QueryRound q;
  q.p = rng() % producers.size();
  const std::string& series = producers[q.p]->spec.series;
  q.lo.resize(producers.size());
  q.hi.resize(producers.size());
  for (std::size_t i = 0; i < producers.size(); ++i) q.lo[i] = producers[i]->points_acked;
  q.gradient.mutable_gradient()->set_series(series);
  if (rng() % 2 == 0) {  // else the series' descent model
    q.gradient.mutable_gradient()->set_m(std::uniform_real_distribution<double>(-10, 10)(rng));
    q.gradient.mutable_gradient()->set_b(std::uniform_real_distribution<double>(-1e3, 1e3)(rng));
  }
  q.fit.mutable_fit()->set_series(series);
  q.list.mutable_list();
  q.missing.mutable_gradient()->set_series("soak-no-such-series");
  return q;
}

// Sends the round's requests pipelined and receives their replies; "" or
// the problem.
std::string Exchange(QueryRound& q, client::Client& c) {
  const std::vector<v1::Request*> requests = q.Requests();
  for (v1::Request* r : requests) {
    if (Status s = c.Send(*r); !s.ok()) {
      return "querier: send failed (the server must not drop a well-behaved client): " +
             s.message();
    }
  }
  q.replies.resize(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (Status s = c.Receive(&q.replies[i]); !s.ok()) {
      return "querier: connection lost (the server must not drop a well-behaved client): " +
             s.message();
    }
    if (q.replies[i].id() != requests[i]->id()) {
      return "querier: reply id " + std::to_string(q.replies[i].id()) + " for request " +
             std::to_string(requests[i]->id());
    }
  }
  return "";
}

void CheckList(const QueryRound& q, const Producers& producers, std::vector<std::string>* bad) {
  const auto& all = q.replies[2].series_list().series();
  for (int i = 1; i < all.size(); ++i) {
    if (!(all[i - 1].series() < all[i].series())) bad->push_back("list is not sorted by name");
  }
  for (std::size_t i = 0; i < producers.size(); ++i) {
    const auto it = std::find_if(all.begin(), all.end(), [&](const v1::FitReply& f) {
      return f.series() == producers[i]->spec.series;
    });
    if (it == all.end()) {
      bad->push_back("list lacks " + producers[i]->spec.series);
    } else {
      bad->push_back(CheckFit(*it, producers[i]->spec.series, q.lo[i], q.hi[i]));
    }
  }
}

// What is wrong with the round's replies ("" entries mean nothing).
std::vector<std::string> CheckReplies(const QueryRound& q, const Producers& producers) {
  const std::string& series = producers[q.p]->spec.series;
  const std::vector<v1::Response>& replies = q.replies;
  std::vector<std::string> bad;
  if (!replies[0].has_gradient()) {
    bad.push_back("gradient: " + replies[0].ShortDebugString());
  } else {
    bad.push_back(CheckGradient(replies[0].gradient(), series, q.lo[q.p], q.hi[q.p]));
  }
  if (!replies[1].has_fit()) {
    bad.push_back("fit: " + replies[1].ShortDebugString());
  } else {
    bad.push_back(CheckFit(replies[1].fit(), series, q.lo[q.p], q.hi[q.p]));
  }
  if (!replies[2].has_series_list()) {
    bad.push_back("list: " + replies[2].ShortDebugString());
  } else {
    CheckList(q, producers, &bad);
  }
  if (!IsError(replies[3], v1::Error::NOT_FOUND, "")) {
    bad.push_back("gradient of a missing series: " + replies[3].ShortDebugString());
  }
  return bad;
}

}  // namespace

Producers MakeProducers() {
  const ProducerSpec specs[kProducers] = {
      {"soak-p0", "soak-producer-0", 0.0, 10, -160},
      {"soak-p1", "soak-producer-1", 1.7e9, -3, 4000},
      {"soak-p2", "soak-producer-2", -2.5e4, 7, 0},
      {"soak-p3", "soak-producer-3", 3e6, 1, 333},
  };
  Producers producers;
  for (const ProducerSpec& spec : specs) {
    producers.push_back(std::make_unique<ProducerState>());
    producers.back()->spec = spec;
  }
  return producers;
}

void RunProducer(ProducerState& p, client::Client& c, uint64_t seed, const std::atomic<bool>& stop,
                 Problems& problems) {
  ProducerLoop(p, c, seed, problems).Run(stop);
}

void RunQuerier(Producers& producers, client::Client& c, uint64_t seed,
                const std::atomic<bool>& stop, Problems& problems, Tally& tally) {
  std::mt19937_64 rng(seed);
  while (!stop) {
    QueryRound q = MakeQueryRound(producers, rng);
    if (const std::string problem = Exchange(q, c); !problem.empty()) {
      return problems.Add(problem);
    }
    for (std::size_t i = 0; i < producers.size(); ++i) q.hi[i] = producers[i]->points_sent;
    for (const auto& b : CheckReplies(q, producers)) {
      if (!b.empty()) problems.Add("querier: " + b);
    }
    tally.Count("queriers", "rounds");
    Pause(std::chrono::milliseconds(5 + static_cast<int64_t>(rng() % 11)), stop);
  }
}

// Every acknowledged point counted exactly once: n exact, the line equal
// to the exact reference. Relative 1e-9 on the slope; the intercept and
// the means are compared relative to the magnitudes they are computed from
// (b = mean_y - m * mean_x cancels when x is offset by 1.7e9).
void ExpectExactTotals(const Producers& producers, client::Client& fresh) {
  for (const auto& p : producers) {
    v1::Request fit;
    fit.mutable_fit()->set_series(p->spec.series);
    v1::Response r;
    const Status s = fresh.Call(fit, &r);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(r.has_fit()) << p->spec.series << ": " << r.ShortDebugString();
    const v1::FitReply& f = r.fit();
    if (p->dropped) {
      // Batches in flight when the connection broke may or may not count.
      EXPECT_GE(f.n(), p->points_acked.load()) << p->spec.series;
      EXPECT_LE(f.n(), p->points_sent.load()) << p->spec.series;
      continue;
    }
    const ExactSums& e = p->acked;
    EXPECT_EQ(f.n(), static_cast<uint64_t>(e.n)) << p->spec.series << ": acknowledged points";
    ASSERT_GT(static_cast<uint64_t>(e.n), 1u);
    ASSERT_TRUE(f.has_least_squares()) << f.ShortDebugString();
    const Int128 det = e.n * e.kk - e.k * e.k;    // n^2 var(k) > 0: k has spread
    const Int128 cross = e.n * e.kj - e.k * e.j;  // n^2 cov(k, j)
    using LD = long double;
    const LD n = static_cast<LD>(e.n);
    const LD m = static_cast<LD>(cross) / (4 * static_cast<LD>(det));
    const LD mean_x = static_cast<LD>(p->spec.offset) + static_cast<LD>(e.k) / n;
    const LD mean_y = static_cast<LD>(e.j) / (4 * n);
    const LD b = mean_y - m * mean_x;
    const auto near = [](double got, LD want, LD scale) {
      return std::fabs(static_cast<LD>(got) - want) <= 1e-9L * scale;
    };
    const LD y_scale = std::fabs(mean_y) + static_cast<LD>(kHalfRangeK) * 3;  // |slope| <= 2.5
    EXPECT_TRUE(near(f.least_squares().m(), m, std::fabs(m)))
        << p->spec.series << ": slope " << f.least_squares().m() << ", reference "
        << static_cast<double>(m);
    EXPECT_TRUE(near(f.least_squares().b(), b, std::fabs(b) + std::fabs(m * mean_x)))
        << p->spec.series << ": intercept " << f.least_squares().b() << ", reference "
        << static_cast<double>(b);
    EXPECT_TRUE(near(f.mean_x(), mean_x, std::fabs(mean_x) + static_cast<LD>(kHalfRangeK)))
        << p->spec.series << ": mean_x " << f.mean_x() << ", reference "
        << static_cast<double>(mean_x);
    EXPECT_TRUE(near(f.mean_y(), mean_y, y_scale)) << p->spec.series << ": mean_y " << f.mean_y()
                                                   << ", reference " << static_cast<double>(mean_y);
  }
}

}  // namespace gradientd::soak
