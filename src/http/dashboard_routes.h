// DashboardRoutes: the live dashboard. Public (they hold no data): the
// pages / (every series) and /series/NAME (one series, live), and
// /assets/* (the script, the style, Chart.js and its license), all
// compiled into the binary. Behind the token like the rest of the API:
//   GET /api/v1/series/NAME/sample?view=all|window|decayed
//     the series' fit in that view and a bounded sample of its points
//   GET /api/v1/series/NAME/history?view=...
//     (time, loss, gradient norm) at the descent line, at most one a second
// Both mark the series watched (LivePoints::Watch); history entries are
// taken when a page polls, so they follow descent steps as well as batches.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "http/live_points.h"
#include "http/routes.h"
#include "protocol/connection.h"

namespace gradientd::http {

class DashboardRoutes : public Routes {
 public:
  // `service` (a Service, or a cluster node) and `points` must outlive
  // this. `now_unix_nanos` is the clock for watching and history (the
  // system clock by default).
  DashboardRoutes(protocol::RequestHandler& service, LivePoints& points,
                  std::function<int64_t()> now_unix_nanos = {});

  bool IsPublic(std::string_view path) const override;
  bool Handle(const Request& request, Response* response) override;

 private:
  void ServeSample(const std::string& series, const Request& request, Response* response);
  void ServeHistory(const std::string& series, const Request& request, Response* response);

  protocol::RequestHandler& service_;
  LivePoints& points_;
  std::function<int64_t()> now_;
};

// The path's series name and what is asked of it ("sample", "history"),
// for /api/v1/series/NAME/WHAT with NAME percent-encoded; false for other
// paths or a name that does not decode.
bool ParseSeriesApiPath(std::string_view path, std::string* series, std::string* what);

}  // namespace gradientd::http
