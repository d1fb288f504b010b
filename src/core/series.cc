#include "core/series.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "core/format.h"

namespace gradientd::core {
namespace {

std::string Short(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

const char* ViewName(View view) {
  switch (view) {
    case View::kAll:
      return "all";
    case View::kWindow:
      return "window";
    case View::kDecayed:
      return "decayed";
  }
  return "?";
}

// `t + 1` without overflow.
int64_t OnePast(int64_t t) { return t == std::numeric_limits<int64_t>::max() ? t : t + 1; }

// The denominator of the relative excess loss: L* when > 0, else var(y)
// when > 0, else 1.
double ExcessLossScale(const Moments& mo) {
  const auto line = mo.LeastSquares();
  const double best = line ? line->loss : mo.var_y;
  if (best > 0) return best;
  if (mo.var_y > 0) return mo.var_y;
  return 1.0;
}

// One standardized step at rate eta (see DescentMode::kStandardized): in
// z = (x - mean_x)/sd_x the model is c + a*z with c = b + m*mean_x,
// a = m*sd_x, and the Hessian is 2I; written in (m, b) so that nothing
// large cancels.
Model StandardizedStep(const Moments& mo, const Model& model, double eta) {
  const double rbar = mo.MeanResidual(model.m, model.b);
  const double dm = mo.var_x > 0 ? 2.0 * eta * ((mo.cov_xy - model.m * mo.var_x) / mo.var_x) : 0;
  // b' = c' - m'*mean_x = b + 2*eta*rbar - dm*mean_x.
  return {model.m + dm, (model.b + 2.0 * eta * rbar) - dm * mo.mean_x()};
}

// log|1 - x|, accurate when x is near 0 or 2.
double LogAbsOneMinus(double x) { return x < 1 ? std::log1p(-x) : std::log1p(x - 2.0); }

struct Conditioning {
  double condition_number = 0;
  double log_rho = 0;  // log of the slowest mode's contraction per step
  bool contracts = false;
};

Conditioning ConditioningOf(const Moments& mo, DescentMode mode, double rate) {
  Conditioning c;
  if (mode == DescentMode::kStandardized) {
    // Hessian 2I in z (just the 2 of c when x has no spread).
    c.condition_number = mo.var_x > 0 ? 1.0 : 0.0;
    c.log_rho = LogAbsOneMinus(2.0 * rate);
    c.contracts = std::fabs(1.0 - 2.0 * rate) < 1.0;
    return c;
  }
  if (!(mo.var_x > 0)) return c;  // a flat direction: no contraction
  const double lambda_max = mo.GradientLipschitzConstant();
  const double lambda_min = 4.0 * mo.var_x / lambda_max;  // det = 4 var_x
  c.condition_number = lambda_max / lambda_min;
  const double rho_max = std::fabs(1.0 - rate * lambda_max);
  const double rho_min = std::fabs(1.0 - rate * lambda_min);
  c.log_rho = LogAbsOneMinus(rate * (rho_max >= rho_min ? lambda_max : lambda_min));
  c.contracts = std::max(rho_max, rho_min) < 1.0 && c.log_rho < 0;
  return c;
}

// Fills the diagnostics of a finished step: condition number, relative
// excess loss, estimated further steps, warning.
void Diagnose(const Moments& mo, const Model& model, double tolerance, StepResult* r) {
  const Conditioning c = ConditioningOf(mo, r->mode, r->learning_rate);
  r->condition_number = c.condition_number;
  r->relative_excess_loss = mo.ExcessLossAt(model.m, model.b) / ExcessLossScale(mo);
  r->estimated_steps.reset();
  double estimate = std::numeric_limits<double>::infinity();
  if (r->relative_excess_loss <= tolerance) {
    estimate = 0;
  } else if (c.contracts && tolerance > 0) {
    // The excess shrinks by ~rho^2 per step.
    estimate = std::isinf(c.log_rho)
                   ? 1.0
                   : std::ceil(std::log(tolerance / r->relative_excess_loss) / (2.0 * c.log_rho));
  }
  if (estimate < 0x1p63) r->estimated_steps = static_cast<uint64_t>(std::max(0.0, estimate));
  r->warning.clear();
  if (r->estimated_steps && *r->estimated_steps <= kMaxStepIterations) return;
  const std::string mode = r->mode == DescentMode::kPlain ? "plain" : "standardized";
  const std::string needs =
      r->estimated_steps ? "needs ~" + Short(estimate) + " steps" : "cannot converge";
  r->warning = mode + " descent on this data " + needs + " (condition number " +
               Short(c.condition_number) + ", learning rate " + Short(r->learning_rate) +
               "); use the standardized mode (descent_mode standardized, or learning rate 0)";
}

Status CheckTolerance(const char* name, std::optional<double> tolerance) {
  if (tolerance && (!std::isfinite(*tolerance) || *tolerance < 0)) {
    return Status::InvalidArgument(std::string(name) + " must be finite and >= 0, got " +
                                   FormatExact(*tolerance));
  }
  return Status::Ok();
}

Status CheckStandardizedRate(DescentMode mode, double rate) {
  if (mode == DescentMode::kStandardized && rate >= 1) {
    return Status::InvalidArgument(
        "a standardized learning rate must be below 1 (it diverges at >= 1; 0.5 = auto lands on "
        "the least-squares line in one step), got " +
        FormatExact(rate));
  }
  return Status::Ok();
}

}  // namespace

Status ValidateLearningRate(double rate) {
  if (!std::isfinite(rate) || rate < 0) {
    return Status::InvalidArgument("learning rate must be finite and >= 0 (0 = auto), got " +
                                   FormatExact(rate));
  }
  return Status::Ok();
}

bool Series::Has(View view) const {
  switch (view) {
    case View::kAll:
      return true;
    case View::kWindow:
      return window_.has_value();
    case View::kDecayed:
      return decayed_.has_value();
  }
  return false;
}

std::optional<ViewStats> Series::ViewOf(View view) const {
  if (!Has(view)) return std::nullopt;
  ViewStats v;
  v.coverage.view = view;
  if (view == View::kDecayed) {
    const DecayedStats& d = *decayed_;
    v.moments = d.moments();
    v.coverage.n = d.count();
    v.coverage.weight = d.weight();
    v.coverage.effective_n = d.effective_count();
    if (!d.empty()) {
      v.coverage.start_ns = d.first_ns();
      v.coverage.end_ns = OnePast(d.reference_ns());
    }
    return v;
  }
  const PointStats& stats = view == View::kAll ? stats_ : window_->Total();
  v.moments = stats.moments();
  v.coverage.n = stats.count();
  v.coverage.weight = static_cast<double>(stats.count());
  v.coverage.effective_n = v.coverage.weight;
  if (view == View::kWindow) {
    v.coverage.start_ns = window_->start_ns();
    v.coverage.end_ns = window_->end_ns();
  } else if (!stats.empty()) {
    v.coverage.start_ns = first_event_ns_;
    v.coverage.end_ns = OnePast(last_event_ns_);
  }
  return v;
}

DescentMode Series::EffectiveMode(std::optional<DescentMode> mode,
                                  std::optional<double> learning_rate) const {
  const DescentMode chosen = mode.value_or(config_.mode);
  if (chosen != DescentMode::kAuto) return chosen;
  return learning_rate.value_or(config_.learning_rate) > 0 ? DescentMode::kPlain
                                                           : DescentMode::kStandardized;
}

double Series::EffectiveLearningRate(std::optional<double> override_rate,
                                     std::optional<DescentMode> mode,
                                     std::optional<View> view) const {
  const double rate = override_rate.value_or(config_.learning_rate);
  if (rate > 0) return rate;
  if (EffectiveMode(mode, override_rate) == DescentMode::kStandardized) return 0.5;
  const std::optional<ViewStats> stats = ViewOf(view.value_or(config_.view));
  return 1.0 / (stats ? stats->moments : Moments{}).GradientLipschitzConstant();
}

BatchStamp Series::StampFor(int64_t event_time_ns) const {
  BatchStamp stamp;
  stamp.event_time_ns = event_time_ns;
  if (decayed_) stamp.decay_factor = decayed_->FactorFor(event_time_ns);
  return stamp;
}

Status Series::Absorb(const PointStats& batch, const BatchStamp& stamp, uint64_t* steps_run) {
  *steps_run = 0;
  if (!batch.empty()) {
    const int64_t t = stamp.event_time_ns;
    const bool first = stats_.empty();
    first_event_ns_ = first ? t : std::min(first_event_ns_, t);
    last_event_ns_ = first ? t : std::max(last_event_ns_, t);
    stats_.Merge(batch);
    if (window_) window_->Add(batch, t);
    if (decayed_) decayed_->Add(batch, t, stamp.decay_factor.value_or(1.0));
  }
  const std::optional<ViewStats> view = ViewOf(config_.view);
  if (config_.steps_per_batch == 0 || !view || view->empty()) return Status::Ok();
  StepResult result;
  Status s = RunSteps(config_.steps_per_batch, StepOptions{}, &result, {}, /*diagnose=*/false);
  if (s.ok()) *steps_run = result.iterations;
  return s;
}

Status Series::Step(uint64_t iterations, const StepOptions& options, StepResult* result,
                    const std::function<bool()>& out_of_time) {
  return RunSteps(iterations, options, result, out_of_time, /*diagnose=*/true);
}

Status Series::RunSteps(uint64_t iterations, const StepOptions& options, StepResult* result,
                        const std::function<bool()>& out_of_time, bool diagnose) {
  const View view = options.view.value_or(config_.view);
  const std::optional<ViewStats> stats = ViewOf(view);
  if (!stats) {
    return Status::FailedPrecondition(std::string("series has no ") + ViewName(view) + " view");
  }
  if (stats->empty()) {
    return Status::FailedPrecondition(view == View::kAll
                                          ? std::string("series has no points to descend on")
                                          : std::string("the series' ") + ViewName(view) +
                                                " view has no points to descend on");
  }
  if (options.learning_rate) {
    if (Status s = ValidateLearningRate(*options.learning_rate); !s.ok()) return s;
  }
  if (Status s = CheckTolerance("tolerance", options.tolerance); !s.ok()) return s;
  if (Status s = CheckTolerance("relative_tolerance", options.relative_tolerance); !s.ok()) {
    return s;
  }
  if (iterations > kMaxStepIterations) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxStepIterations) +
                                   " iterations per step request, got " +
                                   std::to_string(iterations));
  }
  const DescentMode mode = EffectiveMode(options.mode, options.learning_rate);
  const double rate = EffectiveLearningRate(options.learning_rate, mode, view);
  if (!std::isfinite(rate)) {
    return Status::InvalidArgument("the auto learning rate is not finite for this data");
  }
  if (Status s = CheckStandardizedRate(mode, rate); !s.ok()) return s;
  StepResult r;
  r.learning_rate = rate;
  r.mode = mode;
  r.view = view;
  Model model = model_;
  if (Status s = Descend(stats->moments, iterations, options, out_of_time, &model, &r); !s.ok()) {
    return s;
  }
  model_ = model;
  steps_ += r.iterations;
  if (diagnose) {
    Diagnose(stats->moments, model_, options.relative_tolerance.value_or(kDefaultRelativeTolerance),
             &r);
  }
  *result = std::move(r);
  return Status::Ok();
}

