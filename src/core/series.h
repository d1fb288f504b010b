// Series: one named stream's statistics, its gradient-descent model and its
// descent settings. Pure computation; not synchronised (the caller locks).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "core/point_stats.h"
#include "core/status.h"

namespace gradientd::core {

// The most iterations one Step call (or steps_per_batch) may run, so that a
// single request cannot hold a series for long.
inline constexpr uint64_t kMaxStepIterations = 100'000'000;
inline constexpr uint32_t kMaxStepsPerBatch = 1'000'000;

struct Model {
  double m = 0;
  double b = 0;
};

struct DescentConfig {
  double learning_rate = 0;  // 0 = auto: 1 / (Lipschitz constant of dL)
  uint32_t steps_per_batch = 1;
};

// A configuration change; absent fields stay as they are.
struct SeriesChange {
  std::optional<double> learning_rate;  // 0 = auto
  std::optional<uint32_t> steps_per_batch;
  std::optional<double> m;
  std::optional<double> b;
};

// A Step checks its time budget after every this many iterations.
inline constexpr uint64_t kStepSliceIterations = 1024;

struct StepResult {
  uint64_t iterations = 0;    // iterations actually run
  bool converged = false;     // the gradient norm is below the tolerance
  double learning_rate = 0;   // the rate used
  bool time_limited = false;  // out_of_time stopped it before `iterations`
};

class Series {
 public:
  const PointStats& stats() const { return stats_; }
  const Model& model() const { return model_; }
  const DescentConfig& config() const { return config_; }
  uint64_t steps() const { return steps_; }

  // The rate a step would use given an optional override (0 = auto).
  // REQUIRES: !stats().empty() when the rate is auto.
  double EffectiveLearningRate(std::optional<double> override_rate) const;

  // Adds the points summarised by `batch`, then runs steps_per_batch descent
  // steps. The points are always applied; if the steps would make the model
  // non-finite they are not run, the model is kept, and the reason is
  // returned as an error status (*steps_run is 0 then).
  Status Absorb(const PointStats& batch, uint64_t* steps_run);

  // Runs up to `iterations` descent steps, all or nothing: if any step would
  // make m or b non-finite, nothing changes and an error is returned.
  // `tolerance`: stop once the gradient norm is below it. `out_of_time`
  // (optional) is asked after every kStepSliceIterations iterations; once it
  // says true the descent stops there and keeps what it ran (time_limited).
  Status Step(uint64_t iterations, std::optional<double> learning_rate,
              std::optional<double> tolerance, StepResult* result,
              const std::function<bool()>& out_of_time = {});

  // Applies the present fields of `change`, all or nothing: if any is
  // invalid, nothing changes and the error names it.
  Status Configure(const SeriesChange& change);

  // Drops the points and the model; keeps the configuration.
  void Reset();

  // Restores a state saved from stats(), model(), config() and steps(), or
  // the model and step count after a replayed step (for recovery).
  void Restore(const PointStats& stats, const Model& model, const DescentConfig& config,
               uint64_t steps);
  void RestoreModel(const Model& model, uint64_t steps);

 private:
  PointStats stats_;
  Model model_;
  DescentConfig config_;
  uint64_t steps_ = 0;
};

// Checks a learning rate given by a client: finite and not negative.
Status ValidateLearningRate(double rate);

// Checks every present field of a configuration change.
Status ValidateSeriesChange(const SeriesChange& change);

}  // namespace gradientd::core
