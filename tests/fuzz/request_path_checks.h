// The checks behind request_path_fuzz, shared with
// tests/fuzz_regression_test.cc: the input's stream (see
// frame_decoder_checks.h for the format) goes through protocol::Connection
// into a service::Service over an in-memory service::SeriesStore, and every
// request is checked against the protocol's promises and a model of what a
// client can observe (the ListSeries reply).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/point_stats.h"
#include "core/series.h"
#include "fuzz/frame_decoder_checks.h"
#include "fuzz/request_path_model.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/connection.h"
#include "protocol/series_name.h"
#include "service/series_store.h"
#include "service/service.h"

namespace gradientd::fuzz {

// Step requests and steps_per_batch are clamped to these (when within the
// protocol's limits, so the limit checks are still exercised): descent is
// O(1) per iteration, but 10^8 iterations per input would make the fuzzer
// crawl without reaching new code.
inline constexpr uint64_t kFuzzMaxIterations = 4096;
inline constexpr uint32_t kFuzzMaxStepsPerBatch = 64;

inline void BoundWork(v1::Request* request) {
  if (request->has_step() && request->step().iterations() <= core::kMaxStepIterations) {
    request->mutable_step()->set_iterations(
        std::min(request->step().iterations(), kFuzzMaxIterations));
  }
  const bool valid_steps_per_batch =
      request->has_configure() && request->configure().has_steps_per_batch() &&
      request->configure().steps_per_batch() <= core::kMaxStepsPerBatch;
  if (valid_steps_per_batch) {
    request->mutable_configure()->set_steps_per_batch(
        std::min(request->configure().steps_per_batch(), kFuzzMaxStepsPerBatch));
  }
}

// Wraps the service: checks each request's response and its effect on the
// observable state against a model of the series (names, point counts,
// settings and views). The service's clock is the checker's: it moves a
// millisecond a request, so event times are reproducible (and no producer
// expires: that takes an hour).
class CheckingHandler : public protocol::RequestHandler {
 public:
  static constexpr int64_t kStartUnixNanos = 1'700'000'000'000'000'000;
  static constexpr int64_t kMaxFutureSkewNanos = 300'000'000'000;  // the default 5 min

  explicit CheckingHandler(service::Service& service) : service_(service) {
    service_.SetClock([this] { return now_ns_; });
  }

  uint64_t Handle(const v1::Request& original, v1::Response* response) override {
    GRADIENTD_FUZZ_CHECK(
        response->ByteSizeLong() == 0 && response->body_case() == v1::Response::BODY_NOT_SET,
        "the handler was given a non-empty response");
    v1::Request request = original;
    BoundWork(&request);
    ids_.push_back(request.id());
    now_ns_ += 1'000'000;
    before_ = List();
    const std::string before_bytes = before_.SerializeAsString();
    const uint64_t token = service_.Handle(request, response);
    after_ = List();
    const std::string after_bytes = after_.SerializeAsString();
    request_ = &request;
    response_ = response;

    GRADIENTD_FUZZ_CHECK(response->body_case() != v1::Response::BODY_NOT_SET,
                         Describe() + ": empty response");
    if (response->has_error()) {
      const v1::Error& e = response->error();
      GRADIENTD_FUZZ_CHECK(e.code() != v1::Error::CODE_UNSPECIFIED &&
                               e.code() != v1::Error::INTERNAL && !e.message().empty(),
                           Describe() + ": bad error");
      // Every request either succeeds or changes nothing a client can see.
      GRADIENTD_FUZZ_CHECK(after_bytes == before_bytes,
                           Describe() + ": an Error changed the observable state");
    }
    switch (request.body_case()) {
      case v1::Request::kIngest:
        Ingest(request.ingest());
        break;
      case v1::Request::kGradient:
        Gradient(request.gradient());
        GRADIENTD_FUZZ_CHECK(after_bytes == before_bytes, Describe() + ": a query changed state");
        break;
      case v1::Request::kFit:
        Fit(request.fit());
        GRADIENTD_FUZZ_CHECK(after_bytes == before_bytes, Describe() + ": a query changed state");
        break;
      case v1::Request::kStep:
        Step(request.step());
        break;
      case v1::Request::kConfigure:
        Configure(request.configure());
        break;
      case v1::Request::kReset:
        Reset(request.reset());
        break;
      case v1::Request::kList:
        ListPage(request.list());
        GRADIENTD_FUZZ_CHECK(after_bytes == before_bytes, Describe() + ": a query changed state");
        break;
      case v1::Request::kHello:
        // No auth file: any token is welcome and changes nothing.
        ExpectBody(v1::Response::kHello);
        GRADIENTD_FUZZ_CHECK(response->hello().open() && response->hello().roles_size() == 3,
                             Describe() + ": an open Hello grants every role");
        GRADIENTD_FUZZ_CHECK(after_bytes == before_bytes, Describe() + ": a Hello changed state");
        break;
      case v1::Request::BODY_NOT_SET:
        ExpectError(v1::Error::INVALID_ARGUMENT);
        break;
    }
    CheckState(after_, [this] { return Describe(); });
    // Without a change log there is nothing to wait for.
    GRADIENTD_FUZZ_CHECK(token == 0, Describe() + ": a durability token without a log");
    request_ = nullptr;
    response_ = nullptr;
    return token;
  }

