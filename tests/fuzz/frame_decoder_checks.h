// The checks behind the libFuzzer targets (tests/fuzz/*_fuzz.cc), shared with
// tests/fuzz_regression_test.cc, which runs every seed-corpus and regression
// input through them on every normal test run. This header: the input format,
// failure reporting, reference framing, the transport driver, and the checks
// of frame_decoder_fuzz; request_path_checks.h has request_path_fuzz's.
//
// Input format, for both targets: byte 0 picks the connection's frame-size
// limit (low 3 bits, see kFrameLimits) and the largest chunk the transport
// hands over at once (bits 3-5, see kChunkLimits); byte 1 seeds the chunk
// sizes; every byte after that is the stream a client sends. An input
// shorter than two bytes is an empty stream. tests/fuzz/make_corpus.cc writes
// the seed corpus in this format.
//
// A violated invariant calls Fail(): by default it prints the reason and
// aborts (what libFuzzer wants); the regression test installs a hook that
// throws instead.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/connection.h"
#include "protocol/frame_codec.h"

namespace gradientd::fuzz {

// ---------------------------------------------------------------------------
// Failure reporting.

using FailHook = void (*)(const std::string& what);

inline FailHook& FailHookSlot() {
  static FailHook hook = nullptr;
  return hook;
}

[[noreturn]] inline void Fail(const char* file, int line, const std::string& what) {
  const std::string message =
      std::string(file) + ":" + std::to_string(line) + ": fuzz invariant violated: " + what;
  if (FailHook hook = FailHookSlot()) hook(message);  // may throw
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

#define GRADIENTD_FUZZ_CHECK(cond, what)                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      ::gradientd::fuzz::Fail(__FILE__, __LINE__, std::string("(" #cond ") ") + (what)); \
    }                                                                                    \
  } while (false)

// Protobuf logs every string field that is not valid UTF-8; that is noise
// for a fuzzer that produces them by the million.
inline void QuietProtobufLogs() { google::protobuf::SetLogHandler(nullptr); }

// ---------------------------------------------------------------------------
// The input plan.

// Not the server's 16 MiB default: a connection allocates room for the size
// a frame declares (up to the limit), and zero-filling megabytes per input
// would slow the fuzzers down many times over without reaching other code.
// The first limit is just over the connection's 64 KiB read-ahead, so frames
// that need the buffer to grow beyond it are reachable.
inline constexpr std::size_t kFrameLimits[8] = {65536 + 100, 65536, 4096, 1000, 300, 128, 127, 0};
// 0 = the whole stream in one chunk.
inline constexpr std::size_t kChunkLimits[8] = {0, 1, 2, 3, 7, 16, 64, 1000};

// Protocol::Connection reads ahead at most this much beyond the frame it
// needs; its buffer is bounded by two frames' worth plus this, whatever
// sizes a client declares.
inline constexpr std::size_t kReadAheadAllowance = protocol::Connection::kMaxReadAhead;

struct Plan {
  std::size_t max_frame_bytes = kFrameLimits[0];
  std::size_t max_chunk = 0;  // 0 = everything at once
  uint32_t chunk_seed = 1;
  std::span<const uint8_t> stream;
};

inline Plan ParsePlan(std::span<const uint8_t> input) {
  Plan plan;
  if (input.size() < 2) return plan;
  plan.max_frame_bytes = kFrameLimits[input[0] & 7u];
  plan.max_chunk = kChunkLimits[(input[0] >> 3) & 7u];
  plan.chunk_seed = (uint32_t{input[1]} + 1u) * 2654435761u;
  plan.stream = input.subspan(2);
  return plan;
}

// Chunk sizes for the transport, a deterministic function of the plan.
class Chunker {
 public:
  explicit Chunker(const Plan& plan) : max_(plan.max_chunk), state_(plan.chunk_seed | 1u) {}
  std::size_t Next(std::size_t remaining) {
    if (max_ == 0) return remaining;
    state_ ^= state_ << 13;  // xorshift32
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return std::min(remaining, 1 + static_cast<std::size_t>(state_) % max_);
  }

 private:
  std::size_t max_;
  uint32_t state_;
};

// ---------------------------------------------------------------------------
// Reference framing: the wire contract, written out plainly.

struct RefHeader {
  enum class Kind {
    kIncompleteHeader,  // every byte so far continues the varint
    kIncompleteBody,    // header complete, body not all here
    kFrame,
    kMalformed,  // the varint does not fit in 64 bits (10 bytes at most)
    kOversize,   // the bits seen so far already exceed the limit
  };
  Kind kind = Kind::kIncompleteHeader;
  std::size_t header_bytes = 0;
  uint64_t body_bytes = 0;
};

