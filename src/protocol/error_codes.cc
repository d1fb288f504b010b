#include "protocol/error_codes.h"

namespace gradientd::protocol {

v1::Error::Code ToWireCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return v1::Error::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return v1::Error::NOT_FOUND;
    case StatusCode::kFailedPrecondition:
      return v1::Error::FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted:
      return v1::Error::RESOURCE_EXHAUSTED;
    case StatusCode::kUnauthenticated:
      return v1::Error::UNAUTHENTICATED;
    case StatusCode::kPermissionDenied:
      return v1::Error::PERMISSION_DENIED;
    case StatusCode::kOk:
    case StatusCode::kInternal:
    // Not UNAVAILABLE yet: the service's kUnavailable today is a failed or
    // cancelled change log, which clients have always seen as INTERNAL.
    // Whoever makes a node answer UNAVAILABLE (a cluster without a leader)
    // sends it explicitly; gradctl fails over on it.
    case StatusCode::kUnavailable:
      break;
  }
  return v1::Error::INTERNAL;
}

StatusCode FromWireCode(v1::Error::Code code) {
  switch (code) {
    case v1::Error::INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case v1::Error::NOT_FOUND:
      return StatusCode::kNotFound;
    case v1::Error::FAILED_PRECONDITION:
      return StatusCode::kFailedPrecondition;
    case v1::Error::RESOURCE_EXHAUSTED:
      return StatusCode::kResourceExhausted;
    case v1::Error::UNAUTHENTICATED:
      return StatusCode::kUnauthenticated;
    case v1::Error::PERMISSION_DENIED:
      return StatusCode::kPermissionDenied;
    case v1::Error::UNAVAILABLE:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

void SetError(const Status& status, v1::Response* response) {
  v1::Error* error = response->mutable_error();
  error->set_code(ToWireCode(status.code()));
  error->set_message(status.message());
}

std::string ErrorCodeName(const v1::Error& error) {
  const std::string& name = v1::Error::Code_Name(error.code());
  return name.empty() ? "ERROR " + std::to_string(error.code()) : name;
}

}  // namespace gradientd::protocol