  // The observable state against the model.
  void CheckState(const v1::SeriesList& list, const What& what) const {
    GRADIENTD_FUZZ_CHECK(static_cast<std::size_t>(list.series_size()) == model_.size(),
                         what() + ": " + std::to_string(list.series_size()) + " series listed, " +
                             std::to_string(model_.size()) + " expected");
    auto it = model_.begin();
    for (int i = 0; i < list.series_size(); ++i, ++it) {
      const v1::FitReply& f = list.series(i);
      // The model is a sorted map: the same order as the list promises.
      GRADIENTD_FUZZ_CHECK(f.series() == it->first,
                           what() + ": listed '" + f.series() + "', expected '" + it->first + "'");
      GRADIENTD_FUZZ_CHECK(f.n() == it->second.n, what() + ": series '" + f.series() +
                                                      "' has n = " + std::to_string(f.n()) +
                                                      ", accepted " + std::to_string(it->second.n));
      CheckSettings(f, it->second, what);
      CheckFitReply(f, what);
    }
  }

  // Every series in `view`, following the pages (small ones, to exercise
  // them).
  v1::SeriesList List(v1::View view = v1::VIEW_UNSPECIFIED) {
    v1::SeriesList all;
    v1::Request request;
    request.mutable_list()->set_page_size(3);
    request.mutable_list()->set_view(view);
    for (std::size_t page = 0; page <= model_.size() + 1; ++page) {
      v1::Response response;
      service_.Handle(request, &response);
      GRADIENTD_FUZZ_CHECK(response.has_series_list(), "ListSeries failed");
      for (v1::FitReply& f : *response.mutable_series_list()->mutable_series()) {
        all.add_series()->Swap(&f);
      }
      if (response.series_list().next_page_token().empty()) return all;
      request.mutable_list()->set_page_token(response.series_list().next_page_token());
    }
    GRADIENTD_FUZZ_CHECK(false, "the pages of ListSeries do not end");
    return all;
  }

  const std::vector<uint64_t>& ids() const { return ids_; }

 private:
  std::string Describe() const {
    std::string d = "request " + std::to_string(ids_.size() - 1);
    if (request_ != nullptr) d += " {" + request_->ShortDebugString().substr(0, 600) + "}";
    if (response_ != nullptr) d += " -> {" + response_->ShortDebugString().substr(0, 600) + "}";
    return d;
  }

  void ExpectError(v1::Error::Code code) const {
    GRADIENTD_FUZZ_CHECK(response_->has_error() && response_->error().code() == code,
                         Describe() + ": expected error code " + std::to_string(code));
  }
  void ExpectBody(v1::Response::BodyCase body) const {
    GRADIENTD_FUZZ_CHECK(response_->body_case() == body,
                         Describe() + ": expected response body " + std::to_string(body));
  }

