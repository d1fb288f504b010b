// ApiRoutes: the read-only JSON API, each endpoint a v1::Request through the
// RequestHandler (the Service), so validation is the protocol's:
//   GET /api/v1/series?page_size=&page_token=&prefix=&view=   SeriesList
//   GET /api/v1/series/NAME?view=                             FitReply
//   GET /api/v1/series/NAME/gradient?m=&b=&view=              GradientReply
// NAME is percent-encoded (a '/' in it as %2F). Replies are protobuf's JSON
// mapping of the reply message with the .proto's field names and every
// field printed (zeros and empty lists too; 64-bit integers as strings);
// errors are {"error":{"code":"NOT_FOUND","message":"..."}} with
// HttpStatusOf the code. Query parameters are strict: an unknown one, a bad
// number or view (all|window|decayed) is a 400 naming it.
// Thread-safe if the handler is.
#pragma once

#include <string_view>

#include "http/routes.h"
#include "protocol/connection.h"

namespace gradientd::http {

class ApiRoutes : public Routes {
 public:
  // `handler` must outlive this.
  explicit ApiRoutes(protocol::RequestHandler& handler) : handler_(handler) {}

  static constexpr std::string_view kPrefix = "/api/";

  bool IsPublic(std::string_view) const override { return false; }
  bool Handle(const Request& request, Response* response) override;

 private:
  // The v1::Request the target asks for; an error (400, 404) for a bad one.
  Status BuildRequest(std::string_view target, v1::Request* request) const;
  void Answer(const v1::Request& request, Response* response);

  protocol::RequestHandler& handler_;
};

}  // namespace gradientd::http
