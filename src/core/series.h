// Series: one named stream's statistics in every view it has (all history,
// an optional sliding window, optional exponential decay), its
// gradient-descent model and its settings. Pure computation; not
// synchronised (the caller locks).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/decayed_stats.h"
#include "core/moments.h"
#include "core/point_stats.h"
#include "core/status.h"
#include "core/window.h"

namespace gradientd::core {

// The most iterations one Step call (or steps_per_batch) may run, so that a
// single request cannot hold a series for long.
inline constexpr uint64_t kMaxStepIterations = 100'000'000;
inline constexpr uint32_t kMaxStepsPerBatch = 1'000'000;
// The window's bucket count when a window is first set without one.
inline constexpr uint32_t kDefaultWindowBuckets = 60;
// The relative excess loss estimated_steps aims at when no
// relative_tolerance is given.
inline constexpr double kDefaultRelativeTolerance = 1e-9;

enum class View { kAll, kWindow, kDecayed };
// kAuto: plain with a fixed rate (> 0), standardized with the auto rate.
enum class DescentMode { kAuto, kPlain, kStandardized };

struct Model {
  double m = 0;
  double b = 0;
};

struct DescentConfig {
  double learning_rate = 0;  // 0 = auto (plain: 1/Lipschitz; standardized: 1/2)
  uint32_t steps_per_batch = 1;
  DescentMode mode = DescentMode::kAuto;
  View view = View::kAll;  // the view steps run on
  int64_t window_ns = 0;   // 0: no window
  uint32_t window_buckets = 0;
  int64_t half_life_ns = 0;  // 0: no decay
};

// A configuration change; absent fields stay as they are. Setting or
// changing the window (length or buckets) or the half-life starts that view
// empty; remove_* drop it.
struct SeriesChange {
  std::optional<double> learning_rate;  // 0 = auto
  std::optional<uint32_t> steps_per_batch;
  std::optional<double> m;
  std::optional<double> b;
  std::optional<DescentMode> mode;
  std::optional<View> view;
  std::optional<int64_t> window_ns;
  std::optional<uint32_t> window_buckets;
  std::optional<int64_t> half_life_ns;
  bool remove_window = false;
  bool remove_decay = false;
};

// What a view covers (see Coverage in the protocol).
struct Coverage {
  View view = View::kAll;
  uint64_t n = 0;
  double weight = 0;
  double effective_n = 0;
  int64_t start_ns = 0;  // [start, end) of event time; 0 0 when empty
  int64_t end_ns = 0;
};

// One view's statistics: its moments and what it covers. Empty when
// coverage.n == 0 (the moments are then meaningless).
struct ViewStats {
  Moments moments;
  Coverage coverage;
  bool empty() const { return coverage.n == 0; }
};

// How a batch is applied: its event time and, when the series decays, the
// factor computed for it at ingest (Series::StampFor).
struct BatchStamp {
  int64_t event_time_ns = 0;
  std::optional<double> decay_factor;
};

// A Step checks its time budget after every this many iterations.
inline constexpr uint64_t kStepSliceIterations = 1024;

struct StepOptions {
  std::optional<double> learning_rate;       // absent: the series' rate; 0 = auto
  std::optional<double> tolerance;           // stop once the gradient norm is below it
  std::optional<double> relative_tolerance;  // stop once the relative excess loss <= it
  std::optional<DescentMode> mode;           // absent: the series' mode
  std::optional<View> view;                  // absent: the series' descent view
};

struct StepResult {
  uint64_t iterations = 0;                 // iterations actually run
  bool converged = false;                  // a tolerance was met
  double learning_rate = 0;                // the rate used (in the mode's coordinates)
  bool time_limited = false;               // out_of_time stopped it before `iterations`
  DescentMode mode = DescentMode::kPlain;  // the mode used: never kAuto
  View view = View::kAll;
  double condition_number = 0;              // of the Hessian in the step's coordinates
  double relative_excess_loss = 0;          // after the steps
  std::optional<uint64_t> estimated_steps;  // further steps to the tolerance
  std::string warning;                      // set when the descent cannot make useful progress
};

class Series {
 public:
  // The all-history statistics.
  const PointStats& stats() const { return stats_; }
  const Model& model() const { return model_; }
  const DescentConfig& config() const { return config_; }
  uint64_t steps() const { return steps_; }
  const std::optional<BucketWindow>& window() const { return window_; }
  const std::optional<DecayedStats>& decayed() const { return decayed_; }
  // The earliest and latest event time of a batch applied (0 0 before one).
  int64_t first_event_ns() const { return first_event_ns_; }
  int64_t last_event_ns() const { return last_event_ns_; }

