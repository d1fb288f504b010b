// libFuzzer target: recovery from arbitrary data directory contents, and from
// real histories with damaged files. durable::DataDirectory::Open must refuse
// with a message or recover a consistent state (a prefix of the history).
// See recovery_checks.h; tools/fuzz.sh runs it with seeds from
// recovery_make_seeds (real journals and snapshots, made at run time).
#include <cstddef>
#include <cstdint>

#include "fuzz/recovery_checks.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  gradientd::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  gradientd::fuzz::CheckRecovery({data, size});
  return 0;
}
