// The protocol's side of a series: its views and descent modes as the
// gradientd.v1 enums, the settings a request carries as core types, and the
// replies that describe a series in a view. Pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "core/series.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::service {

v1::View ToProto(core::View view);
v1::DescentMode ToProto(core::DescentMode mode);
// A query's view: VIEW_UNSPECIFIED is VIEW_ALL. INVALID_ARGUMENT (and *view
// unchanged) for a value the protocol does not define.
Status QueryView(v1::View view, core::View* out);
// UNSPECIFIED is kAuto. INVALID_ARGUMENT for a value the protocol does not
// define.
Status FromProto(v1::DescentMode mode, core::DescentMode* out);
// "all-history", "window", "decayed".
const char* ViewName(core::View view);

// The view `view` of the series, for a query that needs points:
// FAILED_PRECONDITION naming the view (and how to configure it) when the
// series does not have it or it has no points.
Status NonEmptyView(const std::string& name, const core::Series& series, core::View view,
                    core::ViewStats* stats);

// The change a ConfigureSeries asks for. INVALID_ARGUMENT for enum values
// the protocol does not define; the rest is Series::Configure's to check.
Status ChangeOf(const v1::ConfigureSeries& request, core::SeriesChange* change);
// The options a StepRequest asks for; the same errors.
Status OptionsOf(const v1::StepRequest& request, core::StepOptions* options);

// Fills `reply` with the series' model, settings and every view, the
// fields n..mean_y and coverage over `view`. REQUIRES: series.Has(view).
void FillFitReply(const std::string& name, const core::Series& series, core::View view,
                  v1::FitReply* reply);
// Fills `reply` with the gradient and loss of the view at (m, b).
// REQUIRES: !stats.empty().
void FillGradient(const std::string& name, const core::ViewStats& stats, double m, double b,
                  v1::GradientReply* reply);
// Whether every number of the gradient reply is finite.
bool IsFinite(const v1::GradientReply& gradient);
// Fills the step's own fields of `reply` (not the gradient).
void FillStepReply(const core::StepResult& result, v1::StepReply* reply);

// Absorbs a batch's statistics into a series with its stamp and fills the
// acknowledgement (if `ack` is not null).
void AbsorbBatch(const core::PointStats& partial, const core::BatchStamp& stamp,
                 core::Series& series, v1::IngestAck* ack);

}  // namespace gradientd::service
