// Responses the HTTP side builds everywhere: plain text, JSON, and the JSON
// error body {"error":{"code":"NOT_FOUND","message":"..."}} with the HTTP
// status that fits the code. Sans-I/O.
#pragma once

#include <boost/beast/http/status.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "http/routes.h"

namespace gradientd::http {

// The HTTP status for a wire error code: 400 INVALID_ARGUMENT, 404
// NOT_FOUND, 409 FAILED_PRECONDITION, 503 RESOURCE_EXHAUSTED, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 500 otherwise.
boost::beast::http::status HttpStatusOf(v1::Error::Code code);

// Sets status, Content-Type and body (Content-Length is the Router's).
void SetText(boost::beast::http::status status, std::string_view text, Response* response);
void SetJson(boost::beast::http::status status, std::string json, Response* response);
// The error body and HttpStatusOf its code.
void SetJsonError(const v1::Error& error, Response* response);
// REQUIRES: !status.ok().
void SetJsonError(const Status& status, Response* response);

}  // namespace gradientd::http
