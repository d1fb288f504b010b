#include "http/startup_gate.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <boost/beast/http/field.hpp>

#include "http/replies.h"

namespace gradientd::http {

bool StartupGate::Handle(const Request&, Response* response) {
  const Status starting = starting_();
  if (starting.ok()) return false;
  // The message as a JSON string, escaped by protobuf's JSON printer.
  google::protobuf::Value message;
  message.set_string_value(starting.message());
  std::string quoted;
  (void)google::protobuf::util::MessageToJsonString(message, &quoted);
  SetJson(boost::beast::http::status::service_unavailable,
          R"({"error":{"code":"UNAVAILABLE","message":)" + quoted + "}}", response);
  response->set(boost::beast::http::field::retry_after, "1");
  return true;
}

}  // namespace gradientd::http