Status Series::Descend(const Moments& mo, uint64_t iterations, const StepOptions& options,
                       const std::function<bool()>& out_of_time, Model* model_io, StepResult* r) {
  const double rate = r->learning_rate;
  const bool plain = r->mode == DescentMode::kPlain;
  const double scale = options.relative_tolerance ? ExcessLossScale(mo) : 1.0;
  Model model = *model_io;
  uint64_t done = 0;
  while (true) {
    const Gradient g = mo.GradientAt(model.m, model.b);
    if ((options.tolerance && std::hypot(g.intercept, g.slope) < *options.tolerance) ||
        (options.relative_tolerance &&
         mo.ExcessLossAt(model.m, model.b) / scale <= *options.relative_tolerance)) {
      r->converged = true;
      break;
    }
    if (done == iterations) break;
    const Model next = plain ? Model{model.m - rate * g.slope, model.b - rate * g.intercept}
                             : StandardizedStep(mo, model, rate);
    if (!std::isfinite(next.m) || !std::isfinite(next.b)) {
      return Status::InvalidArgument(
          "descent step " + std::to_string(done + 1) + " at learning rate " + FormatExact(rate) +
          " would make m or b non-finite; the model is unchanged (try a smaller "
          "learning rate, or 0 for auto)");
    }
    model = next;
    ++done;
    if (done % kStepSliceIterations == 0 && done < iterations && out_of_time && out_of_time()) {
      r->time_limited = true;
      break;
    }
  }
  // The reply reports the gradient and loss at the new model: refuse to end
  // where they overflow (a gradient query there is refused too).
  const Gradient end = mo.GradientAt(model.m, model.b);
  if (!std::isfinite(end.intercept) || !std::isfinite(end.slope) ||
      !std::isfinite(mo.LossAt(model.m, model.b))) {
    return Status::InvalidArgument(
        "descent at learning rate " + FormatExact(rate) +
        " would end where the loss or its gradient is non-finite; the model is unchanged (try "
        "a smaller learning rate, or 0 for auto)");
  }
  *model_io = model;
  r->iterations = done;
  return Status::Ok();
}

