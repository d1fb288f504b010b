#include "service/service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <span>

#include "protocol/error_codes.h"

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

// The one rule for losses: a loss that is not finite is never reported; the
// line says why it has none instead.
void SetLoss(double loss, v1::Line* line) {
  if (std::isfinite(loss)) {
    line->set_loss(loss);
  } else {
    line->set_loss_error(std::string(kLossOverflows));
  }
}

// Absorbs a batch's statistics into a series and fills the acknowledgement.
void AbsorbBatch(const core::PointStats& partial, core::Series& series, v1::IngestAck* ack) {
  uint64_t steps = 0;
  const Status descent = series.Absorb(partial, &steps);
  if (ack == nullptr) return;
  ack->set_total(series.stats().count());
  ack->set_steps(steps);
  if (!descent.ok()) ack->set_descent_error(descent.message());
}

// The code point of the UTF-8 sequence at text[i] and its length; 0 bytes
// when it is not a valid, shortest, non-surrogate sequence.
std::pair<uint32_t, std::size_t> DecodeUtf8(std::string_view text, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = at(i);
  if (c < 0x80) return {c, 1};
  std::size_t length = 0;
  uint32_t cp = 0, min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    length = 2, cp = c & 0x1fu, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    length = 3, cp = c & 0x0fu, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4, cp = c & 0x07u, min = 0x10000;
  } else {
    return {0, 0};
  }
  if (i + length > text.size()) return {0, 0};
  for (std::size_t k = 1; k < length; ++k) {
    if ((at(i + k) & 0xc0) != 0x80) return {0, 0};
    cp = (cp << 6) | (at(i + k) & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {0, 0};
  return {cp, length};
}

Status TooLong(const char* what, std::size_t size, std::size_t limit) {
  return Status::InvalidArgument(std::string(what) + " is " + std::to_string(size) +
                                 " bytes; the limit is " + std::to_string(limit));
}

}  // namespace

Status ValidateSeriesName(std::string_view name, std::size_t max_bytes) {
  if (name.empty()) return Status::InvalidArgument("series name is empty");
  if (name.size() > max_bytes) return TooLong("series name", name.size(), max_bytes);
  for (std::size_t i = 0; i < name.size();) {
    const auto [cp, length] = DecodeUtf8(name, i);
    if (length == 0) {
      return Status::InvalidArgument("series name is not valid UTF-8 at offset " +
                                     std::to_string(i));
    }
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      char code[8];
      std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(cp));
      return Status::InvalidArgument("series name has a control character (" + std::string(code) +
                                     ") at offset " + std::to_string(i));
    }
    i += length;
  }
  return Status::Ok();
}

Status ValidateProducerId(std::string_view id) {
  if (id.empty()) return Status::InvalidArgument("producer_id is empty");
  if (id.size() > kMaxProducerIdBytes)
    return TooLong("producer_id", id.size(), kMaxProducerIdBytes);
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c < 0x21 || c > 0x7e) {
      return Status::InvalidArgument(
          "producer_id has byte " + std::to_string(c) + " at offset " + std::to_string(i) +
          "; producer ids are printable ASCII without space (0x21-0x7E)");
    }
  }
  return Status::Ok();
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

bool Service::Expired(const Producer& producer, int64_t now) const {
  const int64_t seen = producer.last_seen.load();
  return seen <= now && now - seen >= limits_.producer_expiry.count();
}

std::size_t Service::producers() {
  std::lock_guard lock(producers_mu_);
  return producers_.size();
}

std::shared_ptr<Service::Producer> Service::FindOrCreateProducerLocked(const std::string& id) {
  auto& slot = producers_[id];
  if (!slot) slot = std::make_shared<Producer>();
  return slot;
}

void Service::EvictExpiredLocked(int64_t now) {
  // Nothing can have expired yet: do not scan.
  if (oldest_seen_bound_ > now - limits_.producer_expiry.count()) return;
  int64_t oldest = INT64_MAX;
  for (auto it = producers_.begin(); it != producers_.end();) {
    // Declared before the lock, so the producer outlives it when erased.
    const std::shared_ptr<Producer> producer = it->second;
    // One in use (locked) is not evicted: its batch may be refreshing it.
    std::unique_lock lock(producer->mu, std::try_to_lock);
    if (lock.owns_lock() && Expired(*producer, now)) {
      producer->removed = true;
      it = producers_.erase(it);
      continue;
    }
    oldest = std::min(oldest, producer->last_seen.load());
    ++it;
  }
  oldest_seen_bound_ = oldest;
}

