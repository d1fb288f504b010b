#include "core/series.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

namespace gradientd::core {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

Status ValidateLearningRate(double rate) {
  if (!std::isfinite(rate) || rate < 0) {
    return Status::InvalidArgument("learning rate must be finite and >= 0 (0 = auto), got " +
                                   Num(rate));
  }
  return Status::Ok();
}

double Series::EffectiveLearningRate(std::optional<double> override_rate) const {
  const double rate = override_rate.value_or(config_.learning_rate);
  if (rate > 0) return rate;
  return 1.0 / stats_.GradientLipschitzConstant();
}

Status Series::Absorb(const PointStats& batch, uint64_t* steps_run) {
  stats_.Merge(batch);
  *steps_run = 0;
  if (config_.steps_per_batch == 0 || stats_.empty()) return Status::Ok();
  StepResult result;
  Status s = Step(config_.steps_per_batch, std::nullopt, std::nullopt, &result);
  if (s.ok()) *steps_run = result.iterations;
  return s;
}

Status Series::Step(uint64_t iterations, std::optional<double> learning_rate,
                    std::optional<double> tolerance, StepResult* result,
                    const std::function<bool()>& out_of_time) {
  if (stats_.empty()) {
    return Status::FailedPrecondition("series has no points to descend on");
  }
  if (learning_rate) {
    if (Status s = ValidateLearningRate(*learning_rate); !s.ok()) return s;
  }
  if (tolerance && (!std::isfinite(*tolerance) || *tolerance < 0)) {
    return Status::InvalidArgument("tolerance must be finite and >= 0, got " + Num(*tolerance));
  }
  if (iterations > kMaxStepIterations) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxStepIterations) +
                                   " iterations per step request, got " +
                                   std::to_string(iterations));
  }
  const double rate = EffectiveLearningRate(learning_rate);
  if (!std::isfinite(rate)) {
    return Status::InvalidArgument("the auto learning rate is not finite for this data");
  }
  Model model = model_;
  uint64_t done = 0;
  bool converged = false;
  bool time_limited = false;
  while (true) {
    const Gradient g = stats_.GradientAt(model.m, model.b);
    if (tolerance && std::hypot(g.intercept, g.slope) < *tolerance) {
      converged = true;
      break;
    }
    if (done == iterations) break;
    const Model next{model.m - rate * g.slope, model.b - rate * g.intercept};
    if (!std::isfinite(next.m) || !std::isfinite(next.b)) {
      return Status::InvalidArgument(
          "descent step " + std::to_string(done + 1) + " at learning rate " + Num(rate) +
          " would make m or b non-finite; the model is unchanged (try a smaller "
          "learning rate, or 0 for auto)");
    }
    model = next;
    ++done;
    if (done % kStepSliceIterations == 0 && done < iterations && out_of_time && out_of_time()) {
      time_limited = true;
      break;
    }
  }
  // The reply reports the gradient and loss at the new model: refuse to end
  // where they overflow (a gradient query there is refused too).
  const Gradient end = stats_.GradientAt(model.m, model.b);
  if (!std::isfinite(end.intercept) || !std::isfinite(end.slope) ||
      !std::isfinite(stats_.LossAt(model.m, model.b))) {
    return Status::InvalidArgument(
        "descent at learning rate " + Num(rate) +
        " would end where the loss or its gradient is non-finite; the model is unchanged (try "
        "a smaller learning rate, or 0 for auto)");
  }
  model_ = model;
  steps_ += done;
  *result = StepResult{.iterations = done,
                       .converged = converged,
                       .learning_rate = rate,
                       .time_limited = time_limited};
  return Status::Ok();
}

Status Series::Configure(const SeriesChange& change) {
  if (Status s = ValidateSeriesChange(change); !s.ok()) return s;
  if (change.learning_rate) config_.learning_rate = *change.learning_rate;
  if (change.steps_per_batch) config_.steps_per_batch = *change.steps_per_batch;
  if (change.m) model_.m = *change.m;
  if (change.b) model_.b = *change.b;
  return Status::Ok();
}

Status ValidateSeriesChange(const SeriesChange& change) {
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
                                     Num(*v));
    }
  }
  return Status::Ok();
}

void Series::Restore(const PointStats& stats, const Model& model, const DescentConfig& config,
                     uint64_t steps) {
  stats_ = stats;
  config_ = config;
  RestoreModel(model, steps);
}

void Series::RestoreModel(const Model& model, uint64_t steps) {
  model_ = model;
  steps_ = steps;
}

void Series::Reset() {
  stats_ = PointStats();
  model_ = Model();
  steps_ = 0;
}

}  // namespace gradientd::core
