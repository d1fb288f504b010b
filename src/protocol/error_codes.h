// The mapping between Status codes and the wire's Error.Code.
#pragma once

#include <string>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::protocol {

v1::Error::Code ToWireCode(StatusCode code);
StatusCode FromWireCode(v1::Error::Code code);

// The code's name in the .proto ("NOT_FOUND"), or "ERROR 42" for a code
// this build does not know.
std::string ErrorCodeName(const v1::Error& error);

// Sets response to an Error carrying `status` (REQUIRES: !status.ok()).
void SetError(const Status& status, v1::Response* response);

}  // namespace gradientd::protocol