  bool Has(View view) const;
  // The view's statistics; nullopt when the series does not have the view.
  std::optional<ViewStats> ViewOf(View view) const;

  // The mode a step with this override would use (never kAuto).
  DescentMode EffectiveMode(std::optional<DescentMode> mode,
                            std::optional<double> learning_rate) const;
  // The rate a step would use given optional overrides (0 = auto), in the
  // mode's coordinates. REQUIRES: the view is not empty when the rate is
  // auto in plain mode.
  double EffectiveLearningRate(std::optional<double> override_rate,
                               std::optional<DescentMode> mode = std::nullopt,
                               std::optional<View> view = std::nullopt) const;

  // At ingest, before Absorb (may call libm): how a batch at
  // `event_time_ns` is to be applied to this series as it is now.
  BatchStamp StampFor(int64_t event_time_ns) const;

  // Adds the points summarised by `batch` to every view (a window ignores a
  // batch older than it), then runs steps_per_batch descent steps on the
  // descent view. No libm. The points are always applied; if the steps
  // would make the model non-finite they are not run, the model is kept,
  // and the reason is returned as an error status (*steps_run is 0 then).
  // REQUIRES: `stamp` came from StampFor on this same state (or from the
  // journal record of it).
  Status Absorb(const PointStats& batch, const BatchStamp& stamp, uint64_t* steps_run);

  // Runs up to `iterations` descent steps, all or nothing: if any step would
  // make m or b non-finite, nothing changes and an error is returned.
  // `out_of_time` (optional) is asked after every kStepSliceIterations
  // iterations; once it says true the descent stops there and keeps what it
  // ran (time_limited). FAILED_PRECONDITION when the view is missing or
  // empty.
  Status Step(uint64_t iterations, const StepOptions& options, StepResult* result,
              const std::function<bool()>& out_of_time = {});

  // Applies the present fields of `change`, all or nothing: if any is
  // invalid, nothing changes and the error names it.
  Status Configure(const SeriesChange& change);

  // Drops the points (of every view) and the model; keeps the configuration.
  void Reset();

  // The complete state, for snapshots and recovery; Restore(state()) gives
  // back this series bit for bit.
  struct State {
    PointStats stats;
    Model model;
    DescentConfig config;
    uint64_t steps = 0;
    std::optional<BucketWindow> window;
    std::optional<DecayedStats> decayed;
    int64_t first_event_ns = 0;
    int64_t last_event_ns = 0;
  };
  State state() const;
  // REQUIRES: window/decayed present exactly when config asks for them.
  void Restore(const State& state);
  // The model and step count after a replayed step (for recovery).
  void RestoreModel(const Model& model, uint64_t steps);

 private:
  // Step; the diagnostics (condition number, estimate, warning; they call
  // libm) only when `diagnose`.
  Status RunSteps(uint64_t iterations, const StepOptions& options, StepResult* result,
                  const std::function<bool()>& out_of_time, bool diagnose);
  // The iterations of Step on `moments`, from and into *model; r has the
  // mode and rate and gets iterations, converged and time_limited.
  static Status Descend(const Moments& moments, uint64_t iterations, const StepOptions& options,
                        const std::function<bool()>& out_of_time, Model* model, StepResult* r);

  PointStats stats_;
  Model model_;
  DescentConfig config_;
  uint64_t steps_ = 0;
  std::optional<BucketWindow> window_;
  std::optional<DecayedStats> decayed_;
  int64_t first_event_ns_ = 0;
  int64_t last_event_ns_ = 0;
};

// Checks a learning rate given by a client: finite and not negative.
Status ValidateLearningRate(double rate);

// Checks every present field of a configuration change against the series'
// current config (a window needs a length, given now or set before).
Status ValidateSeriesChange(const SeriesChange& change, const DescentConfig& current = {});
// ValidateSeriesChange, then applies the change to *config (all or nothing).
Status ApplySeriesChange(const SeriesChange& change, DescentConfig* config);

}  // namespace gradientd::core
