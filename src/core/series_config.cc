// Series configuration changes: validation and the resulting DescentConfig.
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "core/format.h"
#include "core/series.h"

namespace gradientd::core {
namespace {

Status CheckScalars(const SeriesChange& change) {
  if (change.learning_rate) {
    if (Status s = ValidateLearningRate(*change.learning_rate); !s.ok()) return s;
  }
  if (change.steps_per_batch && *change.steps_per_batch > kMaxStepsPerBatch) {
    return Status::InvalidArgument("steps_per_batch must be at most " +
                                   std::to_string(kMaxStepsPerBatch) + ", got " +
                                   std::to_string(*change.steps_per_batch));
  }
  for (const auto& [name, v] : {std::pair{"m", change.m}, std::pair{"b", change.b}}) {
    if (v && !std::isfinite(*v)) {
      return Status::InvalidArgument(std::string("model ") + name + " must be finite, got " +
                                     FormatExact(*v));
    }
  }
  return Status::Ok();
}

// The window and half-life of `change` applied to *config.
Status ApplyViews(const SeriesChange& change, DescentConfig* config) {
  const bool sets_window = change.window_ns || change.window_buckets;
  if (change.remove_window && sets_window) {
    return Status::InvalidArgument("a change cannot both remove and set the window");
  }
  if (change.remove_decay && change.half_life_ns) {
    return Status::InvalidArgument("a change cannot both remove and set the half-life");
  }
  if (change.remove_window) {
    config->window_ns = 0;
    config->window_buckets = 0;
  }
  if (sets_window) {
    if (!change.window_ns && config->window_ns == 0) {
      return Status::InvalidArgument("window buckets need a window: give the window length too");
    }
    const int64_t length = change.window_ns.value_or(config->window_ns);
    const uint32_t buckets = change.window_buckets.value_or(
        config->window_buckets != 0 ? config->window_buckets : kDefaultWindowBuckets);
    if (Status s = BucketWindow::Validate(length, buckets); !s.ok()) return s;
    config->window_ns = length;
    config->window_buckets = buckets;
  }
  if (change.remove_decay) config->half_life_ns = 0;
  if (change.half_life_ns) {
    if (Status s = DecayedStats::Validate(*change.half_life_ns); !s.ok()) return s;
    config->half_life_ns = *change.half_life_ns;
  }
  return Status::Ok();
}

}  // namespace

Status ApplySeriesChange(const SeriesChange& change, DescentConfig* config) {
  if (Status s = CheckScalars(change); !s.ok()) return s;
  DescentConfig next = *config;
  if (Status s = ApplyViews(change, &next); !s.ok()) return s;
  if (change.learning_rate) next.learning_rate = *change.learning_rate;
  if (change.steps_per_batch) next.steps_per_batch = *change.steps_per_batch;
  if (change.mode) next.mode = *change.mode;
  if (change.view) next.view = *change.view;
  if (next.view == View::kWindow && next.window_ns == 0) {
    return Status::InvalidArgument(change.remove_window
                                       ? "cannot remove the window: the descent follows it"
                                       : "the descent cannot follow a window the series lacks");
  }
  if (next.view == View::kDecayed && next.half_life_ns == 0) {
    return Status::InvalidArgument(change.remove_decay
                                       ? "cannot remove the decay: the descent follows it"
                                       : "the descent cannot follow a decay the series lacks");
  }
  if (next.mode == DescentMode::kStandardized && next.learning_rate >= 1) {
    return Status::InvalidArgument(
        "a standardized learning rate must be below 1 (it diverges at >= 1), got " +
        FormatExact(next.learning_rate));
  }
  *config = next;
  return Status::Ok();
}

}  // namespace gradientd::core
