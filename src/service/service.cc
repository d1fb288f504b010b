#include "service/service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <span>

#include "protocol/error_codes.h"
#include "service/series_state.h"

namespace gradientd::service {
namespace {

using protocol::SetError;

// The end of a change: its token, or, when it failed, an Error in place of
// whatever the response held, and nothing to wait for.
uint64_t Finish(const Status& status, uint64_t token, v1::Response* response) {
  if (status.ok()) return token;
  response->Clear();
  SetError(status, response);
  return 0;
}

Status NoSuchSeries(const std::string& name) {
  return Status::NotFound("no series named '" + name + "'");
}

Status NoPoints(const std::string& name) {
  return Status::FailedPrecondition("series '" + name + "' has no points yet");
}

}  // namespace

uint64_t Service::Handle(const v1::Request& request, v1::Response* response) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
      return Ingest(request.ingest(), response);
    case v1::Request::kGradient:
      Gradient(request.gradient(), response);
      return 0;
    case v1::Request::kFit:
      Fit(request.fit(), response);
      return 0;
    case v1::Request::kStep:
      return Step(request.step(), response);
    case v1::Request::kConfigure:
      return Configure(request.configure(), response);
    case v1::Request::kReset:
      return Reset(request.reset(), response);
    case v1::Request::kList:
      List(request.list(), response);
      return 0;
    case v1::Request::kHello: {
      // The Service does no access control (auth::Session does, in front
      // of it): to it every connection is an open server's.
      v1::HelloReply* hello = response->mutable_hello();
      hello->set_open(true);
      for (const v1::Role role : {v1::PRODUCE, v1::QUERY, v1::ADMIN}) hello->add_roles(role);
      return 0;
    }
    case v1::Request::BODY_NOT_SET:
      break;
  }
  SetError(Status::InvalidArgument("request has no operation (empty or unknown body)"), response);
  return 0;
}

Status Service::Log(const v1::JournalRecord& record, uint64_t* token) {
  *token = 0;
  return log_ == nullptr ? Status::Ok() : log_->Append(record, token);
}

std::optional<std::string> Service::SeriesName(const std::string& name,
                                               v1::Response* response) const {
  if (name.empty()) return protocol::SeriesOrDefault(name);
  const Status problem = ValidateSeriesName(name, limits_.max_series_name_bytes);
  if (problem.ok()) return name;
  SetError(problem, response);
  return std::nullopt;
}

Status Service::TooManySeries(const std::string& name) const {
  return Status::ResourceExhausted("the server's limit of " + std::to_string(limits_.max_series) +
                                   " series is reached: series '" + name +
                                   "' was not created (existing series keep working)");
}

uint64_t Service::Ingest(const v1::PointBatch& batch, v1::Response* response) {
  const auto name = SeriesName(batch.series(), response);
  if (!name) return 0;
  const std::span<const double> x(batch.x().data(), static_cast<std::size_t>(batch.x_size()));
  const std::span<const double> y(batch.y().data(), static_cast<std::size_t>(batch.y_size()));
  if (x.size() > limits_.max_batch_points) {
    SetError(
        Status::InvalidArgument("batch has " + std::to_string(x.size()) + " points; the limit is " +
                                std::to_string(limits_.max_batch_points) + " per batch"),
        response);
    return 0;
  }
  if (!batch.producer_id().empty()) {
    if (Status s = ValidateProducerId(batch.producer_id()); !s.ok()) {
      SetError(s, response);
      return 0;
    }
  }
  // The O(batch) work, outside every lock; what follows is O(1).
  core::PointStats partial;
  if (Status s = core::PointStats::FromClientPoints(x, y, &partial); !s.ok()) {
    SetError(s, response);
    return 0;
  }
  v1::JournalRecord record;
  record.set_series(*name);
  *record.mutable_batch() = ToState(partial);
  record.set_producer_id(batch.producer_id());
  record.set_sequence(batch.sequence());

  util::ReaderLock change(changes_);
  uint64_t token = 0;
  Status status;
  if (!batch.producer_id().empty() && batch.sequence() > 0) {
    status = IngestExactlyOnce(*name, batch, partial, &record, response, &token);
  } else {
    v1::IngestAck* ack = response->mutable_ack();
    ack->set_series(*name);
    status = ApplyBatch(*name, batch, partial, record, ack, &token);
  }
  return Finish(status, token, response);
}

