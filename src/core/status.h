// Status: the outcome of an operation that can fail in an expected way.
// A value type; errors are values, not exceptions.
#pragma once

#include <string>
#include <utility>

namespace gradientd {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // the request is malformed or out of range
  kNotFound,            // no such series
  kFailedPrecondition,  // the series cannot answer yet (no points)
  kResourceExhausted,   // a limit was reached
  kInternal,
  kUnavailable,       // the server cannot be reached, or the connection broke
  kUnauthenticated,   // no valid token presented (on a server with an auth file)
  kPermissionDenied,  // the token lacks the role the operation needs
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Unauthenticated(std::string m) {
    return {StatusCode::kUnauthenticated, std::move(m)};
  }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace gradientd
