// The series' state as the protocol and the journal carry it: conversions
// between core::Series (and its parts) and the gradientd.v1 messages, and
// the replies that describe a series. Pure functions.
#pragma once

#include <string>

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

// Fills `reply` with the series' model, least-squares line and settings.
void FillFitReply(const std::string& name, const core::Series& series, v1::FitReply* reply);
// Fills `reply` with the gradient and loss of the series at (m, b).
void FillGradient(const std::string& name, const core::Series& series, double m, double b,
                  v1::GradientReply* reply);
// Absorbs a batch's statistics into a series and fills the acknowledgement
// (if `ack` is not null).
void AbsorbBatch(const core::PointStats& partial, core::Series& series, v1::IngestAck* ack);
// Whether every number of the gradient reply is finite.
bool IsFinite(const v1::GradientReply& gradient);

}  // namespace gradientd::service
