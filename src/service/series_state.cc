#include "service/series_state.h"

#include <cmath>
#include <optional>

#include "service/service.h"

namespace gradientd::service {
namespace {

// The one rule for losses: a loss that is not finite is never reported; the
// line says why it has none instead.
void SetLoss(double loss, v1::Line* line) {
  if (std::isfinite(loss)) {
    line->set_loss(loss);
  } else {
    line->set_loss_error(std::string(kLossOverflows));
  }
}

}  // namespace

v1::PointStatsState ToState(const core::PointStats& stats) {
  const core::PointStats::Raw raw = stats.raw();
  v1::PointStatsState state;
  state.set_n(raw.n);
  state.set_pivot_x(raw.pivot_x);
  state.set_pivot_y(raw.pivot_y);
  state.set_mean_dx(raw.mean_dx);
  state.set_mean_dy(raw.mean_dy);
  state.set_var_x(raw.var_x);
  state.set_var_y(raw.var_y);
  state.set_cov_xy(raw.cov_xy);
  return state;
}

core::PointStats FromState(const v1::PointStatsState& s) {
  return core::PointStats::FromRaw({.n = s.n(),
                                    .pivot_x = s.pivot_x(),
                                    .pivot_y = s.pivot_y(),
                                    .mean_dx = s.mean_dx(),
                                    .mean_dy = s.mean_dy(),
                                    .var_x = s.var_x(),
                                    .var_y = s.var_y(),
                                    .cov_xy = s.cov_xy()});
}

v1::ModelState ToState(const core::Series& series) {
  v1::ModelState model;
  model.set_m(series.model().m);
  model.set_b(series.model().b);
  model.set_steps(series.steps());
  return model;
}

v1::DescentSettings SettingsOf(const core::Series& series) {
  v1::DescentSettings settings;
  settings.set_learning_rate(series.config().learning_rate);
  settings.set_steps_per_batch(series.config().steps_per_batch);
  return settings;
}

core::DescentConfig FromState(const v1::DescentSettings& s) {
  return {.learning_rate = s.learning_rate(), .steps_per_batch = s.steps_per_batch()};
}

void FillGradient(const std::string& name, const core::Series& series, double m, double b,
                  v1::GradientReply* reply) {
  const core::Gradient g = series.stats().GradientAt(m, b);
  reply->set_series(name);
  reply->set_n(series.stats().count());
  reply->set_m(m);
  reply->set_b(b);
  reply->set_intercept_gradient(g.intercept);
  reply->set_slope_gradient(g.slope);
  reply->set_loss(series.stats().LossAt(m, b));
}

bool IsFinite(const v1::GradientReply& g) {
  return std::isfinite(g.intercept_gradient()) && std::isfinite(g.slope_gradient()) &&
         std::isfinite(g.loss());
}

void FillFitReply(const std::string& name, const core::Series& series, v1::FitReply* reply) {
  const core::PointStats& stats = series.stats();
  reply->set_series(name);
  reply->set_n(stats.count());
  reply->mutable_descent()->set_m(series.model().m);
  reply->mutable_descent()->set_b(series.model().b);
  reply->set_steps(series.steps());
  reply->set_steps_per_batch(series.config().steps_per_batch);
  reply->set_learning_rate_auto(series.config().learning_rate == 0);
  if (stats.empty()) {
    // The auto rate is not defined without points; report the configured one.
    reply->set_learning_rate(series.config().learning_rate);
    return;
  }
  reply->set_learning_rate(series.EffectiveLearningRate(std::nullopt));
  reply->set_mean_x(stats.mean_x());
  reply->set_mean_y(stats.mean_y());
  SetLoss(stats.LossAt(series.model().m, series.model().b), reply->mutable_descent());
  if (auto line = stats.LeastSquares()) {
    v1::Line* ls = reply->mutable_least_squares();
    ls->set_m(line->m);
    ls->set_b(line->b);
    SetLoss(line->loss, ls);
  }
  if (auto r2 = stats.RSquared(); r2 && std::isfinite(*r2)) reply->set_r_squared(*r2);
}

// Absorbs a batch's statistics into a series and fills the acknowledgement.
void AbsorbBatch(const core::PointStats& partial, core::Series& series, v1::IngestAck* ack) {
  uint64_t steps = 0;
  const Status descent = series.Absorb(partial, series.StampFor(0), &steps);
  if (ack == nullptr) return;
  ack->set_total(series.stats().count());
  ack->set_steps(steps);
  if (!descent.ok()) ack->set_descent_error(descent.message());
}

}  // namespace gradientd::service
