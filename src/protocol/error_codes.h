// The mapping between Status codes and the wire's Error.Code.
#pragma once

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::protocol {

v1::Error::Code ToWireCode(StatusCode code);
StatusCode FromWireCode(v1::Error::Code code);

// Sets response to an Error carrying `status` (REQUIRES: !status.ok()).
void SetError(const Status& status, v1::Response* response);

}  // namespace gradientd::protocol