inline RefHeader ReferenceHeader(std::span<const uint8_t> bytes, std::size_t max_body) {
  RefHeader r;
  uint64_t value = 0;
  for (std::size_t i = 0;; ++i) {
    if (i == 10) {
      r.kind = RefHeader::Kind::kMalformed;
      return r;
    }
    if (i == bytes.size()) {
      r.kind = RefHeader::Kind::kIncompleteHeader;
      return r;
    }
    const unsigned group = bytes[i] & 0x7fu;
    // The tenth byte carries bit 63 only.
    if (i == 9 && group > 1) {
      r.kind = RefHeader::Kind::kMalformed;
      return r;
    }
    value += uint64_t{group} << (7 * i);
    if (value > max_body) {
      r.kind = RefHeader::Kind::kOversize;
      return r;
    }
    if ((bytes[i] & 0x80u) == 0) {
      r.header_bytes = i + 1;
      r.body_bytes = value;
      r.kind = bytes.size() - r.header_bytes >= value ? RefHeader::Kind::kFrame
                                                      : RefHeader::Kind::kIncompleteBody;
      return r;
    }
  }
}

// Checks protocol::DecodeFrameHeader on exactly `bytes` (copied to a heap
// block of exactly that size, so a read past the end is an ASan error)
// against the reference.
inline void CheckHeader(std::span<const uint8_t> bytes, std::size_t max_body) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[std::max<std::size_t>(bytes.size(), 1)]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  const std::span<const uint8_t> exact(copy.get(), bytes.size());
  const protocol::FrameHeader h = protocol::DecodeFrameHeader(exact, max_body);
  const RefHeader r = ReferenceHeader(exact, max_body);
  using Kind = protocol::FrameHeader::Kind;
  const std::string where = "DecodeFrameHeader on " + std::to_string(bytes.size()) +
                            " bytes, limit " + std::to_string(max_body);
  switch (r.kind) {
    case RefHeader::Kind::kIncompleteHeader:
      GRADIENTD_FUZZ_CHECK(h.kind == Kind::kNeedMore, where);
      GRADIENTD_FUZZ_CHECK(h.missing >= 1, where);
      return;
    case RefHeader::Kind::kIncompleteBody:
      GRADIENTD_FUZZ_CHECK(h.kind == Kind::kNeedMore, where);
      GRADIENTD_FUZZ_CHECK(h.header_bytes == r.header_bytes, where);
      GRADIENTD_FUZZ_CHECK(h.body_bytes == r.body_bytes, where);
      GRADIENTD_FUZZ_CHECK(h.missing == r.header_bytes + r.body_bytes - bytes.size(), where);
      return;
    case RefHeader::Kind::kFrame:
      GRADIENTD_FUZZ_CHECK(h.kind == Kind::kFrame, where);
      GRADIENTD_FUZZ_CHECK(h.header_bytes == r.header_bytes, where);
      GRADIENTD_FUZZ_CHECK(h.body_bytes == r.body_bytes, where);
      GRADIENTD_FUZZ_CHECK(h.body_bytes <= max_body, where);
      GRADIENTD_FUZZ_CHECK(h.header_bytes <= protocol::kMaxHeaderBytes, where);
      GRADIENTD_FUZZ_CHECK(h.header_bytes + h.body_bytes <= bytes.size(), where);
      return;
    case RefHeader::Kind::kMalformed:
      GRADIENTD_FUZZ_CHECK(h.kind == Kind::kError && !h.oversize, where);
      GRADIENTD_FUZZ_CHECK(!h.error.empty(), where);
      return;
    case RefHeader::Kind::kOversize:
      GRADIENTD_FUZZ_CHECK(h.kind == Kind::kError && h.oversize, where);
      GRADIENTD_FUZZ_CHECK(!h.error.empty(), where);
      return;
  }
}

// What a connection must do with a whole stream, whatever the chunking.
struct RefStream {
  std::vector<v1::Request> requests;  // every request before the end
  bool closed = false;                // a frame made the connection close
  v1::Error::Code close_code = v1::Error::CODE_UNSPECIFIED;
  std::size_t leftover = 0;  // bytes of an incomplete last frame, when not closed
  std::vector<std::size_t> frame_starts;
};