  static std::string NameOf(const std::string& series) { return protocol::SeriesOrDefault(series); }
  // Over the length limit, not UTF-8, or holding a control character (the
  // service's default limits; the fuzzers never reach its series or
  // batch-size limits).
  static bool BadName(const std::string& name) {
    return !service::ValidateSeriesName(name, service::kMaxSeriesNameBytes).ok();
  }

  // A listed series' settings and views against the model.
  static void CheckSettings(const v1::FitReply& f, const SeriesModel& s, const What& what) {
    const auto ctx = [&] { return what() + ": series '" + f.series() + "' "; };
    GRADIENTD_FUZZ_CHECK(f.steps_per_batch() == s.steps_per_batch, ctx() + "steps_per_batch");
    GRADIENTD_FUZZ_CHECK(f.learning_rate_auto() == (s.learning_rate == 0),
                         ctx() + "learning_rate_auto");
    if (s.learning_rate > 0) {
      GRADIENTD_FUZZ_CHECK(f.learning_rate() == s.learning_rate, ctx() + "learning_rate");
    }
    GRADIENTD_FUZZ_CHECK(f.descent_mode() == s.mode, ctx() + "descent_mode");
    GRADIENTD_FUZZ_CHECK(f.effective_descent_mode() == EffectiveMode(s, std::nullopt, std::nullopt),
                         ctx() + "effective_descent_mode");
    GRADIENTD_FUZZ_CHECK(f.descent_view() == s.descent_view, ctx() + "descent_view");
    GRADIENTD_FUZZ_CHECK(f.window_nanos() == s.window_ns && f.window_buckets() == s.window_buckets,
                         ctx() + "window");
    GRADIENTD_FUZZ_CHECK(f.half_life_nanos() == s.half_life_ns, ctx() + "half-life");
    // Exactly the views the series has, in the order all, window, decayed;
    // each counts at most the points of all history.
    int at = 0;
    for (const v1::View view : {v1::VIEW_ALL, v1::VIEW_WINDOW, v1::VIEW_DECAYED}) {
      if (!s.Has(view)) continue;
      GRADIENTD_FUZZ_CHECK(at < f.views_size() && f.views(at).coverage().view() == view,
                           ctx() + "lacks view " + std::to_string(view));
      const v1::Coverage& c = f.views(at++).coverage();
      GRADIENTD_FUZZ_CHECK(view == v1::VIEW_ALL ? c.n() == s.n : c.n() <= s.n,
                           ctx() + "view " + std::to_string(view) + " counts " +
                               std::to_string(c.n()) + " of " + std::to_string(s.n) + " points");
      GRADIENTD_FUZZ_CHECK(std::isfinite(c.weight()) && c.weight() >= 0 &&
                               (c.n() > 0) == (c.weight() > 0) && c.effective_n() <= static_cast<double>(c.n()) * (1 + 1e-9),
                           ctx() + "coverage weights");
    }
    GRADIENTD_FUZZ_CHECK(at == f.views_size(), ctx() + "lists a view it does not have");
  }

  // The points of `view` in `state`'s entry of `name` (listed in VIEW_ALL).
  static uint64_t ViewCount(const v1::SeriesList& state, const std::string& name, v1::View view) {
    const v1::FitReply* f = Find(state, name);
    const v1::ViewFit* v = f != nullptr ? ViewIn(*f, view) : nullptr;
    return v != nullptr ? v->coverage().n() : 0;
  }

