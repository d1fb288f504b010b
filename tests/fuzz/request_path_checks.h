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
#include <span>
#include <string>
#include <vector>

#include "core/point_stats.h"
#include "core/series.h"
#include "fuzz/frame_decoder_checks.h"
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

// Describes what is being checked; called only when a check fails.
using What = std::function<std::string()>;

inline bool IsValidValue(double v) {
  return std::isfinite(v) && std::fabs(v) <= core::kMaxAbsValue;
}

// What every FitReply promises, in a fit, configure or reset reply or a list.
inline void CheckFitReply(const v1::FitReply& f, const What& what) {
  // Built only when a check fails.
  const auto ctx = [&] { return what() + ": FitReply " + f.ShortDebugString().substr(0, 400); };
  GRADIENTD_FUZZ_CHECK(std::isfinite(f.descent().m()) && std::isfinite(f.descent().b()),
                       ctx() + ": the descent model is not finite");
  GRADIENTD_FUZZ_CHECK(f.steps_per_batch() <= core::kMaxStepsPerBatch, ctx());
  GRADIENTD_FUZZ_CHECK(std::isfinite(f.learning_rate()) && f.learning_rate() >= 0,
                       ctx() + ": learning_rate");
  if (f.n() == 0) {
    GRADIENTD_FUZZ_CHECK(!f.descent().has_loss(), ctx() + ": a loss without points");
    GRADIENTD_FUZZ_CHECK(!f.has_least_squares() && !f.has_r_squared(),
                         ctx() + ": a line without points");
    GRADIENTD_FUZZ_CHECK(f.mean_x() == 0 && f.mean_y() == 0, ctx() + ": means without points");
    return;
  }
  // A loss is finite, or absent with the reason.
  GRADIENTD_FUZZ_CHECK(f.descent().has_loss() != !f.descent().loss_error().empty(),
                       ctx() + ": no descent loss, or a loss and an error");
  GRADIENTD_FUZZ_CHECK(
      !f.descent().has_loss() || (std::isfinite(f.descent().loss()) && f.descent().loss() >= 0),
      ctx() + ": descent loss");
  GRADIENTD_FUZZ_CHECK(IsValidValue(f.mean_x()) && IsValidValue(f.mean_y()), ctx() + ": means");
  if (f.learning_rate_auto()) {
    GRADIENTD_FUZZ_CHECK(f.learning_rate() > 0, ctx() + ": auto learning rate");
  }
  // "Unset rather than reporting a huge slope": a line that is reported is
  // a real line.
  if (f.has_least_squares()) {
    const v1::Line& ls = f.least_squares();
    GRADIENTD_FUZZ_CHECK(std::isfinite(ls.m()) && std::isfinite(ls.b()),
                         ctx() + ": least-squares line not finite");
    GRADIENTD_FUZZ_CHECK(ls.has_loss() != !ls.loss_error().empty(),
                         ctx() + ": no least-squares loss, or a loss and an error");
    GRADIENTD_FUZZ_CHECK(!ls.has_loss() || (std::isfinite(ls.loss()) && ls.loss() >= 0),
                         ctx() + ": least-squares loss");
  }
  if (f.has_r_squared()) {
    GRADIENTD_FUZZ_CHECK(f.has_least_squares(), ctx() + ": R^2 without a line");
    GRADIENTD_FUZZ_CHECK(f.r_squared() >= 0 && f.r_squared() <= 1, ctx() + ": R^2 out of [0, 1]");
  }
}

inline void CheckGradientReply(const v1::GradientReply& g, const std::string& name, uint64_t n,
                               const What& what) {
  const auto ctx = [&] { return what() + ": GradientReply " + g.ShortDebugString(); };
  GRADIENTD_FUZZ_CHECK(g.series() == name, ctx());
  GRADIENTD_FUZZ_CHECK(g.n() == n && n > 0, ctx() + ": n");
  GRADIENTD_FUZZ_CHECK(std::isfinite(g.m()) && std::isfinite(g.b()), ctx() + ": m, b");
  GRADIENTD_FUZZ_CHECK(std::isfinite(g.intercept_gradient()) && std::isfinite(g.slope_gradient()),
                       ctx() + ": gradient not finite");
  GRADIENTD_FUZZ_CHECK(std::isfinite(g.loss()) && g.loss() >= 0, ctx() + ": loss");
}

// Wraps the service: checks each request's response and its effect on the
// observable state against a model of the series (names, point counts,
// steps_per_batch).
class CheckingHandler : public protocol::RequestHandler {
 public:
  explicit CheckingHandler(service::Service& service) : service_(service) {}

