// The series' state as the journal and snapshots carry it: conversions
// between core::Series (and its parts) and the gradientd.v1 messages. Pure
// functions.
#pragma once

#include "core/point_stats.h"
#include "core/series.h"
#include "gradientd/v1/gradientd.pb.h"
#include "gradientd/v1/journal.pb.h"

namespace gradientd::service {

v1::PointStatsState ToState(const core::PointStats& stats);
core::PointStats FromState(const v1::PointStatsState& state);
// The series' model (m, b and steps).
v1::ModelState ToState(const core::Series& series);
v1::DescentSettings SettingsOf(const core::Series& series);
core::DescentConfig FromState(const v1::DescentSettings& settings);

// The series' complete state (everything but the name): every view, the
// model, the settings. FromState(ToState(s)) restores s bit for bit.
v1::SeriesState ToSeriesState(const core::Series& series);
core::Series::State FromState(const v1::SeriesState& state);

// A batch's stamp as its journal record carries it, and back.
void SetStamp(const core::BatchStamp& stamp, v1::JournalRecord* record);
core::BatchStamp StampOf(const v1::JournalRecord& record);

}  // namespace gradientd::service
