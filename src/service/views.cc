#include "service/views.h"

#include <cmath>
#include <optional>
#include <string>

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

void FillCoverage(const core::Coverage& c, v1::Coverage* coverage) {
  coverage->set_view(ToProto(c.view));
  coverage->set_n(c.n);
  coverage->set_weight(c.weight);
  coverage->set_effective_n(c.effective_n);
  coverage->set_start_unix_nanos(c.start_ns);
  coverage->set_end_unix_nanos(c.end_ns);
}

// The view's lines at the series' model.
void FillViewFit(const core::Series& series, const core::ViewStats& stats, v1::ViewFit* fit) {
  const core::Model& model = series.model();
  FillCoverage(stats.coverage, fit->mutable_coverage());
  fit->mutable_descent()->set_m(model.m);
  fit->mutable_descent()->set_b(model.b);
  if (stats.empty()) return;
  const core::Moments& moments = stats.moments;
  fit->set_mean_x(moments.mean_x());
  fit->set_mean_y(moments.mean_y());
  SetLoss(moments.LossAt(model.m, model.b), fit->mutable_descent());
  if (auto line = moments.LeastSquares()) {
    v1::Line* ls = fit->mutable_least_squares();
    ls->set_m(line->m);
    ls->set_b(line->b);
    SetLoss(line->loss, ls);
  }
  if (auto r2 = moments.RSquared(); r2 && std::isfinite(*r2)) fit->set_r_squared(*r2);
}

// The rate the next step after a batch uses; the configured one while it
// is not defined (the auto plain rate needs points).
double NextLearningRate(const core::Series& series) {
  const core::DescentConfig& config = series.config();
  const auto descent = series.ViewOf(config.view);
  const bool needs_points =
      config.learning_rate == 0 &&
      series.EffectiveMode(std::nullopt, std::nullopt) == core::DescentMode::kPlain;
  if (!descent || (needs_points && descent->empty())) return config.learning_rate;
  return series.EffectiveLearningRate(std::nullopt);
}

}  // namespace

v1::View ToProto(core::View view) {
  switch (view) {
    case core::View::kWindow:
      return v1::VIEW_WINDOW;
    case core::View::kDecayed:
      return v1::VIEW_DECAYED;
    case core::View::kAll:
      break;
  }
  return v1::VIEW_ALL;
}

v1::DescentMode ToProto(core::DescentMode mode) {
  switch (mode) {
    case core::DescentMode::kPlain:
      return v1::DESCENT_MODE_PLAIN;
    case core::DescentMode::kStandardized:
      return v1::DESCENT_MODE_STANDARDIZED;
    case core::DescentMode::kAuto:
      break;
  }
  return v1::DESCENT_MODE_UNSPECIFIED;
}

Status QueryView(v1::View view, core::View* out) {
  switch (view) {
    case v1::VIEW_UNSPECIFIED:
    case v1::VIEW_ALL:
      *out = core::View::kAll;
      return Status::Ok();
    case v1::VIEW_WINDOW:
      *out = core::View::kWindow;
      return Status::Ok();
    case v1::VIEW_DECAYED:
      *out = core::View::kDecayed;
      return Status::Ok();
    default:
      break;
  }
  return Status::InvalidArgument("unknown view " + std::to_string(static_cast<int>(view)) +
                                 " (VIEW_ALL, VIEW_WINDOW or VIEW_DECAYED)");
}

Status FromProto(v1::DescentMode mode, core::DescentMode* out) {
  switch (mode) {
    case v1::DESCENT_MODE_UNSPECIFIED:
      *out = core::DescentMode::kAuto;
      return Status::Ok();
    case v1::DESCENT_MODE_PLAIN:
      *out = core::DescentMode::kPlain;
      return Status::Ok();
    case v1::DESCENT_MODE_STANDARDIZED:
      *out = core::DescentMode::kStandardized;
      return Status::Ok();
    default:
      break;
  }
  return Status::InvalidArgument("unknown descent mode " + std::to_string(static_cast<int>(mode)) +
                                 " (DESCENT_MODE_PLAIN or DESCENT_MODE_STANDARDIZED)");
}

const char* ViewName(core::View view) {
  switch (view) {
    case core::View::kWindow:
      return "window";
    case core::View::kDecayed:
      return "decayed";
    case core::View::kAll:
      break;
  }
  return "all-history";
}

Status NonEmptyView(const std::string& name, const core::Series& series, core::View view,
                    core::ViewStats* stats) {
  const auto found = series.ViewOf(view);
  if (!found) {
    const char* how = view == core::View::kWindow
                          ? "ConfigureSeries.window_nanos and window_buckets (gradctl configure "
                            "--window 1h --buckets 60)"
                          : "ConfigureSeries.half_life_nanos (gradctl configure --half-life 10m)";
    return Status::FailedPrecondition("series '" + name + "' has no " + ViewName(view) +
                                      " view: configure one with " + how);
  }
  if (found->empty()) {
    if (view == core::View::kAll) {
      return Status::FailedPrecondition("series '" + name + "' has no points yet");
    }
    return Status::FailedPrecondition("the " + std::string(ViewName(view)) + " view of series '" +
                                      name + "' has no points (yet, or any more)");
  }
  *stats = *found;
  return Status::Ok();
}

