// Cluster mode: changes proposed to the shared log (Propose) and applied as
// the log delivers them (ApplyChange), the same way on every node.

#include "protocol/error_codes.h"
#include "service/series_state.h"
#include "service/service.h"
#include "service/views.h"

namespace gradientd::service {

using protocol::SetError;

bool Service::Propose(const v1::Request& request, v1::ClusterChange* change,
                      v1::Response* response) {
  change->Clear();
  change->set_time_unix_nanos(producers_.Now());
  switch (request.body_case()) {
    case v1::Request::kIngest: {
      PreparedBatch prepared;
      if (!PrepareBatch(request.ingest(), &prepared, response)) return false;
      change->set_time_unix_nanos(prepared.received);
      change->mutable_batch()->Swap(&prepared.record);
      return true;
    }
    case v1::Request::kStep: {
      const auto name = SeriesName(request.step().series(), response);
      if (!name) return false;
      uint64_t iterations = 0;
      bool time_limited = false;
      if (Status s = StepIterations(request.step(), *name, &iterations, &time_limited); !s.ok()) {
        SetError(s, response);
        return false;
      }
      v1::StepRequest* step = change->mutable_step();
      *step = request.step();
      step->set_series(*name);
      step->set_iterations(iterations);
      change->set_step_time_limited(time_limited);
      return true;
    }
    case v1::Request::kConfigure: {
      const auto name = SeriesName(request.configure().series(), response);
      if (!name) return false;
      core::SeriesChange parsed;
      if (Status s = ChangeOf(request.configure(), &parsed); !s.ok()) {
        SetError(s, response);
        return false;
      }
      *change->mutable_configure() = request.configure();
      change->mutable_configure()->set_series(*name);
      return true;
    }
    case v1::Request::kReset: {
      const auto name = SeriesName(request.reset().series(), response);
      if (!name) return false;
      change->mutable_reset()->set_series(*name);
      return true;
    }
    default:
      SetError(Status::Internal("not a change: nothing to propose"), response);
      return false;
  }
}

void Service::ApplyChange(const v1::ClusterChange& change, v1::Response* response) {
  switch (change.change_case()) {
    case v1::ClusterChange::kBatch: {
      const v1::JournalRecord& record = change.batch();
      if (Status s = ValidateSeriesName(record.series(), limits_.max_series_name_bytes); !s.ok()) {
        return SetError(s, response);
      }
      PreparedBatch prepared;
      prepared.record = record;
      prepared.partial = FromState(record.batch());
      prepared.received = change.time_unix_nanos();
      util::ReaderLock lock(changes_);
      uint64_t token = 0;
      const Status s =
          ApplyPrepared(&prepared, nullptr, change.time_unix_nanos(), response, &token);
      if (!s.ok()) {
        response->Clear();
        SetError(s, response);
      }
      return;
    }
    case v1::ClusterChange::kStep:
      Step(change.step(), response, /*timed=*/false);
      if (change.step_time_limited() && response->has_step()) {
        response->mutable_step()->set_time_limited(true);
      }
      return;
    case v1::ClusterChange::kConfigure:
      Configure(change.configure(), response);
      return;
    case v1::ClusterChange::kReset:
      Reset(change.reset(), response);
      return;
    case v1::ClusterChange::CHANGE_NOT_SET:
      break;
  }
  // A change of a newer version, or none: refused alike on every node.
  SetError(Status::InvalidArgument("the cluster log holds a change this node does not know"),
           response);
}

}  // namespace gradientd::service
