// The protocol side of one connection, without I/O: the transport hands it
// received bytes, it decodes every whole frame, asks the handler for the
// response to each request, and hands back framed responses to send.
//
// Not synchronised: one connection is driven by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_reader.h"

namespace gradientd::protocol {

// Answers one request. Implementations must be safe to call from the
// threads that drive connections.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Fills `response` and returns its durability token: the response may be
  // sent only once the change log reports that token durable (0: at once).
  // REQUIRES: response is empty.
  virtual uint64_t Handle(const v1::Request& request, v1::Response* response) = 0;
};

class Connection {
 public:
  // ReceiveBuffer offers this much beyond what the next frame needs, at
  // first; each read that fills all of it doubles it, up to the maximum.
  // So the buffer holds at most two frames plus kMaxReadAhead.
  static constexpr std::size_t kMinReadAhead = FrameReader::kMinReadBytes;
  static constexpr std::size_t kMaxReadAhead = 1024 * 1024;

  Connection(RequestHandler& handler, std::size_t max_frame_bytes);

  // Writable space for at least the bytes the next frame still needs (and
  // at least some read-ahead); fill a prefix and call Received.
  std::span<uint8_t> ReceiveBuffer() { return reader_.Space(); }
  void Received(std::size_t bytes) { reader_.Commit(bytes); }

  // A response of the last Process call that waits on the change log: where
  // it is in `out`, its request's id, and its own durability token.
  struct Waiting {
    std::size_t begin, end;
    uint64_t id;
    uint64_t token;
  };

  using Clock = std::chrono::steady_clock;

  // Handles the whole frames received so far, appending one framed response
  // per request to `out`, until `out` holds at least `max_output` bytes or
  // `deadline` has passed after a request (the rest stay buffered: see
  // HasFrame), or until the next request is long work deferred by
  // DeferLongWork (see wants_worker). Returns false when the connection
  // must be closed once `out` has been sent (a frame could not be decoded,
  // or was over the size limit); bytes after such a frame are never looked
  // at.
  bool Process(std::string* out, std::size_t max_output = std::numeric_limits<std::size_t>::max(),
               Clock::time_point deadline = Clock::time_point::max());

  // While on, Process stops before a request that may be long work (step,
  // configure, reset), leaving it buffered and wants_worker() true, so the
  // transport can move the connection off a thread that must stay
  // responsive first. Off by default.
  void DeferLongWork(bool on) { defer_long_work_ = on; }
  // Process stopped before long work (see DeferLongWork), or has handled an
  // ingest: the connection belongs on a worker thread.
  bool wants_worker() const { return ingested_ || deferred_long_work_; }

  // Frames decoded so far (each gets a response).
  uint64_t frames() const { return frames_; }

  // A whole frame is buffered: call Process before receiving more.
  bool HasFrame() const { return reader_.HasFrame(); }

  // The durability token the responses appended by the last Process call
  // wait for (0: none): send them only once it is durable.
  uint64_t durability_token() const { return durability_token_; }
  // Those responses; taking them leaves none.
  std::vector<Waiting> TakeWaiting() { return std::move(waiting_); }

  // The change log failed before the last token became durable: replaces,
  // in `out`, each waiting response whose own token's `outcome` is not Ok
  // with an Error carrying that status; the others stay as they are.
  using Outcome = std::function<Status(uint64_t token)>;
  static void FailUndurable(const Outcome& outcome, const std::vector<Waiting>& waiting,
                            std::string* out);

  // Replaces, in `out`, each waiting response with the one at its index in
  // `responses` (given the waiting one's id).
  static void ReplaceResponses(const std::vector<Waiting>& waiting,
                               std::vector<v1::Response>& responses, std::string* out);

  // Bytes received that do not yet form a whole frame.
  std::size_t buffered() const { return reader_.buffered(); }

  // Whether a Process call has handled an Ingest request: the connection
  // belongs to a producer.
  bool ingested() const { return ingested_; }

  // The memory the reused request holds (tests: it stays bounded).
  std::size_t RequestSpaceUsedForTesting() const { return request_.SpaceUsedLong(); }

 private:
  // Decodes a frame's body into request_; false if it is not a Request.
  bool ParseRequest(const uint8_t* body, std::size_t size);
  // The common case, an ingest with at most an id besides, decoded into the
  // previous frame's PointBatch so its arrays are reused rather than
  // reallocated for every batch. False (request_ then undefined) for any
  // other shape; ParseRequest then decodes it the general way.
  bool ParseIngestInPlace(const uint8_t* body, std::size_t size);

  RequestHandler& handler_;
  FrameReader reader_;
  v1::Request request_;        // reused across frames
  bool reuse_ingest_ = false;  // request_ holds just an id and an ingest
  v1::Response response_;
  std::vector<Waiting> waiting_;
  uint64_t durability_token_ = 0;
  uint64_t frames_ = 0;
  bool ingested_ = false;
  bool defer_long_work_ = false;
  bool deferred_long_work_ = false;
};

}  // namespace gradientd::protocol
