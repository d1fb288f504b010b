#include "service/series_state.h"

#include <vector>

#include "service/views.h"

namespace gradientd::service {
namespace {

// (The public ToState/FromState overloads are declared in the header; the
// helpers here have names of their own, so that none hides them.)

v1::PointStatsState MomentsState(const core::Moments& m) {
  v1::PointStatsState state;
  state.set_pivot_x(m.pivot_x);
  state.set_pivot_y(m.pivot_y);
  state.set_mean_dx(m.mean_dx);
  state.set_mean_dy(m.mean_dy);
  state.set_var_x(m.var_x);
  state.set_var_y(m.var_y);
  state.set_cov_xy(m.cov_xy);
  return state;
}

core::Moments MomentsOf(const v1::PointStatsState& s) {
  return {.pivot_x = s.pivot_x(),
          .pivot_y = s.pivot_y(),
          .mean_dx = s.mean_dx(),
          .mean_dy = s.mean_dy(),
          .var_x = s.var_x(),
          .var_y = s.var_y(),
          .cov_xy = s.cov_xy()};
}

v1::WindowState WindowStateOf(const core::BucketWindow& window) {
  v1::WindowState state;
  if (window.has_latest()) state.set_latest_bucket(window.latest_bucket());
  for (const core::BucketWindow::Bucket& bucket : window.Buckets()) {
    v1::WindowBucket* b = state.add_buckets();
    b->set_index(bucket.index);
    *b->mutable_stats() = ToState(bucket.stats);
  }
  return state;
}

core::BucketWindow WindowOf(const core::DescentConfig& config, const v1::WindowState& state) {
  std::vector<core::BucketWindow::Bucket> buckets;
  buckets.reserve(static_cast<std::size_t>(state.buckets_size()));
  for (const v1::WindowBucket& b : state.buckets()) {
    buckets.push_back({.index = b.index(), .stats = FromState(b.stats())});
  }
  return core::BucketWindow::FromBuckets(config.window_ns, config.window_buckets,
                                         state.has_latest_bucket(), state.latest_bucket(), buckets);
}

v1::DecayedState DecayedStateOf(const core::DecayedStats& decayed) {
  const core::DecayedStats::Raw raw = decayed.raw();
  v1::DecayedState state;
  state.set_n(raw.n);
  state.set_weight(raw.weight);
  state.set_weight_squares(raw.weight_squares);
  state.set_reference_unix_nanos(raw.reference_ns);
  state.set_first_unix_nanos(raw.first_ns);
  *state.mutable_moments() = MomentsState(raw.moments);
  return state;
}

core::DecayedStats DecayedOf(const core::DescentConfig& config, const v1::DecayedState& s) {
  return core::DecayedStats::FromRaw(config.half_life_ns, {.n = s.n(),
                                                           .weight = s.weight(),
                                                           .weight_squares = s.weight_squares(),
                                                           .reference_ns = s.reference_unix_nanos(),
                                                           .first_ns = s.first_unix_nanos(),
                                                           .moments = MomentsOf(s.moments())});
}

}  // namespace

v1::PointStatsState ToState(const core::PointStats& stats) {
  v1::PointStatsState state = MomentsState(stats.moments());
  state.set_n(stats.count());
  return state;
}

core::PointStats FromState(const v1::PointStatsState& s) {
  const core::Moments m = MomentsOf(s);
  return core::PointStats::FromRaw({.n = s.n(),
                                    .pivot_x = m.pivot_x,
                                    .pivot_y = m.pivot_y,
                                    .mean_dx = m.mean_dx,
                                    .mean_dy = m.mean_dy,
                                    .var_x = m.var_x,
                                    .var_y = m.var_y,
                                    .cov_xy = m.cov_xy});
}

v1::ModelState ToState(const core::Series& series) {
  v1::ModelState model;
  model.set_m(series.model().m);
  model.set_b(series.model().b);
  model.set_steps(series.steps());
  return model;
}

v1::DescentSettings SettingsOf(const core::Series& series) {
  const core::DescentConfig& c = series.config();
  v1::DescentSettings settings;
  settings.set_learning_rate(c.learning_rate);
  settings.set_steps_per_batch(c.steps_per_batch);
  settings.set_mode(ToProto(c.mode));
  settings.set_view(ToProto(c.view));
  settings.set_window_nanos(c.window_ns);
  settings.set_window_buckets(c.window_buckets);
  settings.set_half_life_nanos(c.half_life_ns);
  return settings;
}

core::DescentConfig FromState(const v1::DescentSettings& s) {
  // Settings of older versions have neither mode nor view: UNSPECIFIED,
  // which is kAuto and kAll.
  core::DescentMode mode = core::DescentMode::kAuto;
  core::View view = core::View::kAll;
  (void)FromProto(s.mode(), &mode);
  (void)QueryView(s.view(), &view);
  return {.learning_rate = s.learning_rate(),
          .steps_per_batch = s.steps_per_batch(),
          .mode = mode,
          .view = view,
          .window_ns = s.window_nanos(),
          .window_buckets = s.window_buckets(),
          .half_life_ns = s.half_life_nanos()};
}

v1::SeriesState ToSeriesState(const core::Series& series) {
  v1::SeriesState s;
  *s.mutable_stats() = ToState(series.stats());
  *s.mutable_model() = ToState(series);
  *s.mutable_settings() = SettingsOf(series);
  if (series.window()) *s.mutable_window() = WindowStateOf(*series.window());
  if (series.decayed()) *s.mutable_decayed() = DecayedStateOf(*series.decayed());
  s.set_first_event_unix_nanos(series.first_event_ns());
  s.set_last_event_unix_nanos(series.last_event_ns());
  return s;
}

core::Series::State FromState(const v1::SeriesState& s) {
  core::Series::State state;
  state.stats = FromState(s.stats());
  state.model = {s.model().m(), s.model().b()};
  state.config = FromState(s.settings());
  state.steps = s.model().steps();
  state.first_event_ns = s.first_event_unix_nanos();
  state.last_event_ns = s.last_event_unix_nanos();
  // Present exactly when the settings ask for them (Series::Restore).
  if (state.config.window_ns > 0) state.window = WindowOf(state.config, s.window());
  if (state.config.half_life_ns > 0) state.decayed = DecayedOf(state.config, s.decayed());
  return state;
}

void SetStamp(const core::BatchStamp& stamp, v1::JournalRecord* record) {
  record->set_event_time_unix_nanos(stamp.event_time_ns);
  if (stamp.decay_factor) record->set_decay_factor(*stamp.decay_factor);
}

core::BatchStamp StampOf(const v1::JournalRecord& record) {
  // Records of older versions have no event time: 0 (see the README).
  core::BatchStamp stamp;
  stamp.event_time_ns = record.event_time_unix_nanos();
  if (record.has_decay_factor()) stamp.decay_factor = record.decay_factor();
  return stamp;
}

}  // namespace gradientd::service