Status Series::Configure(const SeriesChange& change) {
  DescentConfig next = config_;
  if (Status s = ApplySeriesChange(change, &next); !s.ok()) return s;
  if (!next.window_ns) {
    window_.reset();
  } else if (!window_ || change.window_ns || change.window_buckets) {
    // Setting a window, even to its current value, starts it empty (the
    // protocol's rule).
    window_.emplace(next.window_ns, next.window_buckets);
  }
  if (!next.half_life_ns) {
    decayed_.reset();
  } else if (!decayed_ || change.half_life_ns) {
    decayed_.emplace(next.half_life_ns);
  }
  config_ = next;
  if (change.m) model_.m = *change.m;
  if (change.b) model_.b = *change.b;
  return Status::Ok();
}

Status ValidateSeriesChange(const SeriesChange& change, const DescentConfig& current) {
  DescentConfig next = current;
  return ApplySeriesChange(change, &next);
}

void Series::Reset() {
  stats_ = PointStats();
  model_ = Model();
  steps_ = 0;
  if (window_) window_.emplace(config_.window_ns, config_.window_buckets);
  if (decayed_) decayed_.emplace(config_.half_life_ns);
  first_event_ns_ = 0;
  last_event_ns_ = 0;
}

Series::State Series::state() const {
  return State{.stats = stats_,
               .model = model_,
               .config = config_,
               .steps = steps_,
               .window = window_,
               .decayed = decayed_,
               .first_event_ns = first_event_ns_,
               .last_event_ns = last_event_ns_};
}

void Series::Restore(const State& state) {
  stats_ = state.stats;
  config_ = state.config;
  window_ = state.window;
  decayed_ = state.decayed;
  first_event_ns_ = state.first_event_ns;
  last_event_ns_ = state.last_event_ns;
  RestoreModel(state.model, state.steps);
}

void Series::RestoreModel(const Model& model, uint64_t steps) {
  model_ = model;
  steps_ = steps;
}

}  // namespace gradientd::core
