#include "service/service_metrics.h"

#include <string>
#include <vector>

namespace gradientd::service {
namespace {

// The result codes counted: "OK", then the wire's Error.Code names in
// their numeric order (index = the code's number + 1; unknown codes count
// as INTERNAL).
constexpr int kCodes = v1::Error::Code_MAX + 2;

std::vector<std::string> CodeNames() {
  std::vector<std::string> names = {"OK"};
  for (int code = 0; code <= v1::Error::Code_MAX; ++code) {
    names.push_back(v1::Error::Code_Name(static_cast<v1::Error::Code>(code)));
  }
  return names;
}

std::vector<std::string> OperationNames() {
  return {"ingest", "gradient", "fit", "step", "configure", "reset", "list", "hello", "empty"};
}

std::vector<metrics::Labels> OneLabel(const std::string& name,
                                      const std::vector<std::string>& values) {
  return metrics::LabelProduct({{name, values}});
}

std::size_t CodeIndex(const v1::Response& response) {
  if (!response.has_error()) return 0;
  const int code = response.error().code();
  return code >= 0 && code <= v1::Error::Code_MAX
             ? static_cast<std::size_t>(code) + 1
             : static_cast<std::size_t>(v1::Error::INTERNAL) + 1;
}

}  // namespace

Operation OperationOf(const v1::Request& request) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
      return Operation::kIngest;
    case v1::Request::kGradient:
      return Operation::kGradient;
    case v1::Request::kFit:
      return Operation::kFit;
    case v1::Request::kStep:
      return Operation::kStep;
    case v1::Request::kConfigure:
      return Operation::kConfigure;
    case v1::Request::kReset:
      return Operation::kReset;
    case v1::Request::kList:
      return Operation::kList;
    case v1::Request::kHello:
      return Operation::kHello;
    case v1::Request::BODY_NOT_SET:
      break;
  }
  return Operation::kEmpty;
}

std::vector<double> RequestSecondsBounds() {
  return {1e-6, 2.5e-6, 5e-6,  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
          5e-3, 0.01,   0.025, 0.05, 0.1,    0.25, 0.5,  1,      2.5,  5,    10};
}

ServiceMetrics::ServiceMetrics(metrics::Registry& registry)
    : requests(registry.AddCounterFamily(
          "gradientd_requests_total",
          "Requests the service answered, by operation and result code (OK or the error's code).",
          metrics::LabelProduct({{"operation", OperationNames()}, {"code", CodeNames()}}))),
      request_seconds(registry.AddHistogramFamily(
          "gradientd_request_duration_seconds",
          "Time the service took to answer a request, by operation (not the wait for the "
          "journal's fsync).",
          OneLabel("operation", OperationNames()), RequestSecondsBounds())),
      batches(registry.AddCounterFamily(
          "gradientd_ingested_batches_total",
          "Ingested batches by outcome: applied, duplicate (an exactly-once retry) or refused.",
          OneLabel("outcome", {"applied", "duplicate", "refused"}))),
      points(
          registry.AddCounter("gradientd_ingested_points_total", "Points of the applied batches.")),
      refusals(registry.AddCounterFamily(
          "gradientd_refusals_total", "Requests and connections refused by a limit of the server.",
          OneLabel("limit", {"max_series", "window_memory", "producer_table", "batch_points",
                             "future_skew", "max_connections"}))) {}

void ServiceMetrics::CountRequest(Operation operation, const v1::Response& response,
                                  double seconds) {
  const auto op = static_cast<std::size_t>(operation);
  requests.at(op * kCodes + CodeIndex(response)).Add();
  request_seconds.at(op).Observe(seconds);
  if (operation != Operation::kIngest) return;
  if (response.has_error()) {
    batches.at(static_cast<std::size_t>(BatchOutcome::kRefused)).Add();
  } else if (response.ack().duplicate()) {
    batches.at(static_cast<std::size_t>(BatchOutcome::kDuplicate)).Add();
  } else {
    batches.at(static_cast<std::size_t>(BatchOutcome::kApplied)).Add();
    points.Add(response.ack().accepted());
  }
}

}  // namespace gradientd::service