Status ChangeOf(const v1::ConfigureSeries& r, core::SeriesChange* change) {
  if (r.has_learning_rate()) change->learning_rate = r.learning_rate();
  if (r.has_steps_per_batch()) change->steps_per_batch = r.steps_per_batch();
  if (r.has_m()) change->m = r.m();
  if (r.has_b()) change->b = r.b();
  if (r.has_descent_mode()) {
    core::DescentMode mode{};
    if (Status s = FromProto(r.descent_mode(), &mode); !s.ok()) return s;
    change->mode = mode;
  }
  if (r.descent_view() != v1::VIEW_UNSPECIFIED) {
    core::View view{};
    if (Status s = QueryView(r.descent_view(), &view); !s.ok()) return s;
    change->view = view;
  }
  if (r.has_window_nanos()) change->window_ns = r.window_nanos();
  if (r.has_window_buckets()) change->window_buckets = r.window_buckets();
  if (r.has_half_life_nanos()) change->half_life_ns = r.half_life_nanos();
  change->remove_window = r.remove_window();
  change->remove_decay = r.remove_decay();
  return Status::Ok();
}

Status OptionsOf(const v1::StepRequest& r, core::StepOptions* options) {
  if (r.has_learning_rate()) options->learning_rate = r.learning_rate();
  if (r.has_tolerance()) options->tolerance = r.tolerance();
  if (r.has_relative_tolerance()) options->relative_tolerance = r.relative_tolerance();
  if (r.has_mode()) {
    core::DescentMode mode{};
    if (Status s = FromProto(r.mode(), &mode); !s.ok()) return s;
    options->mode = mode;
  }
  if (r.view() != v1::VIEW_UNSPECIFIED) {
    core::View view{};
    if (Status s = QueryView(r.view(), &view); !s.ok()) return s;
    options->view = view;
  }
  return Status::Ok();
}

void FillFitReply(const std::string& name, const core::Series& series, core::View view,
                  v1::FitReply* reply) {
  const core::DescentConfig& config = series.config();
  reply->set_series(name);
  reply->mutable_descent()->set_m(series.model().m);
  reply->mutable_descent()->set_b(series.model().b);
  reply->set_steps(series.steps());
  reply->set_steps_per_batch(config.steps_per_batch);
  reply->set_learning_rate_auto(config.learning_rate == 0);
  reply->set_learning_rate(NextLearningRate(series));
  reply->set_descent_mode(ToProto(config.mode));
  reply->set_effective_descent_mode(ToProto(series.EffectiveMode(std::nullopt, std::nullopt)));
  reply->set_descent_view(ToProto(config.view));
  reply->set_window_nanos(config.window_ns);
  reply->set_window_buckets(config.window_buckets);
  reply->set_half_life_nanos(config.half_life_ns);
  for (const core::View each : {core::View::kAll, core::View::kWindow, core::View::kDecayed}) {
    const auto stats = series.ViewOf(each);
    if (!stats) continue;
    v1::ViewFit* fit = reply->add_views();
    FillViewFit(series, *stats, fit);
    if (each != view) continue;
    // The chosen view's fields, as the reply's own.
    reply->set_n(fit->coverage().n());
    *reply->mutable_coverage() = fit->coverage();
    *reply->mutable_descent() = fit->descent();
    if (fit->has_least_squares()) *reply->mutable_least_squares() = fit->least_squares();
    if (fit->has_r_squared()) reply->set_r_squared(fit->r_squared());
    reply->set_mean_x(fit->mean_x());
    reply->set_mean_y(fit->mean_y());
  }
}

void FillGradient(const std::string& name, const core::ViewStats& stats, double m, double b,
                  v1::GradientReply* reply) {
  const core::Gradient g = stats.moments.GradientAt(m, b);
  reply->set_series(name);
  reply->set_n(stats.coverage.n);
  reply->set_m(m);
  reply->set_b(b);
  reply->set_intercept_gradient(g.intercept);
  reply->set_slope_gradient(g.slope);
  reply->set_loss(stats.moments.LossAt(m, b));
  FillCoverage(stats.coverage, reply->mutable_coverage());
}

bool IsFinite(const v1::GradientReply& g) {
  return std::isfinite(g.intercept_gradient()) && std::isfinite(g.slope_gradient()) &&
         std::isfinite(g.loss());
}

void FillStepReply(const core::StepResult& result, v1::StepReply* reply) {
  reply->set_iterations(result.iterations);
  reply->set_converged(result.converged);
  reply->set_learning_rate(result.learning_rate);
  reply->set_time_limited(result.time_limited);
  reply->set_mode(ToProto(result.mode));
  reply->set_condition_number(result.condition_number);
  reply->set_relative_excess_loss(result.relative_excess_loss);
  if (result.estimated_steps) reply->set_estimated_steps(*result.estimated_steps);
  reply->set_warning(result.warning);
}

void AbsorbBatch(const core::PointStats& partial, const core::BatchStamp& stamp,
                 core::Series& series, v1::IngestAck* ack) {
  uint64_t steps = 0;
  const Status descent = series.Absorb(partial, stamp, &steps);
  if (ack == nullptr) return;
  ack->set_total(series.stats().count());
  ack->set_steps(steps);
  ack->set_event_time_unix_nanos(stamp.event_time_ns);
  if (!descent.ok()) ack->set_descent_error(descent.message());
}

}  // namespace gradientd::service
