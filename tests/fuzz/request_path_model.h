// For the fuzz checker (request_path_checks.h): its own model of a series'
// settings, an independent transcription of the protocol's documented rules
// for ConfigureSeries, the views and the descent modes, so the checker can
// say which requests must be refused, and with which code, without asking
// the code under test; and what every FitReply and GradientReply promises.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/point_stats.h"
#include "core/series.h"
#include "core/window.h"
#include "fuzz/frame_decoder_checks.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::fuzz {

struct SeriesModel {
  uint64_t n = 0;  // the sum of accepted points since creation or reset
  uint32_t steps_per_batch = 1;
  double learning_rate = 0;  // 0 = auto
  v1::DescentMode mode = v1::DESCENT_MODE_UNSPECIFIED;
  v1::View descent_view = v1::VIEW_ALL;
  int64_t window_ns = 0;  // 0: no window
  uint32_t window_buckets = 0;
  int64_t half_life_ns = 0;  // 0: no decay

  bool Has(v1::View view) const {
    return view == v1::VIEW_ALL || (view == v1::VIEW_WINDOW && window_ns != 0) ||
           (view == v1::VIEW_DECAYED && half_life_ns != 0);
  }
};

inline bool KnownView(int view) { return view >= v1::VIEW_UNSPECIFIED && view <= v1::VIEW_DECAYED; }
inline bool KnownMode(int mode) {
  return mode >= v1::DESCENT_MODE_UNSPECIFIED && mode <= v1::DESCENT_MODE_STANDARDIZED;
}
// A query's view: unspecified is VIEW_ALL.
inline v1::View QueryView(v1::View view) {
  return view == v1::VIEW_UNSPECIFIED ? v1::VIEW_ALL : view;
}

// The mode a step runs in: the request's, else the series'; automatic is
// plain with a fixed rate and standardized with the auto rate.
inline v1::DescentMode EffectiveMode(const SeriesModel& s, std::optional<v1::DescentMode> mode,
                                     std::optional<double> rate) {
  const v1::DescentMode chosen = mode.value_or(s.mode);
  if (chosen != v1::DESCENT_MODE_UNSPECIFIED) return chosen;
  return rate.value_or(s.learning_rate) > 0 ? v1::DESCENT_MODE_PLAIN
                                            : v1::DESCENT_MODE_STANDARDIZED;
}

// The series after `c`, or nullopt when the change must be refused
// (INVALID_ARGUMENT, nothing changed).
inline std::optional<SeriesModel> Configured(const SeriesModel& s, const v1::ConfigureSeries& c) {
  SeriesModel next = s;
  if (c.has_learning_rate()) {
    if (!std::isfinite(c.learning_rate()) || c.learning_rate() < 0) return std::nullopt;
    next.learning_rate = c.learning_rate();
  }
  if (c.has_steps_per_batch()) {
    if (c.steps_per_batch() > core::kMaxStepsPerBatch) return std::nullopt;
    next.steps_per_batch = c.steps_per_batch();
  }
  if ((c.has_m() && !std::isfinite(c.m())) || (c.has_b() && !std::isfinite(c.b()))) {
    return std::nullopt;
  }
  if (c.has_descent_mode()) {
    if (!KnownMode(c.descent_mode())) return std::nullopt;
    next.mode = c.descent_mode();
  }
  if (!KnownView(c.descent_view())) return std::nullopt;
  if (c.descent_view() != v1::VIEW_UNSPECIFIED) next.descent_view = c.descent_view();

  const bool sets_window = c.has_window_nanos() || c.has_window_buckets();
  if (c.remove_window() && sets_window) return std::nullopt;
  if (c.remove_decay() && c.has_half_life_nanos()) return std::nullopt;
  if (c.remove_window()) next.window_ns = 0, next.window_buckets = 0;
  if (sets_window) {
    // Buckets alone change an existing window; a new one needs its length.
    if (!c.has_window_nanos() && s.window_ns == 0) return std::nullopt;
    const int64_t length = c.has_window_nanos() ? c.window_nanos() : s.window_ns;
    const uint32_t buckets = c.has_window_buckets() ? c.window_buckets()
                             : s.window_buckets != 0 ? s.window_buckets
                                                     : core::kDefaultWindowBuckets;
    const bool valid = length > 0 && buckets >= 1 && buckets <= core::BucketWindow::kMaxBuckets &&
                       length >= static_cast<int64_t>(buckets);
    if (!valid) return std::nullopt;
    next.window_ns = length;
    next.window_buckets = buckets;
  }
  if (c.remove_decay()) next.half_life_ns = 0;
  if (c.has_half_life_nanos()) {
    if (c.half_life_nanos() <= 0) return std::nullopt;
    next.half_life_ns = c.half_life_nanos();
  }
  // The descent cannot follow a view the series lacks.
  if (!next.Has(next.descent_view)) return std::nullopt;
  // A standardized step diverges at a rate of 1 or more.
  if (next.mode == v1::DESCENT_MODE_STANDARDIZED && next.learning_rate >= 1) return std::nullopt;
  return next;
}

// The entry of `view` in a FitReply's views, if the series has that view.
inline const v1::ViewFit* ViewIn(const v1::FitReply& f, v1::View view) {
  for (const v1::ViewFit& v : f.views()) {
    if (v.coverage().view() == view) return &v;
  }
  return nullptr;
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
    GRADIENTD_FUZZ_CHECK(ViewIn(f, f.descent_view()) != nullptr,
                         ctx() + ": the descent's view is not listed");
    return;
  }
  // A loss is finite, or absent with the reason.
  GRADIENTD_FUZZ_CHECK(f.descent().has_loss() != !f.descent().loss_error().empty(),
                       ctx() + ": no descent loss, or a loss and an error");
  GRADIENTD_FUZZ_CHECK(
      !f.descent().has_loss() || (std::isfinite(f.descent().loss()) && f.descent().loss() >= 0),
      ctx() + ": descent loss");
  GRADIENTD_FUZZ_CHECK(IsValidValue(f.mean_x()) && IsValidValue(f.mean_y()), ctx() + ": means");
  // The auto rate is derived from the points the descent follows.
  const v1::ViewFit* descent_view = ViewIn(f, f.descent_view());
  GRADIENTD_FUZZ_CHECK(descent_view != nullptr, ctx() + ": the descent's view is not listed");
  if (f.learning_rate_auto() && descent_view->coverage().n() > 0) {
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

}  // namespace gradientd::fuzz