inline RefStream ReferenceStream(std::span<const uint8_t> stream, std::size_t max_body) {
  RefStream ref;
  std::size_t pos = 0;
  while (true) {
    ref.frame_starts.push_back(pos);
    const RefHeader h = ReferenceHeader(stream.subspan(pos), max_body);
    switch (h.kind) {
      case RefHeader::Kind::kIncompleteHeader:
      case RefHeader::Kind::kIncompleteBody:
        ref.leftover = stream.size() - pos;
        return ref;
      case RefHeader::Kind::kMalformed:
        ref.closed = true;
        ref.close_code = v1::Error::INVALID_ARGUMENT;
        return ref;
      case RefHeader::Kind::kOversize:
        ref.closed = true;
        ref.close_code = v1::Error::RESOURCE_EXHAUSTED;
        return ref;
      case RefHeader::Kind::kFrame:
        break;
    }
    v1::Request request;
    if (!request.ParseFromArray(stream.data() + pos + h.header_bytes,
                                static_cast<int>(h.body_bytes))) {
      ref.closed = true;
      ref.close_code = v1::Error::INVALID_ARGUMENT;
      return ref;
    }
    // The connection ignores unknown fields and does not keep them.
    request.DiscardUnknownFields();
    ref.requests.push_back(std::move(request));
    pos += h.header_bytes + static_cast<std::size_t>(h.body_bytes);
  }
}

// ---------------------------------------------------------------------------
// Driving a connection as a transport would.

struct DriveResult {
  bool closed = false;  // Process returned false
  std::string out;      // every framed response
};

// Feeds the plan's stream to `connection` in the plan's chunks, through the
// space ReceiveBuffer offers, calling Process after each chunk, until the
// stream ends or Process returns false. Checks the buffer bounds on the way.
inline DriveResult Drive(protocol::Connection& connection, const Plan& plan) {
  DriveResult result;
  Chunker chunker(plan);
  const std::span<const uint8_t> stream = plan.stream;
  const std::size_t bound =
      2 * (plan.max_frame_bytes + protocol::kMaxHeaderBytes) + kReadAheadAllowance;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t buffered = connection.buffered();
    GRADIENTD_FUZZ_CHECK(buffered <= pos, "more bytes buffered than received");
    const std::span<uint8_t> space = connection.ReceiveBuffer();
    GRADIENTD_FUZZ_CHECK(!space.empty(), "no room to receive into");
    GRADIENTD_FUZZ_CHECK(connection.buffered() == buffered, "ReceiveBuffer lost bytes");
    GRADIENTD_FUZZ_CHECK(buffered + space.size() <= bound,
                         "buffer of " + std::to_string(buffered + space.size()) +
                             " bytes for a frame limit of " + std::to_string(plan.max_frame_bytes));
    // Whatever is buffered is an incomplete frame (Process consumed the
    // rest); the space offered must hold all that frame still needs.
    const RefHeader pending =
        ReferenceHeader(stream.subspan(pos - buffered, buffered), plan.max_frame_bytes);
    GRADIENTD_FUZZ_CHECK(pending.kind == RefHeader::Kind::kIncompleteHeader ||
                             pending.kind == RefHeader::Kind::kIncompleteBody,
                         "the buffered bytes are not an incomplete frame");
    if (pending.kind == RefHeader::Kind::kIncompleteBody) {
      GRADIENTD_FUZZ_CHECK(space.size() >= pending.header_bytes + pending.body_bytes - buffered,
                           "ReceiveBuffer offers less than the rest of the frame");
    }
    const std::size_t n = std::min(chunker.Next(stream.size() - pos), space.size());
    std::memcpy(space.data(), stream.data() + pos, n);
    connection.Received(n);
    pos += n;
    GRADIENTD_FUZZ_CHECK(connection.buffered() == buffered + n, "Received miscounted");
    const std::size_t out_before = result.out.size();
    if (!connection.Process(&result.out)) {
      result.closed = true;
      // The connection closes with an Error as the last frame it sends.
      GRADIENTD_FUZZ_CHECK(result.out.size() > out_before, "closed without an error response");
      return result;
    }
  }
  return result;
}

// Splits a stream of framed responses; every frame must decode.
inline std::vector<v1::Response> ParseResponses(const std::string& out) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  std::vector<v1::Response> responses;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const RefHeader h =
        ReferenceHeader(bytes.subspan(pos), std::numeric_limits<std::size_t>::max());
    GRADIENTD_FUZZ_CHECK(h.kind == RefHeader::Kind::kFrame,
                         "response stream is not whole frames at byte " + std::to_string(pos));
    v1::Response response;
    GRADIENTD_FUZZ_CHECK(response.ParseFromArray(bytes.data() + pos + h.header_bytes,
                                                 static_cast<int>(h.body_bytes)),
                         "undecodable response frame");
    responses.push_back(std::move(response));
    pos += h.header_bytes + static_cast<std::size_t>(h.body_bytes);
  }
  return responses;
}

