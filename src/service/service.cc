#include "service/service.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <span>

#include "protocol/error_codes.h"
#include "service/series_state.h"
#include "service/views.h"

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

// "2026-12-01T23:20:00.000000000Z (1764631200000000000 ns)".
std::string UnixNanosText(int64_t ns) {
  constexpr int64_t kBillion = 1'000'000'000;
  // Floor division without a multiplication that could overflow near the
  // int64 range's ends.
  const int64_t remainder = ns % kBillion;
  const int64_t seconds = ns / kBillion - (remainder < 0 ? 1 : 0);
  const int64_t fraction = remainder < 0 ? remainder + kBillion : remainder;
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  char date[32] = "?";
  if (gmtime_r(&t, &tm) != nullptr) std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char text[96];
  std::snprintf(text, sizeof text, "%s.%09" PRId64 "Z (%" PRId64 " ns)", date, fraction, ns);
  return text;
}

}  // namespace

uint64_t Service::Handle(const v1::Request& request, v1::Response* response) {
  if (metrics_ == nullptr) return Dispatch(request, response);
  const auto start = std::chrono::steady_clock::now();
  const uint64_t token = Dispatch(request, response);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  metrics_->CountRequest(OperationOf(request), *response, took.count());
  return token;
}

uint64_t Service::Dispatch(const v1::Request& request, v1::Response* response) {
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
      return Step(request.step(), response, /*timed=*/true);
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
  CountRefusal(Limit::kMaxSeries);
  return Status::ResourceExhausted("the server's limit of " + std::to_string(limits_.max_series) +
                                   " series is reached: series '" + name +
                                   "' was not created (existing series keep working)");
}

uint64_t Service::Ingest(const v1::PointBatch& batch, v1::Response* response) {
  PreparedBatch prepared;
  if (!PrepareBatch(batch, &prepared, response)) return 0;
  util::ReaderLock change(changes_);
  uint64_t token = 0;
  const Status status = ApplyPrepared(&prepared, &batch, std::nullopt, response, &token);
  return Finish(status, token, response);
}

bool Service::PrepareBatch(const v1::PointBatch& batch, PreparedBatch* prepared,
                           v1::Response* response) {
  const auto name = SeriesName(batch.series(), response);
  if (!name) return false;
  const std::span<const double> x(batch.x().data(), static_cast<std::size_t>(batch.x_size()));
  const std::span<const double> y(batch.y().data(), static_cast<std::size_t>(batch.y_size()));
  if (x.size() > limits_.max_batch_points) {
    CountRefusal(Limit::kBatchPoints);
    SetError(
        Status::InvalidArgument("batch has " + std::to_string(x.size()) + " points; the limit is " +
                                std::to_string(limits_.max_batch_points) + " per batch"),
        response);
    return false;
  }
  if (!batch.producer_id().empty()) {
    if (Status s = ValidateProducerId(batch.producer_id()); !s.ok()) {
      SetError(s, response);
      return false;
    }
  }
  // The O(batch) work, outside every lock; what follows is O(1).
  if (Status s = core::PointStats::FromClientPoints(x, y, &prepared->partial); !s.ok()) {
    SetError(s, response);
    return false;
  }
  prepared->received = producers_.Now();
  const int64_t event_time =
      batch.has_event_time_unix_nanos() ? batch.event_time_unix_nanos() : prepared->received;
  if (Status s = CheckFutureSkew(event_time, prepared->received); !s.ok()) {
    CountRefusal(Limit::kFutureSkew);
    SetError(s, response);
    return false;
  }
  v1::JournalRecord& record = prepared->record;
  record.set_series(*name);
  *record.mutable_batch() = ToState(prepared->partial);
  record.set_producer_id(batch.producer_id());
  record.set_sequence(batch.sequence());
  record.set_event_time_unix_nanos(event_time);
  return true;
}

Status Service::ApplyPrepared(PreparedBatch* prepared, const v1::PointBatch* batch,
                              std::optional<int64_t> at, v1::Response* response, uint64_t* token) {
  v1::JournalRecord& record = prepared->record;
  if (!record.producer_id().empty() && record.sequence() > 0) {
    return IngestExactlyOnce(*prepared, batch, at, response, token);
  }
  v1::IngestAck* ack = response->mutable_ack();
  ack->set_series(record.series());
  return ApplyBatch(*prepared, batch, ack, token);
}

Status Service::CheckFutureSkew(int64_t event_time, int64_t now) const {
  // In unsigned arithmetic, so that no difference of two int64 overflows.
  const uint64_t skew = static_cast<uint64_t>(limits_.max_future_skew.count());
  if (event_time <= now || static_cast<uint64_t>(event_time) - static_cast<uint64_t>(now) <= skew) {
    return Status::Ok();
  }
  const uint64_t ahead = static_cast<uint64_t>(event_time) - static_cast<uint64_t>(now);
  char seconds[96];
  std::snprintf(seconds, sizeof seconds, " is %.3f s ahead of the server's clock; at most %.3f s",
                static_cast<double>(ahead) / 1e9, static_cast<double>(skew) / 1e9);
  return Status::InvalidArgument("the batch's event time " + UnixNanosText(event_time) + seconds +
                                 " is allowed (--max-future-skew); the server's clock is " +
                                 UnixNanosText(now) + ". Nothing was applied");
}

