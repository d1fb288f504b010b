// libFuzzer target: the whole request path. The input's frames go through
// protocol::Connection into service::Service over an in-memory
// service::SeriesStore; every response and its effect on the observable state
// are checked. See request_path_checks.h; tools/fuzz.sh runs it.
#include <cstddef>
#include <cstdint>

#include "fuzz/request_path_checks.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  gradientd::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  gradientd::fuzz::CheckRequestPath({data, size});
  return 0;
}
