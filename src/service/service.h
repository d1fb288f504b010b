// Service: answers gradientd.v1 requests against a SeriesStore. The
// protocol's semantics live here; no I/O. Thread-safe.
//
// Every request either succeeds or changes nothing a client can observe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/connection.h"
#include "service/series_store.h"

namespace gradientd::service {

inline constexpr std::string_view kDefaultSeries = "default";
inline constexpr std::size_t kMaxSeriesNameBytes = 256;

class Service : public protocol::RequestHandler {
 public:
  explicit Service(SeriesStore& store) : store_(store) {}

  void Handle(const v1::Request& request, v1::Response* response) override;

 private:
  void Ingest(const v1::PointBatch& batch, v1::Response* response);
  void Gradient(const v1::GradientQuery& query, v1::Response* response);
  void Fit(const v1::FitQuery& query, v1::Response* response);
  void Step(const v1::StepRequest& request, v1::Response* response);
  void Configure(const v1::ConfigureSeries& request, v1::Response* response);
  void Reset(const v1::ResetSeries& request, v1::Response* response);
  void List(v1::Response* response);

  SeriesStore& store_;
};

// Fills `reply` with the series' model, least-squares line and settings.
void FillFitReply(const std::string& name, const core::Series& series, v1::FitReply* reply);

}  // namespace gradientd::service
