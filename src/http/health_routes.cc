#include "http/health_routes.h"

#include <boost/beast/http/field.hpp>

#include "http/query_string.h"
#include "http/replies.h"

namespace gradientd::http {
namespace beast_http = boost::beast::http;

bool HealthRoutes::IsPublic(std::string_view path) const {
  return path == "/healthz" || path == "/readyz";
}

bool HealthRoutes::Handle(const Request& request, Response* response) {
  const std::string_view path = PathOf(request.target());
  if (path == "/healthz") {
    SetText(beast_http::status::ok, "ok\n", response);
  } else if (path == "/readyz") {
    const Status ready = checks_.ready ? checks_.ready() : Status::Ok();
    if (ready.ok()) {
      SetText(beast_http::status::ok, "ready\n", response);
    } else {
      SetText(beast_http::status::service_unavailable, "not ready: " + ready.message() + "\n",
              response);
    }
  } else if (path == "/metrics" && checks_.metrics) {
    response->result(beast_http::status::ok);
    response->set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response->body() = checks_.metrics();
  } else {
    return false;
  }
  return true;
}

}  // namespace gradientd::http