inline void CheckCloseError(const v1::Response& last, v1::Error::Code code) {
  GRADIENTD_FUZZ_CHECK(last.body_case() == v1::Response::kError,
                       "the last response before closing is not an Error");
  GRADIENTD_FUZZ_CHECK(last.error().code() == code, "closing error code " +
                                                        std::to_string(last.error().code()) +
                                                        ", expected " + std::to_string(code));
  GRADIENTD_FUZZ_CHECK(!last.error().message().empty(), "closing error without a message");
}

// ---------------------------------------------------------------------------
// Target 1: the frame decoder and the connection state machine.

// Records every request and answers each with a reply derived from it alone.
class RecordingHandler : public protocol::RequestHandler {
 public:
  static v1::Response EchoOf(const v1::Request& request, std::size_t index) {
    v1::Response response;
    response.mutable_ack()->set_series("echo");
    response.mutable_ack()->set_accepted(request.ByteSizeLong());
    response.mutable_ack()->set_total(index + 1);
    return response;
  }

  uint64_t Handle(const v1::Request& request, v1::Response* response) override {
    GRADIENTD_FUZZ_CHECK(
        response->ByteSizeLong() == 0 && response->body_case() == v1::Response::BODY_NOT_SET,
        "the handler was given a non-empty response");
    *response = EchoOf(request, requests.size());
    requests.push_back(request);
    return 0;  // no durability token: send at once
  }

  std::vector<v1::Request> requests;
};

inline void CheckFrameDecoder(std::span<const uint8_t> input) {
  const Plan plan = ParsePlan(input);
  const std::span<const uint8_t> stream = plan.stream;
  const RefStream ref = ReferenceStream(stream, plan.max_frame_bytes);

  // The header decoder alone: at every frame start, on every short prefix
  // there (incomplete headers), and at limits around the declared size.
  for (std::size_t start : ref.frame_starts) {
    const std::span<const uint8_t> at = stream.subspan(start);
    CheckHeader(at, plan.max_frame_bytes);
    CheckHeader(at, 0);
    CheckHeader(at, std::numeric_limits<std::size_t>::max());
    const RefHeader full = ReferenceHeader(at, std::numeric_limits<std::size_t>::max());
    if (full.kind == RefHeader::Kind::kFrame || full.kind == RefHeader::Kind::kIncompleteBody) {
      CheckHeader(at, static_cast<std::size_t>(full.body_bytes));
      if (full.body_bytes > 0) CheckHeader(at, static_cast<std::size_t>(full.body_bytes - 1));
    }
    for (std::size_t len = 0; len <= std::min<std::size_t>(at.size(), 12); ++len) {
      CheckHeader(at.first(len), plan.max_frame_bytes);
    }
  }

  // The connection, in the plan's chunks, against the reference.
  RecordingHandler handler;
  protocol::Connection connection(handler, plan.max_frame_bytes);
  const DriveResult drive = Drive(connection, plan);
  GRADIENTD_FUZZ_CHECK(drive.closed == ref.closed,
                       drive.closed ? "closed a connection the stream does not close"
                                    : "kept open a connection the stream closes");
  GRADIENTD_FUZZ_CHECK(handler.requests.size() == ref.requests.size(),
                       "handled " + std::to_string(handler.requests.size()) +
                           " requests; the stream holds " + std::to_string(ref.requests.size()));
  std::string expected;
  for (std::size_t i = 0; i < ref.requests.size(); ++i) {
    GRADIENTD_FUZZ_CHECK(
        handler.requests[i].SerializeAsString() == ref.requests[i].SerializeAsString(),
        "request " + std::to_string(i) + " decoded differently from the reference");
    v1::Response response = RecordingHandler::EchoOf(ref.requests[i], i);
    response.set_id(ref.requests[i].id());
    protocol::AppendFrame(response, &expected);
  }
  GRADIENTD_FUZZ_CHECK(drive.out.compare(0, expected.size(), expected) == 0,
                       "responses differ from one per request, in order, with its id");
  if (ref.closed) {
    const std::vector<v1::Response> tail = ParseResponses(drive.out.substr(expected.size()));
    GRADIENTD_FUZZ_CHECK(tail.size() == 1, "expected exactly one closing error after the replies");
    CheckCloseError(tail[0], ref.close_code);
    GRADIENTD_FUZZ_CHECK(tail[0].id() == 0, "a closing error answers no request");
  } else {
    GRADIENTD_FUZZ_CHECK(drive.out.size() == expected.size(), "extra bytes in the responses");
    GRADIENTD_FUZZ_CHECK(connection.buffered() == ref.leftover,
                         "buffered " + std::to_string(connection.buffered()) +
                             " bytes; the incomplete last frame has " +
                             std::to_string(ref.leftover));
  }
}

}  // namespace gradientd::fuzz