  // A page is the slice of the state in its view after its token, within
  // its prefix.
  void ListPage(const v1::ListSeries& l) {
    const bool bad =
        !KnownView(l.view()) || l.page_size() > service::kMaxListPageSize ||
        l.prefix().size() > service::kMaxSeriesNameBytes ||
        (!l.page_token().empty() &&
         (BadName(l.page_token()) || l.page_token().compare(0, l.prefix().size(), l.prefix())));
    if (bad) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kSeriesList);
    const v1::SeriesList in_view = l.view() == v1::VIEW_UNSPECIFIED ? after_ : List(l.view());
    std::vector<const v1::FitReply*> expected;
    for (const v1::FitReply& f : in_view.series()) {
      if (f.series() > l.page_token() &&
          f.series().compare(0, l.prefix().size(), l.prefix()) == 0) {
        expected.push_back(&f);
      }
    }
    const v1::SeriesList& page = response_->series_list();
    const std::size_t size = static_cast<std::size_t>(page.series_size());
    const std::size_t most = l.page_size() == 0 ? service::kDefaultListPageSize : l.page_size();
    GRADIENTD_FUZZ_CHECK(size <= most && size <= expected.size() && (size > 0 || expected.empty()),
                         Describe() + ": page size");
    for (std::size_t i = 0; i < size; ++i) {
      GRADIENTD_FUZZ_CHECK(
          page.series(static_cast<int>(i)).SerializeAsString() == expected[i]->SerializeAsString(),
          Describe() + ": the page differs from the state");
    }
    const std::string next = size < expected.size() ? page.series().rbegin()->series() : "";
    GRADIENTD_FUZZ_CHECK(page.next_page_token() == next, Describe() + ": next_page_token");
  }

  static const v1::FitReply* Find(const v1::SeriesList& list, const std::string& name) {
    for (const v1::FitReply& f : list.series()) {
      if (f.series() == name) return &f;
    }
    return nullptr;
  }
  const SeriesModel* Model(const std::string& name) const {
    auto it = model_.find(name);
    return it == model_.end() ? nullptr : &it->second;
  }

  // The entry of `name` in the state after the request, which must exist,
  // and must be what the reply says.
  void ExpectFitIsState(const std::string& name) const { ExpectFitIsIn(after_, name); }
  void ExpectFitIsIn(const v1::SeriesList& state, const std::string& name) const {
    const v1::FitReply* now = Find(state, name);
    GRADIENTD_FUZZ_CHECK(now != nullptr, Describe() + ": the series is not listed");
    GRADIENTD_FUZZ_CHECK(response_->fit().SerializeAsString() == now->SerializeAsString(),
                         Describe() + ": reply differs from the listed state");
  }


