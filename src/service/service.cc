#include "service/service.h"

#include <cmath>
#include <optional>
#include <span>

namespace gradientd::service {
namespace {

v1::Error::Code ToWireCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return v1::Error::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return v1::Error::NOT_FOUND;
    case StatusCode::kFailedPrecondition:
      return v1::Error::FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted:
      return v1::Error::RESOURCE_EXHAUSTED;
    case StatusCode::kOk:
    case StatusCode::kInternal:
    case StatusCode::kUnavailable:
      break;
  }
  return v1::Error::INTERNAL;
}

void SetError(const Status& status, v1::Response* response) {
  response->mutable_error()->set_code(ToWireCode(status.code()));
  response->mutable_error()->set_message(status.message());
}

// The series a request names: "" means "default". Sets an error and returns
// nullopt when the name is unacceptable.
std::optional<std::string> SeriesName(const std::string& name, v1::Response* response) {
  if (name.empty()) return std::string(kDefaultSeries);
  if (name.size() > kMaxSeriesNameBytes) {
    SetError(Status::InvalidArgument("series name is " + std::to_string(name.size()) +
                                     " bytes; the limit is " + std::to_string(kMaxSeriesNameBytes)),
             response);
    return std::nullopt;
  }
  return name;
}

Status NoSuchSeries(const std::string& name) {
  return Status::NotFound("no series named '" + name + "'");
}

Status NoPoints(const std::string& name) {
  return Status::FailedPrecondition("series '" + name + "' has no points yet");
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

}  // namespace

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
  reply->mutable_descent()->set_loss(stats.LossAt(series.model().m, series.model().b));
  if (auto line = stats.LeastSquares()) {
    v1::Line* ls = reply->mutable_least_squares();
    ls->set_m(line->m);
    ls->set_b(line->b);
    ls->set_loss(line->loss);
  }
  if (auto r2 = stats.RSquared()) reply->set_r_squared(*r2);
}

void Service::Handle(const v1::Request& request, v1::Response* response) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
      return Ingest(request.ingest(), response);
    case v1::Request::kGradient:
      return Gradient(request.gradient(), response);
    case v1::Request::kFit:
      return Fit(request.fit(), response);
    case v1::Request::kStep:
      return Step(request.step(), response);
    case v1::Request::kConfigure:
      return Configure(request.configure(), response);
    case v1::Request::kReset:
      return Reset(request.reset(), response);
    case v1::Request::kList:
      return List(response);
    case v1::Request::BODY_NOT_SET:
      break;
  }
  SetError(Status::InvalidArgument("request has no operation (empty or unknown body)"), response);
}

void Service::Ingest(const v1::PointBatch& batch, v1::Response* response) {
  const auto name = SeriesName(batch.series(), response);
  if (!name) return;
  const std::span<const double> x(batch.x().data(), static_cast<std::size_t>(batch.x_size()));
  const std::span<const double> y(batch.y().data(), static_cast<std::size_t>(batch.y_size()));
  if (Status s = core::ValidatePoints(x, y); !s.ok()) return SetError(s, response);
  // The O(batch) work, outside every lock; the merge below is O(1).
  const core::PointStats partial = core::PointStats::FromPoints(x, y);
  v1::IngestAck* ack = response->mutable_ack();
  store_.WithNewOrExistingSeries(*name, [&](core::Series& series) {
    uint64_t steps = 0;
    const Status descent = series.Absorb(partial, &steps);
    ack->set_total(series.stats().count());
    ack->set_steps(steps);
    if (!descent.ok()) ack->set_descent_error(descent.message());
  });
  ack->set_series(*name);
  ack->set_accepted(x.size());
}

void Service::Gradient(const v1::GradientQuery& query, v1::Response* response) {
  const auto name = SeriesName(query.series(), response);
  if (!name) return;
  if ((query.has_m() && !std::isfinite(query.m())) ||
      (query.has_b() && !std::isfinite(query.b()))) {
    return SetError(Status::InvalidArgument("m and b must be finite"), response);
  }
  Status status;
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    if (series.stats().empty()) {
      status = NoPoints(*name);
      return;
    }
    const double m = query.has_m() ? query.m() : series.model().m;
    const double b = query.has_b() ? query.b() : series.model().b;
    FillGradient(*name, series, m, b, response->mutable_gradient());
  });
  if (!found) status = NoSuchSeries(*name);
  if (status.ok() && !IsFinite(response->gradient())) {
    status = Status::InvalidArgument("the gradient overflows at this (m, b)");
  }
  if (!status.ok()) {
    response->Clear();
    SetError(status, response);
  }
}

void Service::Fit(const v1::FitQuery& query, v1::Response* response) {
  const auto name = SeriesName(query.series(), response);
  if (!name) return;
  const bool found = store_.WithSeries(
      *name, [&](core::Series& series) { FillFitReply(*name, series, response->mutable_fit()); });
  if (!found) SetError(NoSuchSeries(*name), response);
}

void Service::Step(const v1::StepRequest& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return;
  const auto learning_rate =
      request.has_learning_rate() ? std::optional(request.learning_rate()) : std::nullopt;
  const auto tolerance =
      request.has_tolerance() ? std::optional(request.tolerance()) : std::nullopt;
  Status status;
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    if (series.stats().empty()) {
      status = NoPoints(*name);
      return;
    }
    core::StepResult result;
    status = series.Step(request.iterations(), learning_rate, tolerance, &result);
    if (!status.ok()) return;
    v1::StepReply* reply = response->mutable_step();
    reply->set_iterations(result.iterations);
    reply->set_converged(result.converged);
    reply->set_learning_rate(result.learning_rate);
    FillGradient(*name, series, series.model().m, series.model().b, reply->mutable_gradient());
  });
  if (!found) status = NoSuchSeries(*name);
  if (!status.ok()) SetError(status, response);
}

void Service::Configure(const v1::ConfigureSeries& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return;
  core::SeriesChange change;
  if (request.has_learning_rate()) change.learning_rate = request.learning_rate();
  if (request.has_steps_per_batch()) change.steps_per_batch = request.steps_per_batch();
  if (request.has_m()) change.m = request.m();
  if (request.has_b()) change.b = request.b();
  // Validate before the series may be created, so a bad request creates nothing.
  if (Status s = core::ValidateSeriesChange(change); !s.ok()) return SetError(s, response);
  store_.WithNewOrExistingSeries(*name, [&](core::Series& series) {
    (void)series.Configure(change);  // validated above; cannot fail
    FillFitReply(*name, series, response->mutable_fit());
  });
}

void Service::Reset(const v1::ResetSeries& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return;
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    series.Reset();
    FillFitReply(*name, series, response->mutable_fit());
  });
  if (!found) SetError(NoSuchSeries(*name), response);
}

void Service::List(v1::Response* response) {
  v1::SeriesList* list = response->mutable_series_list();
  store_.ForEach([&](const std::string& name, const core::Series& series) {
    FillFitReply(name, series, list->add_series());
  });
}

}  // namespace gradientd::service
