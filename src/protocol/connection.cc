#include "protocol/connection.h"

#include <algorithm>
#include <cstring>

#include "protocol/error_codes.h"
#include "protocol/frame_codec.h"

namespace gradientd::protocol {
namespace {

constexpr std::size_t kReadAhead = 64 * 1024;

void AppendError(v1::Error::Code code, const std::string& message, std::string* out) {
  v1::Response response;
  response.mutable_error()->set_code(code);
  response.mutable_error()->set_message(message);
  AppendFrame(response, out);
}

}  // namespace

Connection::Connection(RequestHandler& handler, std::size_t max_frame_bytes)
    : handler_(handler), max_frame_bytes_(max_frame_bytes) {}

std::span<uint8_t> Connection::ReceiveBuffer() {
  // Move the unconsumed tail to the front, then make room for what the
  // next frame needs (already checked against the cap) plus read-ahead.
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t want = end_ + std::max(missing_, kReadAhead);
  if (buffer_.size() < want) buffer_.resize(want);
  return {buffer_.data() + end_, buffer_.size() - end_};
}

void Connection::Received(std::size_t bytes) { end_ += bytes; }

bool Connection::HasFrame() const {
  const std::span<const uint8_t> pending(buffer_.data() + begin_, end_ - begin_);
  return DecodeFrameHeader(pending, max_frame_bytes_).kind != FrameHeader::Kind::kNeedMore;
}

bool Connection::Process(std::string* out, std::size_t max_output) {
  waiting_.clear();
  durability_token_ = 0;
  while (out->size() < max_output) {
    const std::span<const uint8_t> pending(buffer_.data() + begin_, end_ - begin_);
    const FrameHeader h = DecodeFrameHeader(pending, max_frame_bytes_);
    switch (h.kind) {
      case FrameHeader::Kind::kNeedMore:
        missing_ = h.missing;
        return true;
      case FrameHeader::Kind::kError:
        AppendError(h.oversize ? v1::Error::RESOURCE_EXHAUSTED : v1::Error::INVALID_ARGUMENT,
                    h.error + "; closing the connection", out);
        begin_ = end_;
        return false;
      case FrameHeader::Kind::kFrame:
        break;
    }
    const uint8_t* body = pending.data() + h.header_bytes;
    begin_ += h.header_bytes + h.body_bytes;
    missing_ = 1;
    request_.Clear();
    if (!request_.ParseFromArray(body, static_cast<int>(h.body_bytes))) {
      AppendError(v1::Error::INVALID_ARGUMENT,
                  "cannot decode a " + std::to_string(h.body_bytes) +
                      "-byte frame as a gradientd.v1.Request; closing the connection",
                  out);
      begin_ = end_;
      return false;
    }
    response_.Clear();
    const uint64_t token = handler_.Handle(request_, &response_);
    response_.set_id(request_.id());
    const std::size_t start = out->size();
    AppendFrame(response_, out);
    if (token > 0) {
      waiting_.push_back({start, out->size(), request_.id()});
      durability_token_ = std::max(durability_token_, token);
    }
  }
  return true;
}

void Connection::FailUndurable(const Status& status, const std::vector<Waiting>& waiting,
                               std::string* out) {
  std::string rewritten;
  std::size_t copied = 0;
  for (const Waiting& w : waiting) {
    rewritten.append(*out, copied, w.begin - copied);
    v1::Response error;
    error.set_id(w.id);
    SetError(status, &error);
    AppendFrame(error, &rewritten);
    copied = w.end;
  }
  rewritten.append(*out, copied);
  out->swap(rewritten);
}

}  // namespace gradientd::protocol
