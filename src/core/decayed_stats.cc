#include "core/decayed_stats.h"

#include <algorithm>
#include <string>

#include "core/exp2.h"

namespace gradientd::core {

Status DecayedStats::Validate(int64_t half_life_ns) {
  if (half_life_ns <= 0) {
    return Status::InvalidArgument("half-life must be > 0, got " + std::to_string(half_life_ns) +
                                   " ns");
  }
  return Status::Ok();
}

DecayedStats::DecayedStats(int64_t half_life_ns) : half_life_ns_(half_life_ns) {}

double DecayedStats::FactorFor(int64_t event_time_ns) const {
  if (empty()) return 1.0;
  // |event_time - reference| without overflow (exact in uint64).
  const uint64_t age =
      event_time_ns >= reference_ns_
          ? static_cast<uint64_t>(event_time_ns) - static_cast<uint64_t>(reference_ns_)
          : static_cast<uint64_t>(reference_ns_) - static_cast<uint64_t>(event_time_ns);
  return CorrectlyRoundedExp2(-static_cast<double>(age) / static_cast<double>(half_life_ns_));
}

void DecayedStats::Add(const PointStats& batch, int64_t event_time_ns, double factor) {
  if (batch.empty()) return;
  const double n = static_cast<double>(batch.count());
  if (empty() || (event_time_ns > reference_ns_ && factor < kMinFactor)) {
    // The first batch, or the old state weighs nothing any more: start afresh.
    n_ = batch.count();
    weight_ = n;
    weight_squares_ = n;
    reference_ns_ = event_time_ns;
    first_ns_ = event_time_ns;
    moments_ = batch.moments();
    return;
  }
  double batch_weight = n;
  double batch_squares = n;
  if (event_time_ns > reference_ns_) {
    weight_ *= factor;
    weight_squares_ *= factor * factor;
    reference_ns_ = event_time_ns;
  } else {
    if (factor < kMinFactor) return;  // too old to count
    batch_weight = n * factor;
    batch_squares = n * (factor * factor);
    first_ns_ = std::min(first_ns_, event_time_ns);
  }
  const double total = weight_ + batch_weight;
  moments_.Merge(batch.moments(), weight_ / total, batch_weight / total);
  weight_ = total;
  weight_squares_ += batch_squares;
  n_ += batch.count();
}

double DecayedStats::effective_count() const {
  if (empty() || !(weight_squares_ > 0)) return 0;
  return weight_ * (weight_ / weight_squares_);
}

DecayedStats::Raw DecayedStats::raw() const {
  return Raw{.n = n_,
             .weight = weight_,
             .weight_squares = weight_squares_,
             .reference_ns = reference_ns_,
             .first_ns = first_ns_,
             .moments = moments_};
}

DecayedStats DecayedStats::FromRaw(int64_t half_life_ns, const Raw& raw) {
  DecayedStats d(half_life_ns);
  d.n_ = raw.n;
  d.weight_ = raw.weight;
  d.weight_squares_ = raw.weight_squares;
  d.reference_ns_ = raw.reference_ns;
  d.first_ns_ = raw.first_ns;
  d.moments_ = raw.moments;
  return d;
}

}  // namespace gradientd::core
