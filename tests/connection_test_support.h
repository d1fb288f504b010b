// What the protocol::Connection tests share: an echoing fake handler and
// helpers that frame requests, feed bytes and parse the responses.
#pragma once

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/connection.h"
#include "protocol/frame_codec.h"

namespace gradientd::protocol {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr std::size_t kCap = 1 << 20;
// Anything near this would mean the connection trusted a declared size.
constexpr std::size_t kSmallBuffer = 256 * 1024;

// What the echo handler puts in its reply, from the request alone.
inline std::string EchoOf(const v1::Request& r) {
  return std::to_string(static_cast<int>(r.body_case())) + ":" + std::to_string(r.ByteSizeLong());
}

class EchoHandler : public RequestHandler {
 public:
  // Ingests wait on the change log: their token is their request count.
  uint64_t Handle(const v1::Request& request, v1::Response* response) override {
    EXPECT_EQ(response->ByteSizeLong(), 0u) << "the response must start empty";
    requests.push_back(request);
    response->mutable_ack()->set_series(EchoOf(request));
    response->mutable_ack()->set_total(requests.size());
    return request.has_ingest() ? requests.size() : 0;
  }
  std::vector<v1::Request> requests;
};

inline std::vector<v1::Request> PipelinedRequests() {
  std::vector<v1::Request> out;
  v1::Request r;
  r.set_id(10);
  auto* b = r.mutable_ingest();
  b->set_series("a");
  for (int i = 0; i < 20; ++i) {
    b->add_x(i);
    b->add_y(2.0 * i + 1);
  }
  out.push_back(r);
  r.Clear();
  r.set_id(11);
  r.mutable_gradient()->set_series("a");
  r.mutable_gradient()->set_m(0.5);
  out.push_back(r);
  r.Clear();
  r.set_id(12);
  r.mutable_step()->set_iterations(100);
  out.push_back(r);
  out.emplace_back();  // empty body, id 0
  r.Clear();
  r.set_id(uint64_t{1} << 40);
  r.mutable_fit()->set_series(std::string(200, 'f'));  // 2-byte header
  out.push_back(r);
  r.Clear();
  r.set_id(14);
  r.mutable_list();
  out.push_back(r);
  r.Clear();
  r.set_id(10);  // ids need not be unique; they are echoed as given
  r.mutable_reset()->set_series("a");
  out.push_back(r);
  return out;
}

inline std::string Frames(const std::vector<v1::Request>& requests) {
  std::string out;
  for (const auto& r : requests) AppendFrame(r, &out);
  return out;
}

inline std::string Frame(std::string_view body) {
  std::string out;
  uint64_t n = body.size();
  do {
    auto byte = static_cast<uint8_t>(n & 0x7f);
    n >>= 7;
    if (n != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (n != 0);
  out.append(body);
  return out;
}

// Feeds `bytes` to the connection as a transport would: into the space
// ReceiveBuffer offers, then Received and Process. Stops at the first
// Process that returns false, and returns false then.
inline bool Feed(Connection& c, std::string_view bytes, std::string* out) {
  do {
    const std::span<uint8_t> buf = c.ReceiveBuffer();
    EXPECT_GE(buf.size(), 1u);
    const std::size_t n = std::min(buf.size(), bytes.size());
    if (n > 0) std::memcpy(buf.data(), bytes.data(), n);
    c.Received(n);
    bytes.remove_prefix(n);
    if (!c.Process(out)) return false;
  } while (!bytes.empty());
  return true;
}

// Parses a stream of framed responses with protobuf's own delimited reader.
inline std::vector<v1::Response> ParseResponses(const std::string& out) {
  google::protobuf::io::ArrayInputStream input(out.data(), static_cast<int>(out.size()));
  std::vector<v1::Response> responses;
  while (true) {
    v1::Response r;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&r, &input, &clean_eof)) {
      EXPECT_TRUE(clean_eof) << "undecodable response " << responses.size();
      break;
    }
    responses.push_back(r);
  }
  return responses;
}

inline void ExpectEchoed(const std::vector<v1::Request>& requests, const EchoHandler& handler,
                         const std::string& out) {
  ASSERT_EQ(handler.requests.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(handler.requests[i], requests[i]))
        << "request " << i << ": " << handler.requests[i].ShortDebugString();
  }
  const auto responses = ParseResponses(out);
  ASSERT_EQ(responses.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(responses[i].id(), requests[i].id()) << "response " << i;
    ASSERT_EQ(responses[i].body_case(), v1::Response::kAck) << "response " << i;
    EXPECT_EQ(responses[i].ack().series(), EchoOf(requests[i])) << "response " << i;
    EXPECT_EQ(responses[i].ack().total(), i + 1) << "response " << i;
  }
}

}  // namespace
}  // namespace gradientd::protocol