Status Service::IngestExactlyOnce(PreparedBatch& prepared, const v1::PointBatch* batch,
                                  std::optional<int64_t> at, v1::Response* response,
                                  uint64_t* token) {
  v1::JournalRecord& record = prepared.record;
  const std::string& name = record.series();
  Status status;
  const Status found = producers_.WithProducer(
      record.producer_id(),
      [&](ProducerTable::Producer& producer, int64_t now, bool created) REQUIRES(producer.mu) {
        record.set_time_unix_nanos(now);
        // A producer not seen for producer_expiry is forgotten: its batches
        // count again (Expired is false for one just created).
        const bool forgotten = producers_.Expired(producer, now);
        const SequenceWindow::Seen seen =
            forgotten ? SequenceWindow::Seen::kNew : producer.sequences.Check(record.sequence());
        v1::IngestAck* ack = response->mutable_ack();
        ack->set_series(name);
        if (seen != SequenceWindow::Seen::kNew) {
          // Not stamped again: nothing is applied, and the ack's event time
          // stays 0.
          ack->set_duplicate(true);
          ack->set_below_window(seen == SequenceWindow::Seen::kBelowWindow);
          store_.WithSeries(name,
                            [&](core::Series& series) { ack->set_total(series.stats().count()); });
          // Acknowledge only once the original is durable.
          *token = producer.last_token;
          return;
        }
        status = ApplyBatch(prepared, batch, ack, token);
        if (!status.ok()) {
          // A refused batch changes nothing: not even the producer table.
          if (created) producers_.Drop(record.producer_id(), producer);
          return;
        }
        if (forgotten) producer.sequences.Clear();
        producer.sequences.Mark(record.sequence());
        producer.last_token = *token;
        producer.last_seen = std::max(producer.last_seen.load(), now);
      },
      at);
  if (found.code() == StatusCode::kResourceExhausted) CountRefusal(Limit::kProducerTable);
  return found.ok() ? status : found;
}

Status Service::ApplyBatch(PreparedBatch& prepared, const v1::PointBatch* batch, v1::IngestAck* ack,
                           uint64_t* token) {
  v1::JournalRecord& record = prepared.record;
  const std::string& name = record.series();
  Status status;
  const bool exists = store_.WithNewOrExistingSeries(
      name,
      [&](core::Series& series) {
        // Stamped under the series' lock, against the state it joins; the
        // journal keeps the stamp, so replay needs neither clock nor libm.
        const core::BatchStamp stamp = series.StampFor(record.event_time_unix_nanos());
        SetStamp(stamp, &record);
        status = Log(record, token);
        if (!status.ok()) return false;
        AbsorbBatch(prepared.partial, stamp, series, ack);
        if (batch_observer_ && batch != nullptr) {
          batch_observer_(name, *batch, stamp.event_time_ns, prepared.received);
        }
        return true;
      },
      limits_.max_series);
  if (!exists) status = TooManySeries(name);
  if (status.ok()) ack->set_accepted(prepared.partial.count());
  return status;
}

void Service::Gradient(const v1::GradientQuery& query, v1::Response* response) {
  const auto name = SeriesName(query.series(), response);
  if (!name) return;
  if ((query.has_m() && !std::isfinite(query.m())) ||
      (query.has_b() && !std::isfinite(query.b()))) {
    return SetError(Status::InvalidArgument("m and b must be finite"), response);
  }
  core::View view{};
  if (Status s = QueryView(query.view(), &view); !s.ok()) return SetError(s, response);
  Status status;
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    core::ViewStats stats;
    status = NonEmptyView(*name, series, view, &stats);
    if (!status.ok()) return;
    const double m = query.has_m() ? query.m() : series.model().m;
    const double b = query.has_b() ? query.b() : series.model().b;
    FillGradient(*name, stats, m, b, response->mutable_gradient());
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
  core::View view{};
  if (Status s = QueryView(query.view(), &view); !s.ok()) return SetError(s, response);
  Status status;
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    if (!series.Has(view)) {
      core::ViewStats unused;
      status = NonEmptyView(*name, series, view, &unused);
      return;
    }
    FillFitReply(*name, series, view, response->mutable_fit());
  });
  if (!found) status = NoSuchSeries(*name);
  if (!status.ok()) SetError(status, response);
}

uint64_t Service::Step(const v1::StepRequest& request, v1::Response* response, bool timed) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return 0;
  core::StepOptions options;
  if (Status s = OptionsOf(request, &options); !s.ok()) {
    SetError(s, response);
    return 0;
  }
  Status status;
  uint64_t token = 0;
  util::ReaderLock change(changes_);
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    core::Series after;
    core::StepResult result;
    core::ViewStats stats;
    status = StepCopy(*name, series, request, options, timed, &after, &result, &stats);
    if (!status.ok()) return;
    v1::JournalRecord record;
    record.set_series(*name);
    *record.mutable_model() = ToState(after);
    status = Log(record, &token);
    if (!status.ok()) return;
    series = after;
    v1::StepReply* reply = response->mutable_step();
    FillStepReply(result, reply);
    FillGradient(*name, stats, series.model().m, series.model().b, reply->mutable_gradient());
  });
  if (!found) status = NoSuchSeries(*name);
  return Finish(status, token, response);
}

