// The HTTP side's sans-I/O contract: a request in, a response out. The
// listener (the Asio/Beast shell) parses requests within its limits and
// hands each to the Router, which checks the bearer token and asks each
// Routes in turn. Nothing over HTTP changes state.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string_view>

namespace gradientd::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// A part of the HTTP surface (the JSON API, metrics and health, the
// dashboard). Handle is called from any of the server's threads at once, so
// implementations are thread-safe.
class Routes {
 public:
  virtual ~Routes() = default;

  // Whether `path` (without its query) is served without a token even when
  // the server has an auth file: pages and assets that hold no data, and
  // health checks.
  virtual bool IsPublic(std::string_view path) const = 0;

  // Answers `request` and returns true if the path is one of these routes
  // (any method: a route answers 405 itself); false to let the next Routes
  // try. Called only once the Router has authorized the request.
  virtual bool Handle(const Request& request, Response* response) = 0;
};

}  // namespace gradientd::http