  uint64_t Handle(const v1::Request& original, v1::Response* response) override {
    GRADIENTD_FUZZ_CHECK(
        response->ByteSizeLong() == 0 && response->body_case() == v1::Response::BODY_NOT_SET,
        "the handler was given a non-empty response");
    v1::Request request = original;
    BoundWork(&request);
    ids_.push_back(request.id());
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
      GRADIENTD_FUZZ_CHECK(f.steps_per_batch() == it->second.steps_per_batch,
                           what() + ": steps_per_batch");
      CheckFitReply(f, what);
    }
  }

  // Every series, following the pages (small ones, to exercise them).
  v1::SeriesList List() {
    v1::SeriesList all;
    v1::Request request;
    request.mutable_list()->set_page_size(3);
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
  struct SeriesModel {
    uint64_t n = 0;  // the sum of accepted points since creation or reset
    uint32_t steps_per_batch = 1;
  };

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

  // A page is the slice of the state after its token, within its prefix.
  void ListPage(const v1::ListSeries& l) {
    const bool bad =
        l.page_size() > service::kMaxListPageSize ||
        l.prefix().size() > service::kMaxSeriesNameBytes ||
        (!l.page_token().empty() &&
         (BadName(l.page_token()) || l.page_token().compare(0, l.prefix().size(), l.prefix())));
    if (bad) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kSeriesList);
    std::vector<const v1::FitReply*> expected;
    for (const v1::FitReply& f : after_.series()) {
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
  void ExpectFitIsState(const std::string& name) const {
    const v1::FitReply* now = Find(after_, name);
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
    ExpectBody(v1::Response::kAck);
    const v1::IngestAck& ack = response_->ack();
    GRADIENTD_FUZZ_CHECK(ack.series() == name, Describe());
    // Exactly-once producers: a sequence at or below the producer's last
    // applied one is acknowledged as a duplicate and changes nothing.
    const bool exactly_once = !batch.producer_id().empty() && batch.sequence() > 0;
    if (exactly_once) {
      auto last = producers_.find(batch.producer_id());
      if (last != producers_.end() && batch.sequence() <= last->second) {
        GRADIENTD_FUZZ_CHECK(ack.duplicate() && ack.accepted() == 0 && ack.steps() == 0,
                             Describe() + ": not acknowledged as a duplicate");
        const SeriesModel* s = Model(name);
        GRADIENTD_FUZZ_CHECK(ack.total() == (s != nullptr ? s->n : 0), Describe() + ": total");
        GRADIENTD_FUZZ_CHECK(after_.SerializeAsString() == before_.SerializeAsString(),
                             Describe() + ": a duplicate changed the state");
        return;
      }
      producers_[batch.producer_id()] = batch.sequence();
    }
    GRADIENTD_FUZZ_CHECK(!ack.duplicate(), Describe() + ": a first delivery taken as a duplicate");
    const v1::FitReply* was = Find(before_, name);
    SeriesModel& s = model_[name];
    const auto accepted = static_cast<uint64_t>(batch.x_size());
    GRADIENTD_FUZZ_CHECK(ack.accepted() == accepted, Describe() + ": accepted");
    GRADIENTD_FUZZ_CHECK(ack.total() == s.n + accepted, Describe() + ": total");
    if (ack.total() == 0 || s.steps_per_batch == 0) {
      GRADIENTD_FUZZ_CHECK(ack.steps() == 0 && ack.descent_error().empty(), Describe() + ": steps");
    } else if (ack.descent_error().empty()) {
      GRADIENTD_FUZZ_CHECK(ack.steps() == s.steps_per_batch, Describe() + ": steps");
    } else {
      GRADIENTD_FUZZ_CHECK(ack.steps() == 0, Describe() + ": steps despite a descent error");
    }
    s.n = ack.total();
    const v1::FitReply* now = Find(after_, name);
    GRADIENTD_FUZZ_CHECK(now != nullptr, Describe() + ": the series is not listed");
    GRADIENTD_FUZZ_CHECK(now->steps() == (was ? was->steps() : 0) + ack.steps(),
                         Describe() + ": steps count");
  }

  void Gradient(const v1::GradientQuery& q) {
    const std::string name = NameOf(q.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    if ((q.has_m() && !std::isfinite(q.m())) || (q.has_b() && !std::isfinite(q.b()))) {
      return ExpectError(v1::Error::INVALID_ARGUMENT);
    }
    const SeriesModel* s = Model(name);
    if (s == nullptr) return ExpectError(v1::Error::NOT_FOUND);
    if (s->n == 0) return ExpectError(v1::Error::FAILED_PRECONDITION);
    // A gradient that overflows at this (m, b) is refused.
    if (response_->has_error()) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kGradient);
    const v1::GradientReply& g = response_->gradient();
    CheckGradientReply(g, name, s->n, [this] { return Describe(); });
    const v1::FitReply* was = Find(before_, name);
    GRADIENTD_FUZZ_CHECK(was != nullptr, Describe());
    GRADIENTD_FUZZ_CHECK(g.m() == (q.has_m() ? q.m() : was->descent().m()), Describe() + ": m");
    GRADIENTD_FUZZ_CHECK(g.b() == (q.has_b() ? q.b() : was->descent().b()), Describe() + ": b");
  }

  void Fit(const v1::FitQuery& q) {
    const std::string name = NameOf(q.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    if (Model(name) == nullptr) return ExpectError(v1::Error::NOT_FOUND);
    ExpectBody(v1::Response::kFit);
    ExpectFitIsState(name);
  }

  void Step(const v1::StepRequest& r) {
    const std::string name = NameOf(r.series());
    if (BadName(name)) return ExpectError(v1::Error::INVALID_ARGUMENT);
    const SeriesModel* s = Model(name);
    if (s == nullptr) return ExpectError(v1::Error::NOT_FOUND);
    if (s->n == 0) return ExpectError(v1::Error::FAILED_PRECONDITION);
    const bool invalid =
        (r.has_learning_rate() && !(std::isfinite(r.learning_rate()) && r.learning_rate() >= 0)) ||
        (r.has_tolerance() && !(std::isfinite(r.tolerance()) && r.tolerance() >= 0)) ||
        r.iterations() > core::kMaxStepIterations;
    if (invalid || response_->has_error()) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kStep);
    const v1::StepReply& reply = response_->step();
    GRADIENTD_FUZZ_CHECK(reply.iterations() <= r.iterations(), Describe() + ": iterations");
    GRADIENTD_FUZZ_CHECK(
        reply.converged() || reply.time_limited() || reply.iterations() == r.iterations(),
        Describe() + ": stopped early without converging or running out of time");
    GRADIENTD_FUZZ_CHECK(!reply.converged() || r.has_tolerance(),
                         Describe() + ": converged without a tolerance");
    GRADIENTD_FUZZ_CHECK(std::isfinite(reply.learning_rate()) && reply.learning_rate() > 0,
                         Describe() + ": learning rate");
    if (r.has_learning_rate() && r.learning_rate() > 0) {
      GRADIENTD_FUZZ_CHECK(reply.learning_rate() == r.learning_rate(), Describe() + ": rate");
    }
    CheckGradientReply(reply.gradient(), name, s->n, [this] { return Describe(); });
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
    const bool invalid =
        (c.has_learning_rate() && !(std::isfinite(c.learning_rate()) && c.learning_rate() >= 0)) ||
        (c.has_steps_per_batch() && c.steps_per_batch() > core::kMaxStepsPerBatch) ||
        (c.has_m() && !std::isfinite(c.m())) || (c.has_b() && !std::isfinite(c.b()));
    if (invalid) return ExpectError(v1::Error::INVALID_ARGUMENT);
    ExpectBody(v1::Response::kFit);
    SeriesModel& s = model_[name];
    if (c.has_steps_per_batch()) s.steps_per_batch = c.steps_per_batch();
    const v1::FitReply& f = response_->fit();
    GRADIENTD_FUZZ_CHECK(f.series() == name && f.n() == s.n, Describe());
    if (c.has_m()) GRADIENTD_FUZZ_CHECK(f.descent().m() == c.m(), Describe() + ": m");
    if (c.has_b()) GRADIENTD_FUZZ_CHECK(f.descent().b() == c.b(), Describe() + ": b");
    if (c.has_learning_rate()) {
      GRADIENTD_FUZZ_CHECK(f.learning_rate_auto() == (c.learning_rate() == 0), Describe());
      if (c.learning_rate() > 0) {
        GRADIENTD_FUZZ_CHECK(f.learning_rate() == c.learning_rate(), Describe() + ": rate");
      }
    }
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
    GRADIENTD_FUZZ_CHECK(f.steps_per_batch() == it->second.steps_per_batch,
                         Describe() + ": configuration not kept");
    ExpectFitIsState(name);
  }

  service::Service& service_;
  std::map<std::string, SeriesModel> model_;   // sorted like the list
  std::map<std::string, uint64_t> producers_;  // the last sequence applied per producer
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