Status Service::LockProducer(const std::string& id, int64_t* now_out,
                             std::shared_ptr<Producer>* producer,
                             std::unique_lock<std::mutex>* lock, bool* created) {
  // A producer found but removed (evicted, or dropped by a refused batch)
  // before we locked it is looked up again; each retry needs another
  // thread to have removed it meanwhile, so a few suffice.
  for (int attempt = 0; attempt < 64; ++attempt) {
    {
      std::lock_guard table(producers_mu_);
      // Read under the table's lock, so that a batch that finds its
      // producer evicted has a time at which recovery also sees it expired.
      const int64_t now = *now_out = now_();
      auto it = producers_.find(id);
      *created = it == producers_.end();
      if (*created) {
        if (producers_.size() >= limits_.max_producers) EvictExpiredLocked(now);
        if (producers_.size() >= limits_.max_producers) {
          return Status::ResourceExhausted(
              "the server's table of " + std::to_string(limits_.max_producers) +
              " exactly-once producers is full of producers that sent a batch in the last " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(limits_.producer_expiry)
                      .count()) +
              "s: the batch of new producer '" + id +
              "' was not applied (retry later, or send without a producer_id)");
        }
        *producer = FindOrCreateProducerLocked(id);
        (*producer)->last_seen = now;
        oldest_seen_bound_ = std::min(oldest_seen_bound_, now);  // should the clock step back
      } else {
        *producer = it->second;
      }
    }
    *lock = std::unique_lock((*producer)->mu);
    if (!(*producer)->removed) return Status::Ok();
    lock->unlock();
  }
  return Status::Internal("producer '" + id + "' is being evicted and re-created concurrently");
}

void Service::DropProducer(const std::string& id, Producer& producer) {
  std::lock_guard table(producers_mu_);
  auto it = producers_.find(id);
  if (it != producers_.end() && it->second.get() == &producer) {
    producers_.erase(it);
    producer.removed = true;
  }
}

