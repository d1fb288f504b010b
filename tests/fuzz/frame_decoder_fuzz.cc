// libFuzzer target: arbitrary bytes, in chunkings derived from the input, into
// protocol::DecodeFrameHeader and protocol::Connection with a recording
// handler, checked against reference framing. See frame_decoder_checks.h for
// the input format and the invariants; tools/fuzz.sh runs it.
#include <cstddef>
#include <cstdint>

#include "fuzz/frame_decoder_checks.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  gradientd::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  gradientd::fuzz::CheckFrameDecoder({data, size});
  return 0;
}
