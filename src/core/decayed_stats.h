// DecayedStats: statistics of every point, each weighted 2^(-age / half-life)
// where age is measured in event time from the newest batch seen.
//
// Weighted moments (Moments) plus the total weight W and the sum of squared
// weights (for the effective count W^2 / sum w^2). Decaying only scales the
// weights, never the moments, and never by a factor above 1: a batch newer
// than the reference time decays the state by f = 2^-(dt/h) and then joins at
// weight 1 per point; a late batch joins at weight f per point. Merging is
// Chan's update with the weight shares.
//
// The factor is computed once, at ingest, by FactorFor (correctly rounded,
// so the same on every machine), and kept with the batch (the journal); Add
// takes it, so a replay or replica computes bit-identical state.
//
// Underflow: when a factor is below kMinFactor (over ~1000 half-lives of
// silence), the old state weighs nothing and Add starts afresh from the batch;
// a late batch that old is not counted. A value type; not synchronised.
#pragma once

#include <cstdint>

#include "core/moments.h"
#include "core/point_stats.h"
#include "core/status.h"

namespace gradientd::core {

class DecayedStats {
 public:
  static constexpr double kMinFactor = 0x1p-1000;

  // Checks a half-life a client asked for: > 0.
  static Status Validate(int64_t half_life_ns);

  // REQUIRES: Validate(half_life_ns).ok().
  explicit DecayedStats(int64_t half_life_ns);

  int64_t half_life_ns() const { return half_life_ns_; }

  // 2^(-|event_time - reference| / half-life): the factor Add applies for a
  // batch at `event_time_ns` (1 when the state is empty), correctly rounded
  // (CorrectlyRoundedExp2).
  double FactorFor(int64_t event_time_ns) const;

  // Adds the batch at `event_time_ns` with the factor FactorFor gave for it
  // against this same state. No libm.
  void Add(const PointStats& batch, int64_t event_time_ns, double factor);

  bool empty() const { return n_ == 0; }
  uint64_t count() const { return n_; }  // points counted since the start
  double weight() const { return weight_; }
  double weight_squares() const { return weight_squares_; }
  double effective_count() const;  // W^2 / sum w^2; 0 when empty
  int64_t reference_ns() const { return reference_ns_; }
  int64_t first_ns() const { return first_ns_; }  // the earliest event time counted
  const Moments& moments() const { return moments_; }

  // For snapshots: everything Add depends on. FromRaw(raw()) is this state.
  struct Raw {
    uint64_t n = 0;
    double weight = 0, weight_squares = 0;
    int64_t reference_ns = 0, first_ns = 0;
    Moments moments;
    bool operator==(const Raw&) const = default;
  };
  Raw raw() const;
  static DecayedStats FromRaw(int64_t half_life_ns, const Raw& raw);

 private:
  int64_t half_life_ns_;
  uint64_t n_ = 0;
  double weight_ = 0;
  double weight_squares_ = 0;
  int64_t reference_ns_ = 0;
  int64_t first_ns_ = 0;
  Moments moments_;
};

}  // namespace gradientd::core