Status Service::StepCopy(const std::string& name, const core::Series& series,
                         const v1::StepRequest& request, const core::StepOptions& options,
                         bool timed, core::Series* after, core::StepResult* result,
                         core::ViewStats* stats) const {
  const core::View view = options.view.value_or(series.config().view);
  if (Status s = NonEmptyView(name, series, view, stats); !s.ok()) return s;
  *after = series;
  const auto deadline = std::chrono::steady_clock::now() + limits_.max_step_time;
  std::function<bool()> out_of_time;
  if (timed) out_of_time = [deadline] { return std::chrono::steady_clock::now() >= deadline; };
  return after->Step(request.iterations(), options, result, out_of_time);
}

Status Service::StepIterations(const v1::StepRequest& request, const std::string& name,
                               uint64_t* iterations, bool* time_limited) {
  core::StepOptions options;
  if (Status s = OptionsOf(request, &options); !s.ok()) return s;
  Status status;
  const bool found = store_.WithSeries(name, [&](core::Series& series) {
    core::Series after;
    core::StepResult result;
    core::ViewStats stats;
    status = StepCopy(name, series, request, options, /*timed=*/true, &after, &result, &stats);
    *iterations = result.iterations;
    *time_limited = result.time_limited;
  });
  return found ? status : NoSuchSeries(name);
}

std::size_t WindowHeapBytes(const core::Series& series) {
  return series.window() ? core::BucketWindow::HeapBytes(series.window()->buckets()) : 0;
}

Status Service::TakeWindowBytes(std::size_t before, std::size_t after) {
  if (after <= before) {
    window_bytes_ -= before - after;
    return Status::Ok();
  }
  const std::size_t more = after - before;
  std::size_t held = window_bytes_.load();
  do {
    if (held > limits_.max_window_bytes || more > limits_.max_window_bytes - held) {
      CountRefusal(Limit::kWindowMemory);
      return Status::ResourceExhausted(
          "the server's --max-window-memory of " + std::to_string(limits_.max_window_bytes) +
          " bytes is reached (" + std::to_string(held) + " held by windows; this one needs " +
          std::to_string(more) +
          " more): nothing was changed (fewer buckets, or remove another "
          "series' window)");
    }
  } while (!window_bytes_.compare_exchange_weak(held, held + more));
  return Status::Ok();
}

void Service::ReturnWindowBytes(std::size_t before, std::size_t after) {
  if (after >= before) {
    window_bytes_ -= after - before;
  } else {
    window_bytes_ += before - after;
  }
}

uint64_t Service::Configure(const v1::ConfigureSeries& request, v1::Response* response) {
  const auto name = SeriesName(request.series(), response);
  if (!name) return 0;
  core::SeriesChange change;
  if (Status s = ChangeOf(request, &change); !s.ok()) {
    SetError(s, response);
    return 0;
  }
  Status status;
  uint64_t token = 0;
  util::ReaderLock lock(changes_);
  const bool exists = store_.WithNewOrExistingSeries(
      *name,
      [&](core::Series& series) {
        // Checked against the series' settings before anything changes: a
        // refused change leaves the series as it was, and a new series
        // refused so is never created.
        core::Series after = series;
        status = after.Configure(change);
        if (!status.ok()) return false;
        const std::size_t before_bytes = WindowHeapBytes(series);
        const std::size_t after_bytes = WindowHeapBytes(after);
        status = TakeWindowBytes(before_bytes, after_bytes);
        if (!status.ok()) return false;
        v1::JournalRecord record;
        record.set_series(*name);
        v1::Configured* configured = record.mutable_configured();
        *configured->mutable_settings() = SettingsOf(after);
        *configured->mutable_model() = ToState(after);
        *configured->mutable_change() = request;
        configured->mutable_change()->clear_series();
        status = Log(record, &token);
        if (!status.ok()) {
          ReturnWindowBytes(before_bytes, after_bytes);
          return false;
        }
        series = after;
        FillFitReply(*name, series, core::View::kAll, response->mutable_fit());
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
    if (reset_observer_) reset_observer_(*name);
    FillFitReply(*name, series, core::View::kAll, response->mutable_fit());
  });
  if (!found) status = NoSuchSeries(*name);
  return Finish(status, token, response);
}

void Service::List(const v1::ListSeries& request, v1::Response* response) {
  core::View view{};
  if (Status s = QueryView(request.view(), &view); !s.ok()) return SetError(s, response);
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
                        // A series without the view: listed with VIEW_ALL.
                        FillFitReply(name, series, series.Has(view) ? view : core::View::kAll,
                                     &reply);
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