Status Service::IngestExactlyOnce(const std::string& name, const v1::PointBatch& batch,
                                  const core::PointStats& partial, v1::JournalRecord* record,
                                  v1::Response* response, uint64_t* token) {
  Status status;
  const Status found = producers_.WithProducer(
      batch.producer_id(),
      [&](ProducerTable::Producer& producer, int64_t now, bool created) REQUIRES(producer.mu) {
        record->set_time_unix_nanos(now);
        // A producer not seen for producer_expiry is forgotten: its batches
        // count again (Expired is false for one just created).
        const uint64_t last_sequence =
            producers_.Expired(producer, now) ? 0 : producer.last_sequence;
        v1::IngestAck* ack = response->mutable_ack();
        ack->set_series(name);
        if (batch.sequence() <= last_sequence) {
          ack->set_duplicate(true);
          store_.WithSeries(name,
                            [&](core::Series& series) { ack->set_total(series.stats().count()); });
          // Acknowledge only once the original is durable.
          *token = producer.last_token;
          return;
        }
        status = ApplyBatch(name, batch, partial, *record, ack, token);
        if (!status.ok()) {
          // A refused batch changes nothing: not even the producer table.
          if (created) producers_.Drop(batch.producer_id(), producer);
          return;
        }
        producer.last_sequence = batch.sequence();
        producer.last_token = *token;
        producer.last_seen = std::max(producer.last_seen.load(), now);
      });
  return found.ok() ? status : found;
}

Status Service::ApplyBatch(const std::string& name, const v1::PointBatch& batch,
                           const core::PointStats& partial, const v1::JournalRecord& record,
                           v1::IngestAck* ack, uint64_t* token) {
  Status status;
  const bool exists = store_.WithNewOrExistingSeries(
      name,
      [&](core::Series& series) {
        status = Log(record, token);
        if (!status.ok()) return false;
        AbsorbBatch(partial, series, ack);
        if (batch_observer_) batch_observer_(name, batch);
        return true;
      },
      limits_.max_series);
  if (!exists) status = TooManySeries(name);
  if (status.ok()) ack->set_accepted(static_cast<std::size_t>(batch.x_size()));
  return status;
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

uint64_t Service::Step(const v1::StepRequest& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return 0;
  const auto learning_rate =
      request.has_learning_rate() ? std::optional(request.learning_rate()) : std::nullopt;
  const auto tolerance =
      request.has_tolerance() ? std::optional(request.tolerance()) : std::nullopt;
  Status status;
  uint64_t token = 0;
  util::ReaderLock change(changes_);
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    if (series.stats().empty()) {
      status = NoPoints(*name);
      return;
    }
    core::Series after = series;
    core::StepResult result;
    const auto deadline = std::chrono::steady_clock::now() + limits_.max_step_time;
    status = after.Step(request.iterations(),
                        core::StepOptions{.learning_rate = learning_rate, .tolerance = tolerance},
                        &result, [&] { return std::chrono::steady_clock::now() >= deadline; });
    if (!status.ok()) return;
    v1::JournalRecord record;
    record.set_series(*name);
    *record.mutable_model() = ToState(after);
    status = Log(record, &token);
    if (!status.ok()) return;
    series = after;
    v1::StepReply* reply = response->mutable_step();
    reply->set_iterations(result.iterations);
    reply->set_converged(result.converged);
    reply->set_learning_rate(result.learning_rate);
    reply->set_time_limited(result.time_limited);
    FillGradient(*name, series, series.model().m, series.model().b, reply->mutable_gradient());
  });
  if (!found) status = NoSuchSeries(*name);
  return Finish(status, token, response);
}

