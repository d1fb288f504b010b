// The Service's state in and out: recovery (Restore, Apply) and
// checkpoints, in the journal's and snapshot's messages.
#include <string>

#include "service/series_state.h"
#include "service/service.h"

namespace gradientd::service {

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
        producers_.ApplyBatch(
            record.producer_id(), record.sequence(),
            record.time_unix_nanos() != 0 ? record.time_unix_nanos() : producers_.Now());
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
        series.Restore(core::Series::State{.stats = series.stats(),
                                           .model = {model.m(), model.b()},
                                           .config = FromState(record.configured().settings()),
                                           .steps = model.steps(),
                                           .window = std::nullopt,
                                           .decayed = std::nullopt,
                                           .first_event_ns = 0,
                                           .last_event_ns = 0});
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
      series.Restore(core::Series::State{.stats = FromState(s.stats()),
                                         .model = {s.model().m(), s.model().b()},
                                         .config = FromState(s.settings()),
                                         .steps = s.model().steps(),
                                         .window = std::nullopt,
                                         .decayed = std::nullopt,
                                         .first_event_ns = 0,
                                         .last_event_ns = 0});
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
    s->set_name(name);
    *s->mutable_stats() = ToState(series.stats());
    *s->mutable_model() = ToState(series);
    *s->mutable_settings() = SettingsOf(series);
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
