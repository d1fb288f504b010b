// The Service's state in and out: recovery (Restore, Apply) and
// checkpoints, in the journal's and snapshot's messages.
#include <string>

#include "service/series_state.h"
#include "service/service.h"
#include "service/views.h"

namespace gradientd::service {
namespace {

// A configure, replayed: the change as the live Configure applied it to this
// same state (so a view it restarted restarts again), then the model it
// logged. Records of older versions carry only settings and model.
void ApplyConfigured(const v1::Configured& configured, core::Series& series) {
  const v1::ModelState& model = configured.model();
  core::SeriesChange change;
  if (configured.has_change() && ChangeOf(configured.change(), &change).ok() &&
      series.Configure(change).ok()) {
    series.RestoreModel({model.m(), model.b()}, model.steps());
    return;
  }
  core::Series::State state = series.state();
  state.model = {model.m(), model.b()};
  state.steps = model.steps();
  state.config = FromState(configured.settings());
  // Restore's precondition: the views the settings ask for, and no others.
  if (state.config.window_ns == 0) state.window.reset();
  if (state.config.half_life_ns == 0) state.decayed.reset();
  if (state.config.window_ns > 0 && !state.window) {
    state.window.emplace(state.config.window_ns, state.config.window_buckets);
  }
  if (state.config.half_life_ns > 0 && !state.decayed) {
    state.decayed.emplace(state.config.half_life_ns);
  }
  series.Restore(state);
}

}  // namespace

void Service::Apply(const v1::JournalRecord& record) {
  const std::string& name = record.series();
  switch (record.change_case()) {
    case v1::JournalRecord::kBatch:
      // An exactly-once batch already applied is skipped: a log that holds
      // it twice counts it once. Records of older versions have no time:
      // the producer counts as seen at recovery.
      if (!record.producer_id().empty() && record.sequence() > 0 &&
          !producers_.ApplyBatch(
              record.producer_id(), record.sequence(),
              record.time_unix_nanos() != 0 ? record.time_unix_nanos() : producers_.Now())) {
        break;
      }
      store_.WithNewOrExistingSeries(name, [&](core::Series& series) {
        // The stamp of the record: no clock, no libm.
        AbsorbBatch(FromState(record.batch()), StampOf(record), series, nullptr);
        return true;
      });
      break;
    case v1::JournalRecord::kModel:
      store_.WithNewOrExistingSeries(name, [&](core::Series& series) {
        series.RestoreModel({record.model().m(), record.model().b()}, record.model().steps());
        return true;
      });
      break;
    case v1::JournalRecord::kConfigured:
      store_.WithNewOrExistingSeries(name, [&](core::Series& series) {
        // Accepted once: counted, never refused, however the budget is set now.
        const std::size_t before = WindowHeapBytes(series);
        ApplyConfigured(record.configured(), series);
        window_bytes_ += WindowHeapBytes(series);
        window_bytes_ -= before;
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
      const std::size_t before = WindowHeapBytes(series);
      series.Restore(FromState(s));
      window_bytes_ += WindowHeapBytes(series);
      window_bytes_ -= before;
      return true;
    });
  }
  producers_.Restore(snapshot);
}

void Service::Checkpoint(const std::function<uint64_t()>& cut, v1::Snapshot* snapshot) {
  util::WriterLock lock(changes_);
  snapshot->set_journal_position(cut());
  store_.ForEach([&](const std::string& name, const core::Series& series) {
    v1::SeriesState* s = snapshot->add_series();
    *s = ToSeriesState(series);
    s->set_name(name);
  });
  producers_.AddTo(snapshot);
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
