#include "protocol/connection.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <functional>

#include "protocol/error_codes.h"
#include "protocol/frame_codec.h"
#include "protocol/unknown_fields.h"

namespace gradientd::protocol {
namespace {

void AppendError(v1::Error::Code code, const std::string& message, std::string* out) {
  v1::Response response;
  response.mutable_error()->set_code(code);
  response.mutable_error()->set_message(message);
  AppendFrame(response, out);
}

// Requests whose handling may take long (a step runs up to the Service's
// time limit), or that no query should wait behind.
bool IsLongWork(const v1::Request& request) {
  return request.has_step() || request.has_configure() || request.has_reset();
}

}  // namespace

Connection::Connection(RequestHandler& handler, std::size_t max_frame_bytes)
    : handler_(handler), reader_(max_frame_bytes, kMaxReadAhead) {}

bool Connection::Process(std::string* out, std::size_t max_output, Clock::time_point deadline) {
  waiting_.clear();
  durability_token_ = 0;
  deferred_long_work_ = false;
  for (bool first = true; out->size() < max_output; first = false) {
    if (!first && deadline != Clock::time_point::max() && Clock::now() >= deadline) return true;
    std::span<const uint8_t> body;
    const FrameHeader h = reader_.Next(&body);
    switch (h.kind) {
      case FrameHeader::Kind::kNeedMore:
        return true;
      case FrameHeader::Kind::kError:
        AppendError(h.oversize ? v1::Error::RESOURCE_EXHAUSTED : v1::Error::INVALID_ARGUMENT,
                    h.error + "; closing the connection", out);
        reader_.DiscardAll();
        return false;
      case FrameHeader::Kind::kFrame:
        break;
    }
    if (!ParseRequest(body.data(), body.size())) {
      AppendError(v1::Error::INVALID_ARGUMENT,
                  "cannot decode a " + std::to_string(body.size()) +
                      "-byte frame as a gradientd.v1.Request; closing the connection",
                  out);
      reader_.DiscardAll();
      return false;
    }
    if (defer_long_work_ && IsLongWork(request_)) {
      reader_.PutBack();  // decoded again by the next Process
      deferred_long_work_ = true;
      return true;
    }
    ++frames_;
    ingested_ = ingested_ || request_.has_ingest();
    response_.Clear();
    const uint64_t token = handler_.Handle(request_, &response_);
    response_.set_id(request_.id());
    const std::size_t start = out->size();
    AppendFrame(response_, out);
    if (token > 0) {
      waiting_.push_back({start, out->size(), request_.id(), token});
      durability_token_ = std::max(durability_token_, token);
    }
  }
  return true;
}

bool Connection::ParseIngestInPlace(const uint8_t* body, std::size_t size) {
  namespace wire = google::protobuf::internal;
  using wire::WireFormatLite;
  constexpr uint32_t kIdTag =
      WireFormatLite::MakeTag(v1::Request::kIdFieldNumber, WireFormatLite::WIRETYPE_VARINT);
  constexpr uint32_t kIngestTag = WireFormatLite::MakeTag(
      v1::Request::kIngestFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  google::protobuf::io::CodedInputStream in(body, static_cast<int>(size));
  uint64_t id = 0;
  bool seen_id = false, seen_ingest = false;
  while (in.CurrentPosition() < static_cast<int>(size)) {
    const uint32_t tag = in.ReadTag();
    if (tag == kIdTag && !seen_id) {
      if (!in.ReadVarint64(&id)) return false;
      seen_id = true;
    } else if (tag == kIngestTag && !seen_ingest) {
      uint32_t length = 0;
      const void* data = nullptr;
      int available = 0;
      if (!in.ReadVarint32(&length) || !in.GetDirectBufferPointer(&data, &available) ||
          length > static_cast<uint32_t>(available)) {
        return false;
      }
      // mutable_ingest() keeps the previous ingest's arrays; ParseFromArray
      // clears them without giving back their capacity.
      if (!reuse_ingest_) request_.Clear();
      reuse_ingest_ = false;
      if (!request_.mutable_ingest()->ParseFromArray(data, static_cast<int>(length))) return false;
      in.Skip(static_cast<int>(length));
      seen_ingest = true;
    } else {
      return false;  // anything else: a repeated field, another body, unknown fields
    }
  }
  if (!seen_ingest) return false;
  request_.set_id(id);
  reuse_ingest_ = true;
  return true;
}

bool Connection::ParseRequest(const uint8_t* body, std::size_t size) {
  // Unknown fields are ignored, as protobuf's semantics say, but never kept:
  // protobuf would hold them in request_ (about 9 bytes of memory per byte
  // of a frame of tiny fields, across requests). A frame with some is parsed
  // without them (a frame of nothing else is a request without a body).
  // The scan skips packed arrays whole: cheap next to the parse.
  std::string stripped;
  switch (FindUnknownFields(v1::Request::descriptor(), body, size)) {
    case UnknownFields::kMalformed:
      return false;
    case UnknownFields::kSome:
      FindUnknownFields(v1::Request::descriptor(), body, size, &stripped);
      body = reinterpret_cast<const uint8_t*>(stripped.data());
      size = stripped.size();
      break;
    case UnknownFields::kNone:
      break;
  }
  if (ParseIngestInPlace(body, size)) return true;
  reuse_ingest_ = false;
  request_.Clear();
  return request_.ParseFromArray(body, static_cast<int>(size));
}

namespace {

// Rebuilds `out` with each waiting response for which replace(index, w,
// &response) is true framed in its place, given its request's id.
void RewriteWaiting(
    const std::vector<Connection::Waiting>& waiting,
    const std::function<bool(std::size_t, const Connection::Waiting&, v1::Response*)>& replace,
    std::string* out) {
  std::string rewritten;
  std::size_t copied = 0;
  for (std::size_t i = 0; i < waiting.size(); ++i) {
    const Connection::Waiting& w = waiting[i];
    v1::Response response;
    if (!replace(i, w, &response)) continue;
    rewritten.append(*out, copied, w.begin - copied);
    response.set_id(w.id);
    AppendFrame(response, &rewritten);
    copied = w.end;
  }
  rewritten.append(*out, copied);
  out->swap(rewritten);
}

}  // namespace

void Connection::FailUndurable(const Outcome& outcome, const std::vector<Waiting>& waiting,
                               std::string* out) {
  RewriteWaiting(
      waiting,
      [&](std::size_t, const Waiting& w, v1::Response* error) {
        const Status status = outcome(w.token);
        if (status.ok()) return false;  // durable: its acknowledgement stands
        SetError(status, error);
        return true;
      },
      out);
}

void Connection::ReplaceResponses(const std::vector<Waiting>& waiting,
                                  std::vector<v1::Response>& responses, std::string* out) {
  RewriteWaiting(
      waiting,
      [&](std::size_t i, const Waiting&, v1::Response* response) {
        if (i >= responses.size()) return false;
        response->Swap(&responses[i]);
        return true;
      },
      out);
}

}  // namespace gradientd::protocol
