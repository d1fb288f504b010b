// What the view tests share: requests that carry event times and view
// settings, and every view's answers as bytes, to compare states bit for bit
// (across a refused request, a replay, a restart).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "service/service.h"

namespace gradientd::testing {

inline constexpr int64_t kSecond = 1'000'000'000;
inline constexpr int64_t kMinute = 60 * kSecond;
inline constexpr int64_t kHour = 60 * kMinute;
// An event time in 2023, well inside the int64 range.
inline constexpr int64_t kEpoch2023 = 1'700'000'000 * kSecond;

// TimedIngest's event time for a batch sent without one (stamped with its
// receive time).
inline constexpr int64_t kNoEventTime = INT64_MIN;

// A batch of `points` points of series `series` near Unix-second x, with
// event time `event_time` (none for kNoEventTime); `seed` varies the points.
inline v1::Request TimedIngest(const std::string& series, int64_t event_time, int seed,
                               int points = 20, const std::string& producer = "",
                               uint64_t sequence = 0) {
  v1::Request r;
  v1::PointBatch* b = r.mutable_ingest();
  b->set_series(series);
  for (int i = 0; i < points; ++i) {
    const double x = 1.7e9 + seed * 37 + i;
    b->add_x(x);
    b->add_y(0.5 * (x - 1.7e9) + ((seed * 13 + i * 7) % 11) - 5.0);
  }
  if (event_time != kNoEventTime) b->set_event_time_unix_nanos(event_time);
  b->set_producer_id(producer);
  b->set_sequence(sequence);
  return r;
}

// (Each member initialised, so that designated initialisers may omit any.)
struct ViewSettings {
  std::optional<int64_t> window_ns = std::nullopt;
  std::optional<uint32_t> buckets = std::nullopt;
  std::optional<int64_t> half_life_ns = std::nullopt;
  v1::View descent_view = v1::VIEW_UNSPECIFIED;
  std::optional<v1::DescentMode> mode = std::nullopt;
  std::optional<double> learning_rate = std::nullopt;
  std::optional<uint32_t> steps_per_batch = std::nullopt;
};

inline v1::Request ConfigureViews(const std::string& series, const ViewSettings& s) {
  v1::Request r;
  v1::ConfigureSeries* c = r.mutable_configure();
  c->set_series(series);
  if (s.window_ns) c->set_window_nanos(*s.window_ns);
  if (s.buckets) c->set_window_buckets(*s.buckets);
  if (s.half_life_ns) c->set_half_life_nanos(*s.half_life_ns);
  c->set_descent_view(s.descent_view);
  if (s.mode) c->set_descent_mode(*s.mode);
  if (s.learning_rate) c->set_learning_rate(*s.learning_rate);
  if (s.steps_per_batch) c->set_steps_per_batch(*s.steps_per_batch);
  return r;
}

inline v1::Request FitIn(const std::string& series, v1::View view) {
  v1::Request r;
  r.mutable_fit()->set_series(series);
  r.mutable_fit()->set_view(view);
  return r;
}

inline v1::Request GradientIn(const std::string& series, v1::View view) {
  v1::Request r;
  r.mutable_gradient()->set_series(series);
  r.mutable_gradient()->set_view(view);
  return r;
}

inline v1::Request ListIn(v1::View view) {
  v1::Request r;
  r.mutable_list()->set_view(view);
  return r;
}

// Every answer a client can get about `names` in every view (fit and
// gradient, errors included) and every listing, as bytes.
inline std::string EveryViewBytes(service::Service& service,
                                  const std::vector<std::string>& names) {
  std::string bytes;
  const auto call = [&](const v1::Request& request) {
    v1::Response response;
    service.Handle(request, &response);
    bytes += response.SerializeAsString();
    bytes += '\n';
  };
  for (const v1::View view : {v1::VIEW_ALL, v1::VIEW_WINDOW, v1::VIEW_DECAYED}) {
    call(ListIn(view));
    for (const std::string& name : names) {
      call(FitIn(name, view));
      call(GradientIn(name, view));
    }
  }
  return bytes;
}

}  // namespace gradientd::testing
