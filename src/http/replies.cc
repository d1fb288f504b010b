#include "http/replies.h"

#include <google/protobuf/util/json_util.h>

#include <boost/beast/http/field.hpp>

#include "protocol/error_codes.h"

namespace gradientd::http {
namespace beast_http = boost::beast::http;

beast_http::status HttpStatusOf(v1::Error::Code code) {
  switch (code) {
    case v1::Error::INVALID_ARGUMENT:
      return beast_http::status::bad_request;
    case v1::Error::NOT_FOUND:
      return beast_http::status::not_found;
    case v1::Error::FAILED_PRECONDITION:
      return beast_http::status::conflict;
    case v1::Error::RESOURCE_EXHAUSTED:
      return beast_http::status::service_unavailable;
    case v1::Error::UNAUTHENTICATED:
      return beast_http::status::unauthorized;
    case v1::Error::PERMISSION_DENIED:
      return beast_http::status::forbidden;
    case v1::Error::UNAVAILABLE:
      return beast_http::status::service_unavailable;
    default:
      return beast_http::status::internal_server_error;
  }
}

void SetText(beast_http::status status, std::string_view text, Response* response) {
  response->result(status);
  response->set(beast_http::field::content_type, "text/plain; charset=utf-8");
  response->body() = std::string(text);
}

void SetJson(beast_http::status status, std::string json, Response* response) {
  response->result(status);
  response->set(beast_http::field::content_type, "application/json");
  response->body() = std::move(json);
}

void SetJsonError(const v1::Error& error, Response* response) {
  v1::Response wrapper;  // {"error": {...}}, the JSON of Response's error field
  *wrapper.mutable_error() = error;
  wrapper.set_id(0);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(wrapper, &json, options).ok()) {
    json = R"({"error":{"code":"INTERNAL","message":"cannot print the error"}})";
  }
  SetJson(HttpStatusOf(error.code()), std::move(json), response);
}

void SetJsonError(const Status& status, Response* response) {
  v1::Response wire;
  protocol::SetError(status, &wire);
  SetJsonError(wire.error(), response);
}

}  // namespace gradientd::http
