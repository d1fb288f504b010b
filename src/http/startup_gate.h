// StartupGate: while gradientd is starting (recovering its data directory),
// answers every request it is asked 503 with a JSON error
// {"error":{"code":"UNAVAILABLE","message":REASON}} and `Retry-After: 1`;
// once started it answers none, so the Routes after it do. Added after the
// HealthRoutes, so /healthz, /readyz and /metrics answer during recovery
// while the API and the dashboard, whose state is not whole yet, wait.
// Thread-safe if `starting` is.
#pragma once

#include <functional>
#include <string>

#include "core/status.h"
#include "http/routes.h"

namespace gradientd::http {

class StartupGate : public Routes {
 public:
  // `starting` returns why requests must wait, or Ok once they need not.
  explicit StartupGate(std::function<Status()> starting) : starting_(std::move(starting)) {}

  bool IsPublic(std::string_view) const override { return false; }
  bool Handle(const Request& request, Response* response) override;

 private:
  const std::function<Status()> starting_;
};

}  // namespace gradientd::http
