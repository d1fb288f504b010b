// HealthRoutes: /healthz (the process answers: 200 "ok"), /readyz (200
// "ready", or 503 "not ready: REASON" once `ready` reports an error, such as
// a failed journal) and /metrics (the Prometheus text exposition `metrics`
// renders; 404 without one). /healthz and /readyz are public: a probe
// carries no token and they reveal only a status word. Thread-safe if the
// functions are.
#pragma once

#include <functional>
#include <string>

#include "core/status.h"
#include "http/routes.h"

namespace gradientd::http {

struct HealthChecks {
  std::function<Status()> ready;         // empty: always ready
  std::function<std::string()> metrics;  // empty: no /metrics
};

class HealthRoutes : public Routes {
 public:
  explicit HealthRoutes(HealthChecks checks) : checks_(std::move(checks)) {}

  bool IsPublic(std::string_view path) const override;
  bool Handle(const Request& request, Response* response) override;

 private:
  const HealthChecks checks_;
};

}  // namespace gradientd::http