  void Ingest(const v1::PointBatch& batch) {
    const std::string name = NameOf(batch.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    bool valid = batch.x_size() == batch.y_size();
    for (double v : batch.x()) valid = valid && IsValidValue(v);
    for (double v : batch.y()) valid = valid && IsValidValue(v);
    if (!valid ||
        (!batch.producer_id().empty() && !service::ValidateProducerId(batch.producer_id()).ok())) {
      return ExpectError(v1::Error::INVALID_ARGUMENT);
    }
    // A batch is at its event time, or at its receipt; at most the skew
    // ahead of the clock.
    const int64_t event_time =
        batch.has_event_time_unix_nanos() ? batch.event_time_unix_nanos() : now_ns_;
    if (event_time > now_ns_ && event_time - now_ns_ > kMaxFutureSkewNanos) {
      return ExpectError(v1::Error::INVALID_ARGUMENT);
    }
    ExpectBody(v1::Response::kAck);
    const v1::IngestAck& ack = response_->ack();
    GRADIENTD_FUZZ_CHECK(ack.series() == name, Describe());
    // Exactly-once producers: a sequence applied before, or more than the
    // producer window below the highest applied, is acknowledged as a
    // duplicate and changes nothing; any other is applied.
    const bool exactly_once = !batch.producer_id().empty() && batch.sequence() > 0;
    if (exactly_once) {
      std::set<uint64_t>& applied = producers_[batch.producer_id()];
      const uint64_t highest = applied.empty() ? 0 : *applied.rbegin();
      const bool below = batch.sequence() < highest &&
                         highest - batch.sequence() > service::ServiceLimits{}.producer_window;
      if (applied.count(batch.sequence()) || below) {
        GRADIENTD_FUZZ_CHECK(ack.duplicate() && ack.accepted() == 0 && ack.steps() == 0 &&
                                 ack.event_time_unix_nanos() == 0 && ack.below_window() == below,
                             Describe() + ": not acknowledged as a duplicate");
        const SeriesModel* s = Model(name);
        GRADIENTD_FUZZ_CHECK(ack.total() == (s != nullptr ? s->n : 0), Describe() + ": total");
        GRADIENTD_FUZZ_CHECK(after_.SerializeAsString() == before_.SerializeAsString(),
                             Describe() + ": a duplicate changed the state");
        return;
      }
      applied.insert(batch.sequence());
    }
    GRADIENTD_FUZZ_CHECK(!ack.duplicate(), Describe() + ": a first delivery taken as a duplicate");
    GRADIENTD_FUZZ_CHECK(ack.event_time_unix_nanos() == event_time, Describe() + ": event time");
    const v1::FitReply* was = Find(before_, name);
    SeriesModel& s = model_[name];
    const auto accepted = static_cast<uint64_t>(batch.x_size());
    GRADIENTD_FUZZ_CHECK(ack.accepted() == accepted, Describe() + ": accepted");
    GRADIENTD_FUZZ_CHECK(ack.total() == s.n + accepted, Describe() + ": total");
    s.n = ack.total();
    // Steps run on the descent's view, when it has points after the batch.
    if (s.steps_per_batch == 0 || ViewCount(after_, name, s.descent_view) == 0) {
      GRADIENTD_FUZZ_CHECK(ack.steps() == 0 && ack.descent_error().empty(), Describe() + ": steps");
    } else if (ack.descent_error().empty()) {
      GRADIENTD_FUZZ_CHECK(ack.steps() == s.steps_per_batch, Describe() + ": steps");
    } else {
      GRADIENTD_FUZZ_CHECK(ack.steps() == 0, Describe() + ": steps despite a descent error");
    }
    const v1::FitReply* now = Find(after_, name);
    GRADIENTD_FUZZ_CHECK(now != nullptr, Describe() + ": the series is not listed");
    GRADIENTD_FUZZ_CHECK(now->steps() == (was ? was->steps() : 0) + ack.steps(),
                         Describe() + ": steps count");
  }

  // Whether a view the series has lacks points: FAILED_PRECONDITION, as a
  // view it lacks.
  bool Unqueryable(const std::string& name, const SeriesModel& s, v1::View view) const {
    return !s.Has(view) || ViewCount(before_, name, view) == 0;
  }

  void Gradient(const v1::GradientQuery& q) {
    const std::string name = NameOf(q.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    if ((q.has_m() && !std::isfinite(q.m())) || (q.has_b() && !std::isfinite(q.b())) ||
        !KnownView(q.view())) {
      return ExpectError(v1::Error::INVALID_ARGUMENT);
    }
    const SeriesModel* s = Model(name);
    if (s == nullptr) return ExpectError(v1::Error::NOT_FOUND);
    const v1::View view = QueryView(q.view());
    if (Unqueryable(name, *s, view)) return ExpectError(v1::Error::FAILED_PRECONDITION);
    // A gradient that overflows at this (m, b) is refused.
    if (response_->has_error()) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kGradient);
    const v1::GradientReply& g = response_->gradient();
    CheckGradientReply(g, name, ViewCount(before_, name, view), [this] { return Describe(); });
    GRADIENTD_FUZZ_CHECK(g.coverage().view() == view, Describe() + ": coverage view");
    const v1::FitReply* was = Find(before_, name);
    GRADIENTD_FUZZ_CHECK(was != nullptr, Describe());
    GRADIENTD_FUZZ_CHECK(g.m() == (q.has_m() ? q.m() : was->descent().m()), Describe() + ": m");
    GRADIENTD_FUZZ_CHECK(g.b() == (q.has_b() ? q.b() : was->descent().b()), Describe() + ": b");
  }

  void Fit(const v1::FitQuery& q) {
    const std::string name = NameOf(q.series());
    if (BadName(name) || !KnownView(q.view())) return ExpectError(v1::Error::INVALID_ARGUMENT);
    const SeriesModel* s = Model(name);
    if (s == nullptr) return ExpectError(v1::Error::NOT_FOUND);
    const v1::View view = QueryView(q.view());
    if (!s->Has(view)) return ExpectError(v1::Error::FAILED_PRECONDITION);
    ExpectBody(v1::Response::kFit);
    if (view == v1::VIEW_ALL) return ExpectFitIsState(name);
    ExpectFitIsIn(List(view), name);
    GRADIENTD_FUZZ_CHECK(response_->fit().n() == ViewCount(after_, name, view) &&
                             response_->fit().coverage().view() == view,
                         Describe() + ": the fit is not of the view asked for");
  }

  void Step(const v1::StepRequest& r) {
    const std::string name = NameOf(r.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    if ((r.has_mode() && !KnownMode(r.mode())) || !KnownView(r.view())) {
      return ExpectError(v1::Error::INVALID_ARGUMENT);
    }
    const SeriesModel* s = Model(name);
    if (s == nullptr) return ExpectError(v1::Error::NOT_FOUND);
    const v1::View view = r.view() != v1::VIEW_UNSPECIFIED ? r.view() : s->descent_view;
    if (Unqueryable(name, *s, view)) return ExpectError(v1::Error::FAILED_PRECONDITION);
    const auto rate_option = r.has_learning_rate() ? std::optional(r.learning_rate()) : std::nullopt;
    const v1::DescentMode mode =
        EffectiveMode(*s, r.has_mode() ? std::optional(r.mode()) : std::nullopt, rate_option);
    const double fixed_rate = rate_option.value_or(s->learning_rate);
    const auto bad_tolerance = [](bool has, double t) { return has && !(std::isfinite(t) && t >= 0); };
    const bool invalid =
        (r.has_learning_rate() && !(std::isfinite(r.learning_rate()) && r.learning_rate() >= 0)) ||
        bad_tolerance(r.has_tolerance(), r.tolerance()) ||
        bad_tolerance(r.has_relative_tolerance(), r.relative_tolerance()) ||
        r.iterations() > core::kMaxStepIterations ||
        (mode == v1::DESCENT_MODE_STANDARDIZED && fixed_rate >= 1);
    // Otherwise refused only for a step that would overflow.
    if (invalid || response_->has_error()) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kStep);
    CheckStepReply(r, name, view, mode, fixed_rate);
  }

  void CheckStepReply(const v1::StepRequest& r, const std::string& name, v1::View view,
                      v1::DescentMode mode, double fixed_rate) const {
    const v1::StepReply& reply = response_->step();
    GRADIENTD_FUZZ_CHECK(reply.iterations() <= r.iterations(), Describe() + ": iterations");
    GRADIENTD_FUZZ_CHECK(
        reply.converged() || reply.time_limited() || reply.iterations() == r.iterations(),
        Describe() + ": stopped early without converging or running out of time");
    GRADIENTD_FUZZ_CHECK(!reply.converged() || r.has_tolerance() || r.has_relative_tolerance(),
                         Describe() + ": converged without a tolerance");
    GRADIENTD_FUZZ_CHECK(reply.mode() == mode, Describe() + ": mode");
    GRADIENTD_FUZZ_CHECK(std::isfinite(reply.learning_rate()) && reply.learning_rate() > 0,
                         Describe() + ": learning rate");
    if (fixed_rate > 0) {
      GRADIENTD_FUZZ_CHECK(reply.learning_rate() == fixed_rate, Describe() + ": rate");
    } else if (mode == v1::DESCENT_MODE_STANDARDIZED) {
      GRADIENTD_FUZZ_CHECK(reply.learning_rate() == 0.5, Describe() + ": standardized auto rate");
    }
    CheckGradientReply(reply.gradient(), name, ViewCount(before_, name, view),
                       [this] { return Describe(); });
    const v1::FitReply* was = Find(before_, name);
    const v1::FitReply* now = Find(after_, name);
    GRADIENTD_FUZZ_CHECK(was != nullptr && now != nullptr, Describe());
    GRADIENTD_FUZZ_CHECK(
        now->descent().m() == reply.gradient().m() && now->descent().b() == reply.gradient().b(),
        Describe() + ": the model is not where the reply says");
    GRADIENTD_FUZZ_CHECK(now->steps() == was->steps() + reply.iterations(),
                         Describe() + ": steps count");
  }

  void Configure(const v1::ConfigureSeries& c) {
    const std::string name = NameOf(c.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    const SeriesModel* was = Model(name);
    const std::optional<SeriesModel> next = Configured(was ? *was : SeriesModel{}, c);
    if (!next) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kFit);
    model_[name] = *next;
    const v1::FitReply& f = response_->fit();
    GRADIENTD_FUZZ_CHECK(f.series() == name && f.n() == next->n, Describe());
    if (c.has_m()) GRADIENTD_FUZZ_CHECK(f.descent().m() == c.m(), Describe() + ": m");
    if (c.has_b()) GRADIENTD_FUZZ_CHECK(f.descent().b() == c.b(), Describe() + ": b");
    ExpectFitIsState(name);
  }

  void Reset(const v1::ResetSeries& r) {
    const std::string name = NameOf(r.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    auto it = model_.find(name);
    if (it == model_.end()) return ExpectError(v1::Error::NOT_FOUND);
    ExpectBody(v1::Response::kFit);
    it->second.n = 0;
    const v1::FitReply& f = response_->fit();
    GRADIENTD_FUZZ_CHECK(f.series() == name && f.n() == 0 && f.steps() == 0 &&
                             f.descent().m() == 0 && f.descent().b() == 0,
                         Describe() + ": not reset");
    // The settings are kept (CheckState), and every view is emptied.
    for (const v1::ViewFit& v : f.views()) {
      GRADIENTD_FUZZ_CHECK(v.coverage().n() == 0, Describe() + ": a view kept its points");
    }
    ExpectFitIsState(name);
  }

  service::Service& service_;
  int64_t now_ns_ = kStartUnixNanos;  // the service's clock
  std::map<std::string, SeriesModel> model_;   // sorted like the list
  std::map<std::string, std::set<uint64_t>> producers_;  // the sequences applied per producer
  std::vector<uint64_t> ids_;
  // The request being checked.
  v1::SeriesList before_;
  v1::SeriesList after_;
  const v1::Request* request_ = nullptr;
  const v1::Response* response_ = nullptr;
};

inline void CheckRequestPath(std::span<const uint8_t> input) {
  const Plan plan = ParsePlan(input);
  service::SeriesStore store;
  service::Service service(store);
  CheckingHandler handler(service);
  protocol::Connection connection(handler, plan.max_frame_bytes);
  const DriveResult drive = Drive(connection, plan);

  // One response per request, in order, with its id; then, if the
  // connection closes, one Error.
  const std::vector<v1::Response> responses = ParseResponses(drive.out);
  const std::vector<uint64_t>& ids = handler.ids();
  GRADIENTD_FUZZ_CHECK(responses.size() == ids.size() + (drive.closed ? 1 : 0),
                       std::to_string(responses.size()) + " responses to " +
                           std::to_string(ids.size()) + " requests");
  for (std::size_t i = 0; i < ids.size(); ++i) {
    GRADIENTD_FUZZ_CHECK(responses[i].id() == ids[i], "response " + std::to_string(i) + " id");
  }
  if (drive.closed) {
    const v1::Response& last = responses.back();
    GRADIENTD_FUZZ_CHECK(last.has_error() && (last.error().code() == v1::Error::INVALID_ARGUMENT ||
                                              last.error().code() == v1::Error::RESOURCE_EXHAUSTED),
                         "the connection closed without a framing error");
  }
  handler.CheckState(handler.List(), [] { return std::string("at the end of the stream"); });
}

}  // namespace gradientd::fuzz