void Service::ApplyProducerBatch(const std::string& id, uint64_t sequence, int64_t time) {
  std::lock_guard table(producers_mu_);
  const std::shared_ptr<Producer> producer = FindOrCreateProducerLocked(id);
  // The same rule as Ingest: a producer expired when its batch came was
  // forgotten, and counts from scratch.
  if (Expired(*producer, time)) producer->last_sequence = 0;
  producer->last_sequence = std::max(producer->last_sequence, sequence);
  producer->last_seen = std::max(producer->last_seen.load(), time);
  oldest_seen_bound_ = INT64_MIN;
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

  std::shared_lock change(changes_);
  const bool exactly_once = !batch.producer_id().empty() && batch.sequence() > 0;
  std::shared_ptr<Producer> producer;
  std::unique_lock<std::mutex> producer_lock;
  bool new_producer = false;
  int64_t now = 0;
  if (exactly_once) {
    if (Status s =
            LockProducer(batch.producer_id(), &now, &producer, &producer_lock, &new_producer);
        !s.ok()) {
      SetError(s, response);
      return 0;
    }
    record.set_time_unix_nanos(now);
  }
  // A producer not seen for producer_expiry is forgotten: its batches
  // count again (Expired is false for one just created).
  const uint64_t last_sequence =
      producer == nullptr || Expired(*producer, now) ? 0 : producer->last_sequence;
  v1::IngestAck* ack = response->mutable_ack();
  ack->set_series(*name);
  if (producer != nullptr && batch.sequence() <= last_sequence) {
    ack->set_duplicate(true);
    store_.WithSeries(*name, [&](core::Series& series) { ack->set_total(series.stats().count()); });
    // Acknowledge only once the original is durable.
    return producer->last_token;
  }
  Status status;
  uint64_t token = 0;
  const bool exists = store_.WithNewOrExistingSeries(
      *name,
      [&](core::Series& series) {
        status = Log(record, &token);
        if (!status.ok()) return false;
        AbsorbBatch(partial, series, ack);
        if (batch_observer_) batch_observer_(*name, batch);
        return true;
      },
      limits_.max_series);
  if (!exists) status = TooManySeries(*name);
  if (!status.ok()) {
    // A refused batch changes nothing: not even the producer table.
    if (new_producer) DropProducer(batch.producer_id(), *producer);
    response->Clear();
    SetError(status, response);
    return 0;
  }
  ack->set_accepted(x.size());
  if (producer != nullptr) {
    producer->last_sequence = batch.sequence();
    producer->last_token = token;
    producer->last_seen = std::max(producer->last_seen.load(), now);
  }
  return token;
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
  std::shared_lock change(changes_);
  const bool found = store_.WithSeries(*name, [&](core::Series& series) {
    if (series.stats().empty()) {
      status = NoPoints(*name);
      return;
    }
    core::Series after = series;
    core::StepResult result;
    const auto deadline = std::chrono::steady_clock::now() + limits_.max_step_time;
    status = after.Step(request.iterations(), learning_rate, tolerance, &result,
                        [&] { return std::chrono::steady_clock::now() >= deadline; });
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
  std::shared_lock lock(changes_);
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
  std::shared_lock lock(changes_);
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
        TooLong("the name prefix", request.prefix().size(), limits_.max_series_name_bytes),
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

void Service::Apply(const v1::JournalRecord& record) {
  const std::string& name = record.series();
  switch (record.change_case()) {
    case v1::JournalRecord::kBatch:
      store_.WithNewOrExistingSeries(name, [&](core::Series& series) {
        AbsorbBatch(FromState(record.batch()), series, nullptr);
        return true;
      });
      if (!record.producer_id().empty() && record.sequence() > 0) {
        // Records of older versions have no time: the producer counts as
        // seen at recovery.
        ApplyProducerBatch(record.producer_id(), record.sequence(),
                           record.time_unix_nanos() != 0 ? record.time_unix_nanos() : now_());
      }
      break;
    case v1::JournalRecord::kModel:
      store_.WithNewOrExistingSeries(name, [&](core::Series& series) {
        series.RestoreModel({record.model().m(), record.model().b()}, record.model().steps());
        return true;
      });
      break;
    case v1::JournalRecord::kConfigured:
      store_.WithNewOrExistingSeries(name, [&](core::Series& series) {
        const v1::ModelState& model = record.configured().model();
        series.Restore(series.stats(), {model.m(), model.b()},
                       FromState(record.configured().settings()), model.steps());
        return true;
      });
      break;
    case v1::JournalRecord::kReset:
      store_.WithSeries(name, [](core::Series& series) { series.Reset(); });
      break;
    case v1::JournalRecord::CHANGE_NOT_SET:
      break;
  }
}

void Service::Restore(const v1::Snapshot& snapshot) {
  for (const v1::SeriesState& s : snapshot.series()) {
    store_.WithNewOrExistingSeries(s.name(), [&](core::Series& series) {
      series.Restore(FromState(s.stats()), {s.model().m(), s.model().b()}, FromState(s.settings()),
                     s.model().steps());
      return true;
    });
  }
  const int64_t now = now_();
  std::lock_guard table(producers_mu_);
  for (const v1::ProducerState& p : snapshot.producers()) {
    const std::shared_ptr<Producer> producer = FindOrCreateProducerLocked(p.producer_id());
    producer->last_sequence = p.last_sequence();
    // Snapshots of older versions have no time: seen at recovery.
    producer->last_seen = p.last_seen_unix_nanos() != 0 ? p.last_seen_unix_nanos() : now;
  }
  oldest_seen_bound_ = INT64_MIN;
}

void Service::Checkpoint(const std::function<uint64_t()>& cut, v1::Snapshot* snapshot) {
  std::unique_lock lock(changes_);
  snapshot->set_journal_position(cut());
  store_.ForEach([&](const std::string& name, const core::Series& series) {
    v1::SeriesState* s = snapshot->add_series();
    s->set_name(name);
    *s->mutable_stats() = ToState(series.stats());
    *s->mutable_model() = ToState(series);
    *s->mutable_settings() = SettingsOf(series);
  });
  const int64_t now = now_();
  std::lock_guard producers(producers_mu_);
  for (const auto& [id, producer] : producers_) {
    // An expired producer is forgotten: recovery need not know it.
    if (Expired(*producer, now)) continue;
    v1::ProducerState* p = snapshot->add_producers();
    p->set_producer_id(id);
    p->set_last_sequence(producer->last_sequence);
    p->set_last_seen_unix_nanos(producer->last_seen.load());
  }
}

void Service::Totals(uint64_t* series, uint64_t* points) {
  *series = 0;
  *points = 0;
  store_.ForEach([&](const std::string&, const core::Series& s) {
    ++*series;
    *points += s.stats().count();
  });
}

}  // namespace gradientd::service