uint64_t Service::Configure(const v1::ConfigureSeries& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return 0;
  core::SeriesChange change;
  if (request.has_learning_rate()) change.learning_rate = request.learning_rate();
  if (request.has_steps_per_batch()) change.steps_per_batch = request.steps_per_batch();
  if (request.has_m()) change.m = request.m();
  if (request.has_b()) change.b = request.b();
  // Validate before the series may be created, so a bad request creates nothing.
  if (Status s = core::ValidateSeriesChange(change); !s.ok()) {
    SetError(s, response);
    return 0;
  }
  Status status;
  uint64_t token = 0;
  util::ReaderLock lock(changes_);
  const bool exists = store_.WithNewOrExistingSeries(
      *name,
      [&](core::Series& series) {
        core::Series after = series;
        (void)after.Configure(change);  // validated above; cannot fail
        v1::JournalRecord record;
        record.set_series(*name);
        *record.mutable_configured()->mutable_settings() = SettingsOf(after);
        *record.mutable_configured()->mutable_model() = ToState(after);
        status = Log(record, &token);
        if (!status.ok()) return false;
        series = after;
        FillFitReply(*name, series, response->mutable_fit());
        return true;
      },
      limits_.max_series);
  if (!exists) status = TooManySeries(*name);
  return Finish(status, token, response);
}

uint64_t Service::Reset(const v1::ResetSeries& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return 0;
  Status status;
  uint64_t token = 0;
  util::ReaderLock lock(changes_);
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    v1::JournalRecord record;
    record.set_series(*name);
    record.set_reset(true);
    status = Log(record, &token);
    if (!status.ok()) return;
    series.Reset();
    FillFitReply(*name, series, response->mutable_fit());
  });
  if (!found) status = NoSuchSeries(*name);
  return Finish(status, token, response);
}

void Service::List(const v1::ListSeries& request, v1::Response* response) {
  const std::size_t page_size =
      request.page_size() == 0 ? kDefaultListPageSize : std::size_t{request.page_size()};
  if (page_size > kMaxListPageSize) {
    return SetError(Status::InvalidArgument("page_size is " + std::to_string(page_size) +
                                            "; the limit is " + std::to_string(kMaxListPageSize)),
                    response);
  }
  if (request.prefix().size() > limits_.max_series_name_bytes) {
    return SetError(
        BytesOverLimit("the name prefix", request.prefix().size(), limits_.max_series_name_bytes),
        response);
  }
  const std::string& token = request.page_token();
  if (!token.empty()) {
    // A token is the last name of the previous page.
    if (!ValidateSeriesName(token, limits_.max_series_name_bytes).ok() ||
        !token.starts_with(request.prefix())) {
      return SetError(Status::InvalidArgument("page_token is not one this server gave for a "
                                              "listing with this prefix"),
                      response);
    }
  }
  v1::SeriesList* list = response->mutable_series_list();
  std::size_t bytes = 0;
  bool more = false;
  std::size_t visited = 0;
  v1::FitReply reply;
  // One past the page, to know whether there is more.
  store_.ForEachAfter(token, request.prefix(), page_size + 1,
                      [&](const std::string& name, const core::Series& series) {
                        if (visited++ == page_size) {
                          more = true;
                          return false;
                        }
                        reply.Clear();
                        FillFitReply(name, series, &reply);
                        // With its tag and length in the SeriesList.
                        const std::size_t size = reply.ByteSizeLong() + 4;
                        if (list->series_size() > 0 && bytes + size > kMaxListPageBytes) {
                          more = true;
                          return false;
                        }
                        bytes += size;
                        list->add_series()->Swap(&reply);
                        return true;
                      });
  if (more) list->set_next_page_token(list->series(list->series_size() - 1).series());
}

}  // namespace gradientd::service
