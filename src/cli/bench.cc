#include "cli/bench.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/synthetic_points.h"
#include "client/client.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/endpoint.h"
#include "protocol/frame_codec.h"
#include "util/random.h"

namespace gradientd::cli {
namespace {

namespace asio = boost::asio;
namespace po = boost::program_options;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using google::protobuf::io::CodedOutputStream;

// Payload: the points' values, two doubles a point. The wire carries a few
// more bytes a batch (frame and field headers); both are reported.
constexpr uint64_t kPayloadBytesPerPoint = 16;
constexpr double kPayloadBytesPerPointD = 16.0;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kMaxResponseBytes = std::size_t{64} << 20;
constexpr int kSpawnTimeoutMs = 30'000;
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr int kWarmupRoundTrips = 20;
constexpr int64_t kMaxBatchPoints = 1'000'000;  // as `produce`: under the 16 MiB frame limit
// The query, evaluated at an explicit (m, b) so the model's descent does not
// enter the measurement.
constexpr double kQueryM = 2.0;
constexpr double kQueryB = 1.0;
// The series-count phase: requests per write, and the most in flight.
constexpr uint64_t kSeriesChunk = 256;
constexpr uint64_t kSeriesWindow = 4096;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

Clock::duration FromSeconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// 117050000 -> "117,050,000".
std::string Grouped(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string MiB(uint64_t bytes) {
  return Fixed(static_cast<double>(bytes) / (1024.0 * 1024.0), 1) + " MiB";
}

double CpuSecondsSelf() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

// ---------------------------------------------------------------------------
// JSON output: keys in the order added.

class JsonObject {
 public:
  void Number(std::string_view key, double v) {
    if (!std::isfinite(v)) return Null(key);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    Raw(key, buf);
  }
  void Integer(std::string_view key, uint64_t v) { Raw(key, std::to_string(v)); }
  void Bool(std::string_view key, bool v) { Raw(key, v ? "true" : "false"); }
  void Null(std::string_view key) { Raw(key, "null"); }
  void String(std::string_view key, std::string_view v) { Raw(key, Quote(v)); }
  void Object(std::string_view key, const JsonObject& v) { Raw(key, v.str()); }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void Raw(std::string_view key, std::string_view json) {
    if (!body_.empty()) body_ += ',';
    body_ += Quote(key);
    body_ += ':';
    body_ += json;
  }
  static std::string Quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (u < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }
  std::string body_;
};

// ---------------------------------------------------------------------------
// A blocking connection that writes raw bytes and reads whole frames.
// One thread at a time.

void AppendVarint(uint64_t v, std::string* out) {
  uint8_t buf[protocol::kMaxHeaderBytes];
  const uint8_t* end = CodedOutputStream::WriteVarint64ToArray(v, buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(end - buf));
}

Status CheckResponse(std::span<const uint8_t> body, v1::Response::BodyCase expected,
                     v1::Response* response);

class Connection {
 public:
  // Connects (with the options' congestion control); with the options'
  // token, authenticates with a Hello and waits for its reply.
  Status Connect(const protocol::Endpoint& endpoint, const client::ConnectOptions& options = {}) {
    if (Status s = Open(endpoint, options.tcp_congestion); !s.ok() || options.token.empty()) {
      return s;
    }
    v1::Request request;
    request.mutable_hello()->set_token(options.token);
    std::string frame;
    protocol::AppendFrame(request, &frame);
    if (Status s = Write(asio::buffer(frame)); !s.ok()) return s;
    std::span<const uint8_t> body;
    if (Status s = WaitFrame(&body); !s.ok()) return s;
    v1::Response response;
    if (Status s = CheckResponse(body, v1::Response::kHello, &response); !s.ok()) {
      return Status(s.code(), name_ + " refused the token: " + s.message());
    }
    return Status::Ok();
  }

  Status Open(const protocol::Endpoint& endpoint, const std::string& tcp_congestion = {}) {
    name_ = protocol::FormatEndpoint(endpoint.host, endpoint.port);
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (ec) return Status::Unavailable("cannot resolve " + name_ + ": " + ec.message());
    asio::connect(socket_, endpoints, ec);
    if (ec) return Status::Unavailable("cannot connect to " + name_ + ": " + ec.message());
    socket_.set_option(tcp::no_delay(true), ec);
    if (tcp_congestion.empty()) return Status::Ok();
    return client::SetTcpCongestion(socket_.native_handle(), tcp_congestion);
  }

  // The socket's TCP congestion control.
  std::string congestion() { return client::TcpCongestion(socket_.native_handle()); }

  template <typename ConstBufferSequence>
  Status Write(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    asio::write(socket_, buffers, ec);
    return ec ? Broken(ec) : Status::Ok();
  }

  // The next frame's body. With `wait`, reads until a whole frame is there;
  // without, reads only what has already arrived and sets *got = false when
  // that holds no whole frame. The body is valid until the next call.
  Status NextFrame(bool wait, std::span<const uint8_t>* body, bool* got) {
    *got = false;
    while (true) {
      const std::span<const uint8_t> pending(in_.data() + begin_, end_ - begin_);
      const protocol::FrameHeader h = protocol::DecodeFrameHeader(pending, kMaxResponseBytes);
      if (h.kind == protocol::FrameHeader::Kind::kError) {
        return Status::Internal("bad frame from " + name_ + ": " + h.error);
      }
      if (h.kind == protocol::FrameHeader::Kind::kFrame) {
        *body = pending.subspan(h.header_bytes, h.body_bytes);
        begin_ += h.header_bytes + h.body_bytes;
        *got = true;
        return Status::Ok();
      }
      boost::system::error_code ec;
      if (!wait && socket_.available(ec) == 0) return ec ? Broken(ec) : Status::Ok();
      if (begin_ > 0) {
        std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      const std::size_t want = end_ + std::max<std::size_t>(h.missing, 64 * 1024);
      if (in_.size() < want) in_.resize(want);
      const std::size_t n =
          socket_.read_some(asio::buffer(in_.data() + end_, in_.size() - end_), ec);
      if (ec) return Broken(ec);
      end_ += n;
    }
  }

  Status WaitFrame(std::span<const uint8_t>* body) {
    bool got = false;
    return NextFrame(true, body, &got);
  }

  void Close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  Status Broken(const boost::system::error_code& ec) const {
    if (ec == asio::error::eof) return Status::Unavailable("connection to " + name_ + " closed");
    return Status::Unavailable("connection to " + name_ + " failed: " + ec.message());
  }

  asio::io_context io_;
  tcp::socket socket_{io_};
  std::string name_;
  std::vector<uint8_t> in_;
  std::size_t begin_ = 0, end_ = 0;
};

// An Error response as a Status; a response of another kind than `expected`
// as an internal error.
Status CheckResponse(std::span<const uint8_t> body, v1::Response::BodyCase expected,
                     v1::Response* response) {
  if (!response->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::Internal("cannot decode a response");
  }
  if (response->has_error()) {
    const std::string& code = v1::Error::Code_Name(response->error().code());
    return Status(StatusCode::kFailedPrecondition,
                  "server error " + code + ": " + response->error().message());
  }
  if (response->body_case() != expected) {
    return Status::Internal("unexpected reply: " + ToJson(*response));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// The producers' pre-built batch.
//
// A frame is: varint frame size | Request.id (field 1, varint) | Request.ingest
// (field 2, length-delimited) holding the PointBatch's series and producer_id,
// its sequence (field 5, varint), then x and y (fields 2 and 3, packed). Field
// order does not matter to a protobuf parser, so the ~40-byte head before x
// and y is all that is re-encoded per send; x and y are the same bytes every
// time and go out with the head in one gather write.

constexpr char kRequestIdTag = 0x08;      // field 1, varint
constexpr char kRequestIngestTag = 0x12;  // field 2, length-delimited
constexpr char kBatchSequenceTag = 0x28;  // field 5, varint

struct BatchTemplate {
  uint64_t points = 0;
  std::string xy;  // a serialized PointBatch holding only x and y
  double first_x = 0;
};

BatchTemplate MakeBatchTemplate(uint64_t points) {
  SyntheticSpec spec;  // gradctl produce --synthetic's defaults
  spec.count = points;
  SyntheticPoints synthetic(spec);
  std::vector<double> x;
  std::vector<double> y;
  synthetic.Next(&x, &y, points);
  v1::PointBatch batch;
  batch.mutable_x()->Add(x.begin(), x.end());
  batch.mutable_y()->Add(y.begin(), y.end());
  BatchTemplate t;
  t.points = points;
  t.first_x = batch.x(0);
  t.xy = batch.SerializeAsString();
  return t;
}

// The serialized PointBatch fields that are the same for every batch of a
// producer.
std::string FixedBatchFields(const std::string& series, const std::string& producer_id) {
  v1::PointBatch fixed;
  fixed.set_series(series);
  fixed.set_producer_id(producer_id);
  return fixed.SerializeAsString();
}

void EncodeHead(const std::string& fixed, std::size_t xy_bytes, uint64_t id, uint64_t sequence,
                std::string* head) {
  const std::size_t batch_bytes =
      fixed.size() + 1 + CodedOutputStream::VarintSize64(sequence) + xy_bytes;
  const std::size_t request_bytes = 1 + CodedOutputStream::VarintSize64(id) + 1 +
                                    CodedOutputStream::VarintSize64(batch_bytes) + batch_bytes;
  head->clear();
  AppendVarint(request_bytes, head);
  head->push_back(kRequestIdTag);
  AppendVarint(id, head);
  head->push_back(kRequestIngestTag);
  AppendVarint(batch_bytes, head);
  head->append(fixed);
  head->push_back(kBatchSequenceTag);
  AppendVarint(sequence, head);
}

// Checks that the hand-made frames decode as the Request they stand for.
Status VerifyTemplate(const BatchTemplate& t) {
  const std::string fixed = FixedBatchFields("check", "check-producer");
  for (const auto& [id, sequence] :
       {std::pair<uint64_t, uint64_t>{1, 1}, {300, 70'000}, {uint64_t{1} << 40, 5}}) {
    std::string frame;
    EncodeHead(fixed, t.xy.size(), id, sequence, &frame);
    frame += t.xy;
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(frame.data()),
                                         frame.size());
    const protocol::FrameHeader h = protocol::DecodeFrameHeader(bytes, frame.size());
    v1::Request request;
    const bool ok =
        h.kind == protocol::FrameHeader::Kind::kFrame &&
        h.header_bytes + h.body_bytes == frame.size() &&
        request.ParseFromArray(bytes.data() + h.header_bytes, static_cast<int>(h.body_bytes)) &&
        request.id() == id && request.has_ingest() && request.ingest().series() == "check" &&
        request.ingest().producer_id() == "check-producer" &&
        request.ingest().sequence() == sequence &&
        static_cast<uint64_t>(request.ingest().x_size()) == t.points &&
        static_cast<uint64_t>(request.ingest().y_size()) == t.points &&
        request.ingest().x(0) == t.first_x;
    if (!ok) return Status::Internal("the pre-built ingest frame does not decode (a bug)");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Producers.

struct ProducerPlan {
  const BatchTemplate* batch = nullptr;
  std::string series;
  bool expect_acks = true;  // false: a discard server, which never answers
  uint64_t window = 1;
  client::ConnectOptions connect;  // token and congestion control (TLS: never)
  Clock::time_point deadline;
  uint64_t points_limit = 0;                      // 0: none
  std::atomic<uint64_t>* points_acked = nullptr;  // over all producers
  std::atomic<bool>* stop = nullptr;              // set on any producer's error
};

struct ProducerResult {
  Status status;
  uint64_t batches_sent = 0;
  uint64_t batches_acked = 0;
  uint64_t points_acked = 0;
  uint64_t bytes_sent = 0;
  Clock::time_point finished;
};

// Sends batches until the deadline (at least one), keeping at most `window`
// unacknowledged, then collects the acknowledgements still in flight.
void RunProducer(const ProducerPlan& plan, const std::string& producer_id, Connection* connection,
                 ProducerResult* result) {
  const std::string fixed = FixedBatchFields(plan.series, producer_id);
  const std::string& xy = plan.batch->xy;
  std::string head;
  v1::Response response;
  uint64_t in_flight = 0;
  const auto running = [&] {
    return !plan.stop->load(std::memory_order_relaxed) && Clock::now() < plan.deadline &&
           (plan.points_limit == 0 ||
            plan.points_acked->load(std::memory_order_relaxed) < plan.points_limit);
  };
  const auto take_ack = [&](std::span<const uint8_t> body) {
    Status s = CheckResponse(body, v1::Response::kAck, &response);
    if (!s.ok()) return s;
    --in_flight;
    ++result->batches_acked;
    result->points_acked += response.ack().accepted();
    plan.points_acked->fetch_add(response.ack().accepted(), std::memory_order_relaxed);
    return Status::Ok();
  };
  // Waits for one acknowledgement, then takes those already received.
  const auto collect = [&] {
    std::span<const uint8_t> body;
    if (Status s = connection->WaitFrame(&body); !s.ok()) return s;
    if (Status s = take_ack(body); !s.ok()) return s;
    while (in_flight > 0) {
      bool got = false;
      if (Status s = connection->NextFrame(false, &body, &got); !s.ok()) return s;
      if (!got) break;
      if (Status s = take_ack(body); !s.ok()) return s;
    }
    return Status::Ok();
  };

  Status status;
  bool first = true;
  while (status.ok() && (first || running())) {
    first = false;
    if (plan.expect_acks && in_flight >= plan.window) {
      status = collect();
      continue;
    }
    const uint64_t n = result->batches_sent + 1;
    EncodeHead(fixed, xy.size(), n, n, &head);
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(xy)};
    status = connection->Write(buffers);
    if (!status.ok()) break;
    result->batches_sent = n;
    result->bytes_sent += head.size() + xy.size();
    if (plan.expect_acks) ++in_flight;
  }
  while (status.ok() && plan.expect_acks && in_flight > 0) status = collect();
  result->finished = Clock::now();
  if (!status.ok()) {
    result->status = Status(status.code(), producer_id + ": " + status.message());
    plan.stop->store(true);
  }
  connection->Close();
}

struct IngestResult {
  Status status;
  uint64_t batches_sent = 0;
  uint64_t batches_acked = 0;
  uint64_t points_acked = 0;
  uint64_t bytes_sent = 0;
  double seconds = 0;
  std::string tcp_congestion;  // what the producers' sockets used
};

// Connects `producers` connections to `endpoint`, runs them from `start` to
// `deadline`, calls `monitor` with the points acknowledged so far every few
// milliseconds while they run, and once at the end.
IngestResult RunProducers(const protocol::Endpoint& endpoint, int producers, ProducerPlan plan,
                          double seconds, const std::string& id_prefix,
                          const std::function<void(uint64_t)>& monitor) {
  IngestResult total;
  std::vector<std::unique_ptr<Connection>> connections;
  for (int i = 0; i < producers; ++i) {
    connections.push_back(std::make_unique<Connection>());
    if (Status s = connections.back()->Connect(endpoint, plan.connect); !s.ok()) {
      total.status = s;
      return total;
    }
  }
  total.tcp_congestion = connections.front()->congestion();
  std::atomic<uint64_t> points_acked{0};
  std::atomic<bool> stop{false};
  std::atomic<int> running{producers};
  plan.points_acked = &points_acked;
  plan.stop = &stop;
  std::vector<ProducerResult> results(static_cast<std::size_t>(producers));
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  plan.deadline = start + FromSeconds(seconds);
  for (int i = 0; i < producers; ++i) {
    const auto index = static_cast<std::size_t>(i);
    threads.emplace_back([&, index] {
      RunProducer(plan, id_prefix + "-" + std::to_string(index), connections[index].get(),
                  &results[index]);
      running.fetch_sub(1);
    });
  }
  while (running.load() > 0) {
    if (monitor) monitor(points_acked.load());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (std::thread& t : threads) t.join();
  if (monitor) monitor(points_acked.load());
  Clock::time_point finished = start;
  for (const ProducerResult& r : results) {
    if (!r.status.ok() && total.status.ok()) total.status = r.status;
    total.batches_sent += r.batches_sent;
    total.batches_acked += r.batches_acked;
    total.points_acked += r.points_acked;
    total.bytes_sent += r.bytes_sent;
    finished = std::max(finished, r.finished);
  }
  total.seconds = Seconds(finished - start);
  return total;
}

// ---------------------------------------------------------------------------
// Round trips at a steady rate: gradient queries, or the same bytes to an
// echo server.

struct Latencies {
  std::vector<int64_t> ns;  // sorted once finished
  uint64_t late = 0;        // sent more than one interval behind schedule

  uint64_t count() const { return ns.size(); }
  double Us(double q) const { return static_cast<double>(Percentile(ns, q)) / 1e3; }
};

// One connection probed with round trips: the gradient query to gradientd,
// or the same frame to an echo server.
class Prober {
 public:
  Prober(Connection* connection, const std::string& series, bool echo)
      : connection_(connection), echo_(echo) {
    v1::GradientQuery* query = request_.mutable_gradient();
    query->set_series(series);
    query->set_m(kQueryM);
    query->set_b(kQueryB);
  }

  // One round trip: from the write of the frame to the whole reply.
  Status RoundTrip(int64_t* ns) {
    request_.set_id(++id_);
    frame_.clear();
    protocol::AppendFrame(request_, &frame_);
    std::span<const uint8_t> body;
    const Clock::time_point t0 = Clock::now();
    if (Status s = connection_->Write(asio::buffer(frame_)); !s.ok()) return s;
    if (Status s = connection_->WaitFrame(&body); !s.ok()) return s;
    const Clock::time_point t1 = Clock::now();
    *ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    if (echo_) {
      if (body.size() >= frame_.size() ||
          std::memcmp(body.data(), frame_.data() + (frame_.size() - body.size()), body.size()) !=
              0) {
        return Status::Internal("the echo server sent back other bytes");
      }
      return Status::Ok();
    }
    if (Status s = CheckResponse(body, v1::Response::kGradient, &response_); !s.ok()) return s;
    if (response_.id() != id_) return Status::Internal("a reply to another query");
    return Status::Ok();
  }

 private:
  Connection* connection_;
  bool echo_;
  v1::Request request_;
  v1::Response response_;
  std::string frame_;
  uint64_t id_ = 0;
};

struct RoundTripPlan {
  Connection* connection = nullptr;  // to gradientd
  std::string series;
  double rate = 1000;
  Clock::time_point end;
  const std::atomic<bool>* stop = nullptr;  // optional: stop early
  // Optional: an echo server probed at the same ticks, alternately before
  // and after the query, so that both see the same machine.
  Connection* echo = nullptr;
};

// One query at a time on schedule (at least one), `rate` a second, until
// `end`; with `echo`, an echo round trip at each tick too (and without a
// `connection`, only that). A few unrecorded round trips warm up first.
Status RunRoundTrips(const RoundTripPlan& plan, Latencies* latencies, Latencies* echo_latencies) {
  std::optional<Prober> query, echo;
  if (plan.connection != nullptr) query.emplace(plan.connection, plan.series, false);
  if (plan.echo != nullptr) echo.emplace(plan.echo, plan.series, true);
  int64_t ns = 0;
  for (int i = 0; i < kWarmupRoundTrips; ++i) {
    if (query) {
      if (Status s = query->RoundTrip(&ns); !s.ok()) return s;
    }
    if (echo) {
      if (Status s = echo->RoundTrip(&ns); !s.ok()) return s;
    }
  }
  const auto interval = FromSeconds(1.0 / plan.rate);
  const Clock::time_point start = Clock::now();
  const auto expected =
      static_cast<std::size_t>(std::min(1e7, plan.rate * Seconds(plan.end - start) + 16.0));
  if (query) latencies->ns.reserve(expected);
  if (echo) echo_latencies->ns.reserve(expected);
  for (uint64_t k = 0;; ++k) {
    const Clock::time_point scheduled = start + interval * static_cast<int64_t>(k);
    const Clock::time_point now = Clock::now();
    if (k > 0 && (now >= plan.end || (plan.stop != nullptr && plan.stop->load()))) break;
    if (now < scheduled) {
      std::this_thread::sleep_until(scheduled);
    } else if (now - scheduled > interval) {
      ++latencies->late;
    }
    for (int turn = 0; turn < 2; ++turn) {
      if ((turn == 0) == (k % 2 == 0)) {
        if (!query) continue;
        if (Status s = query->RoundTrip(&ns); !s.ok()) return s;
        latencies->ns.push_back(ns);
      } else if (echo) {
        if (Status s = echo->RoundTrip(&ns); !s.ok()) return s;
        echo_latencies->ns.push_back(ns);
      }
    }
  }
  if (query) std::sort(latencies->ns.begin(), latencies->ns.end());
  if (echo) std::sort(echo_latencies->ns.begin(), echo_latencies->ns.end());
  return Status::Ok();
}

// A failed system call's error, with what was being done.
Status Errno(const std::string& what) {
  return Status::Internal(what + ": " + std::strerror(errno));
}

// ---------------------------------------------------------------------------
// The discard baseline: an in-process server that reads and drops bytes,
// blocking Asio, one thread per connection.

class DiscardServer {
 public:
  explicit DiscardServer(int connections) : connections_(connections) {}
  ~DiscardServer() { Join(); }

  Status Start(protocol::Endpoint* endpoint) {
    boost::system::error_code ec;
    acceptor_.open(tcp::v4(), ec);
    if (!ec) acceptor_.bind(tcp::endpoint(asio::ip::address_v4::loopback(), 0), ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::Internal("cannot start the discard server: " + ec.message());
    endpoint->host = "127.0.0.1";
    endpoint->port = acceptor_.local_endpoint(ec).port();
    // Accepts exactly the connections the benchmark makes, then stops
    // accepting; each connection ends at the client's end of stream.
    acceptor_thread_ = std::thread([this] {
      for (int i = 0; i < connections_; ++i) {
        auto socket = std::make_shared<tcp::socket>(io_);
        boost::system::error_code accept_ec;
        acceptor_.accept(*socket, accept_ec);
        if (accept_ec) break;
        accepted_.fetch_add(1);
        socket->set_option(tcp::no_delay(true), accept_ec);
        workers_.emplace_back([this, socket] { Serve(*socket); });
      }
    });
    return Status::Ok();
  }

  // Waits for every connection to end. Connections the benchmark did not
  // make (it failed early) are made here, so that the accept loop ends.
  void Join() {
    if (acceptor_thread_.joinable()) {
      boost::system::error_code ec;
      const tcp::endpoint self(asio::ip::address_v4::loopback(),
                               acceptor_.local_endpoint(ec).port());
      for (int i = accepted_.load(); i < connections_ && !ec; ++i) {
        tcp::socket dummy(io_);
        dummy.connect(self, ec);
      }
      acceptor_thread_.join();
    }
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  uint64_t bytes_received() const { return bytes_.load(); }

 private:
  void Serve(tcp::socket& socket) {
    std::vector<char> buffer(std::size_t{1} << 20);
    uint64_t bytes = 0;
    while (true) {
      boost::system::error_code ec;
      const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
      if (ec) break;
      bytes += n;
    }
    bytes_.fetch_add(bytes);
  }

  int connections_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread acceptor_thread_;
  std::vector<std::thread> workers_;  // written by the acceptor thread only
  std::atomic<uint64_t> bytes_{0};
  std::atomic<int> accepted_{0};
};

// ---------------------------------------------------------------------------
// The echo baseline: a plain TCP echo server in a child process. Like
// gradientd, it is a process of its own, so each round trip to it pays the
// same switches between address spaces as a query does (a round trip to a
// thread of this process would not, and was measured 6 us faster here).

class EchoProcess {
 public:
  EchoProcess() = default;
  EchoProcess(const EchoProcess&) = delete;
  EchoProcess& operator=(const EchoProcess&) = delete;
  ~EchoProcess() { Stop(); }

  // Listens on a free loopback port and forks the server, which serves the
  // first connection made to it until that connection ends.
  Status Start(protocol::Endpoint* endpoint) {
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) return Errno("cannot start the echo server: socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(listener, 1) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      const Status s = Errno("cannot start the echo server");
      close(listener);
      return s;
    }
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
      close(listener);
      return Errno("cannot start the echo server: fork");
    }
    if (pid_ == 0) Serve(listener, parent);
    close(listener);
    endpoint->host = "127.0.0.1";
    endpoint->port = ntohs(address.sin_port);
    return Status::Ok();
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // The child. This process has threads, so only async-signal-safe calls.
  [[noreturn]] static void Serve(int listener, pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive gradctl
    if (getppid() != parent) _exit(1);
    const int connection = accept(listener, nullptr, nullptr);
    if (connection < 0) _exit(1);
    const int one = 1;
    setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char buffer[64 * 1024];
    while (true) {
      const ssize_t n = recv(connection, buffer, sizeof buffer, 0);
      if (n <= 0) _exit(0);
      for (ssize_t sent = 0; sent < n;) {
        const ssize_t w =
            send(connection, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
        if (w <= 0) _exit(0);
        sent += w;
      }
    }
  }

  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------
// The spawned server.

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::in | std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class SpawnedServer {
 public:
  SpawnedServer() = default;
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;
  ~SpawnedServer() {
    std::string ignored;
    Stop(&ignored);
    if (stdout_fd_ >= 0) close(stdout_fd_);
    if (stderr_fd_ >= 0) close(stderr_fd_);
  }

  // Starts `binary --listen 127.0.0.1:0 --in-memory` and waits for its
  // "gradientd listening on HOST:PORT" line.
  Status Start(const std::string& binary, std::string* address) {
    const std::vector<std::string> args = {binary, "--listen", "127.0.0.1:0", "--in-memory"};
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    // Its stderr goes to an unlinked temporary file, read if it fails.
    const char* tmpdir = std::getenv("TMPDIR");
    std::string name = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                       "/gradctl-bench-server.XXXXXX";
    stderr_fd_ = mkostemp(name.data(), O_CLOEXEC);
    if (stderr_fd_ < 0) return Errno("cannot create a temporary file in the temporary directory");
    unlink(name.c_str());
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Errno("pipe");
    stdout_fd_ = pipe_fds[0];
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
      close(pipe_fds[1]);
      return Errno("fork");
    }
    if (pid_ == 0) {
      // The child: only async-signal-safe calls until exec.
      dup2(pipe_fds[1], STDOUT_FILENO);
      dup2(stderr_fd_, STDERR_FILENO);
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive gradctl
      if (getppid() != parent) _exit(1);
      execv(argv[0], argv.data());
      static constexpr char kMessage[] = "gradctl bench: cannot execute the server\n";
      [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(127);
    }
    close(pipe_fds[1]);

    static constexpr std::string_view kPrefix = "gradientd listening on ";
    std::string text;
    const Clock::time_point give_up = Clock::now() + std::chrono::milliseconds(kSpawnTimeoutMs);
    while (true) {
      if (const std::size_t eol = text.find('\n'); eol != std::string::npos) {
        std::string line = text.substr(0, eol);
        text.erase(0, eol + 1);
        if (line.starts_with(kPrefix)) {
          *address = line.substr(kPrefix.size());
          return Status::Ok();
        }
        continue;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
      if (left.count() <= 0) {
        return Failed("did not report 'gradientd listening on HOST:PORT' within " +
                      std::to_string(kSpawnTimeoutMs / 1000) + " s");
      }
      pollfd p{stdout_fd_, POLLIN, 0};
      const int ready = poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) return Errno("poll");
      if (ready <= 0) continue;
      char buf[4096];
      const ssize_t n = read(stdout_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Failed("exited before listening");
      text.append(buf, static_cast<std::size_t>(n));
    }
  }

  pid_t pid() const { return pid_; }

  // Reads its CPU time and memory from /proc.
  Status Stats(ProcessStats* stats) const {
    const std::string dir = "/proc/" + std::to_string(pid_);
    const long ticks = sysconf(_SC_CLK_TCK);
    return ParseProcessStats(ReadFile(dir + "/stat"), ReadFile(dir + "/status"), ticks, stats);
  }

  // SIGTERM, then SIGKILL if it has not exited within kStopTimeout. Sets
  // *problem when it had already died or did not exit cleanly.
  void Stop(std::string* problem) {
    if (pid_ <= 0) return;
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      *problem = "the server had exited during the benchmark: " + Describe(status);
    } else {
      kill(pid_, SIGTERM);
      const Clock::time_point give_up = Clock::now() + kStopTimeout;
      while ((done = waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (done == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        *problem = "the server did not stop on SIGTERM; killed";
      } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
                 !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)) {
        *problem = "the server stopped badly: " + Describe(status);
      }
    }
    pid_ = -1;
  }

  // The end of what it wrote to stderr.
  std::string StderrTail() const {
    std::string text;
    char buf[4096];
    off_t offset = 0;
    ssize_t n;
    while ((n = pread(stderr_fd_, buf, sizeof buf, offset)) > 0) {
      text.append(buf, static_cast<std::size_t>(n));
      offset += n;
    }
    if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
    return text;
  }

 private:
  static std::string Describe(int status) {
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
  }
  Status Failed(const std::string& what) {
    std::string ignored;
    Stop(&ignored);
    std::string message = "the spawned gradientd " + what;
    const std::string tail = StderrTail();
    if (!tail.empty()) message += "; its stderr:\n" + tail;
    return Status::Unavailable(message);
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // kept open: the server may write to its stdout
  int stderr_fd_ = -1;
};

Status FindServerBinary(const BenchConfig& config, std::string* binary) {
  if (!config.server_binary.empty()) {
    *binary = config.server_binary;
  } else {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return Status::Unavailable("cannot find this executable: " + ec.message());
    *binary = (self.parent_path() / "gradientd").string();
  }
  if (access(binary->c_str(), X_OK) != 0) {
    return Status::Unavailable("cannot run the server binary '" + *binary +
                               "': " + std::strerror(errno) +
                               (config.server_binary.empty() ? " (use --server-binary PATH)" : ""));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Series-count phase: `count` series of one point each.

Status CreateSeries(const protocol::Endpoint& endpoint, const client::ConnectOptions& options,
                    const std::string& prefix, uint64_t count, double* seconds) {
  Connection connection;
  if (Status s = connection.Connect(endpoint, options); !s.ok()) return s;
  const Clock::time_point start = Clock::now();
  v1::Request request;
  v1::PointBatch* batch = request.mutable_ingest();
  batch->add_x(0);
  batch->add_y(0);
  v1::Response response;
  std::string chunk;
  uint64_t sent = 0, received = 0;
  char name[64];
  while (received < count) {
    if (sent < count && sent - received + kSeriesChunk <= kSeriesWindow) {
      chunk.clear();
      for (uint64_t i = 0; i < kSeriesChunk && sent < count; ++i, ++sent) {
        std::snprintf(name, sizeof name, "-%09llu", static_cast<unsigned long long>(sent));
        batch->set_series(prefix + name);
        batch->set_x(0, static_cast<double>(sent));
        batch->set_y(0, 1.0);
        request.set_id(sent + 1);
        protocol::AppendFrame(request, &chunk);
      }
      if (Status s = connection.Write(asio::buffer(chunk)); !s.ok()) return s;
      continue;
    }
    std::span<const uint8_t> body;
    if (Status s = connection.WaitFrame(&body); !s.ok()) return s;
    if (Status s = CheckResponse(body, v1::Response::kAck, &response); !s.ok()) return s;
    ++received;
  }
  *seconds = Seconds(Clock::now() - start);
  connection.Close();
  return Status::Ok();
}

// Makes sure `series` has points, so that gradient queries are answered: one
// batch when a query says it has none.
Status EnsureSeries(Connection* connection, const std::string& series, const BatchTemplate& batch,
                    const std::string& producer_id) {
  v1::Request request;
  request.set_id(1);
  request.mutable_gradient()->set_series(series);
  std::string frame;
  protocol::AppendFrame(request, &frame);
  std::span<const uint8_t> body;
  if (Status s = connection->Write(asio::buffer(frame)); !s.ok()) return s;
  if (Status s = connection->WaitFrame(&body); !s.ok()) return s;
  v1::Response response;
  if (!response.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::Internal("cannot decode a response");
  }
  if (response.has_gradient()) return Status::Ok();
  if (!response.has_error() || (response.error().code() != v1::Error::NOT_FOUND &&
                                response.error().code() != v1::Error::FAILED_PRECONDITION)) {
    return CheckResponse(body, v1::Response::kGradient, &response);
  }
  std::string head;
  EncodeHead(FixedBatchFields(series, producer_id), batch.xy.size(), 2, 1, &head);
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(batch.xy)};
  if (Status s = connection->Write(buffers); !s.ok()) return s;
  if (Status s = connection->WaitFrame(&body); !s.ok()) return s;
  return CheckResponse(body, v1::Response::kAck, &response);
}

// ---------------------------------------------------------------------------
// The run.

constexpr std::chrono::milliseconds kRateWindow{500};
constexpr std::pair<const char*, double> kWindowQuantiles[] = {
    {"min", 0.0}, {"p10", 0.1}, {"p50", 0.5}, {"p90", 0.9}, {"max", 1.0}};

struct RssCheckpoint {
  uint64_t threshold = 0;  // a power of ten
  uint64_t points = 0;     // acknowledged when sampled
  uint64_t rss_bytes = 0;
};

struct Report {
  std::string server;
  std::string server_binary;
  long server_pid = 0;
  std::string stop_problem;

  bool ingest_ran = false;
  IngestResult ingest;
  // Points/s acknowledged in each whole kRateWindow of ingest, sorted: how
  // steady ingest was (the scheduler's placement of the threads shows here).
  std::vector<int64_t> window_rates;
  double client_cpu_ingest = 0;
  Latencies idle, loaded, echo, loaded_echo;
  bool idle_ran = false, loaded_ran = false;

  bool baseline_ran = false;
  IngestResult discard;
  uint64_t discard_bytes_received = 0;

  bool have_stats = false;
  ProcessStats before_ingest, after_ingest, at_end;
  std::vector<RssCheckpoint> checkpoints;
  // VmHWM can lag behind VmRSS samples taken earlier: the largest of all.
  uint64_t peak_rss = 0;

  uint64_t series_count = 0;
  double series_seconds = 0;
  uint64_t series_rss_before = 0, series_rss_after = 0;
};

void PrintJson(const BenchConfig& c, const Report& r, std::ostream& out) {
  JsonObject j;
  const double points_per_second =
      r.ingest.seconds > 0 ? static_cast<double>(r.ingest.points_acked) / r.ingest.seconds : 0;
  const double wire_per_second =
      r.ingest.seconds > 0 ? static_cast<double>(r.ingest.bytes_sent) / r.ingest.seconds : 0;
  const double discard_per_second =
      r.discard.seconds > 0 ? static_cast<double>(r.discard.bytes_sent) / r.discard.seconds : 0;
  j.String("server", r.server);
  j.Bool("server_spawned", c.spawn_server);
  j.String("series", c.series);
  j.Integer("producers", static_cast<uint64_t>(c.producers));
  j.Integer("batch_points", static_cast<uint64_t>(c.batch));
  j.Integer("window", static_cast<uint64_t>(c.window));
  j.Number("seconds", c.seconds);
  j.Number("idle_seconds", c.idle_seconds);
  j.Number("query_rate", c.query_rate);
  j.Integer("payload_bytes_per_point", kPayloadBytesPerPoint);
  const std::string& congestion = r.ingest_ran ? r.ingest.tcp_congestion : r.discard.tcp_congestion;
  if (congestion.empty()) {
    j.Null("tcp_congestion");
  } else {
    j.String("tcp_congestion", congestion);
  }
  // Ingest.
  if (r.ingest_ran) {
    j.Number("ingest_seconds", r.ingest.seconds);
    j.Integer("points_acknowledged", r.ingest.points_acked);
    j.Integer("batches_acknowledged", r.ingest.batches_acked);
    j.Number("points_per_second", points_per_second);
    j.Number("payload_bytes_per_second", points_per_second * kPayloadBytesPerPointD);
    j.Number("wire_bytes_per_second", wire_per_second);
    j.Number("batches_per_second", static_cast<double>(r.ingest.batches_acked) / r.ingest.seconds);
    j.Number("client_cpu_seconds_ingest", r.client_cpu_ingest);
    j.Number("ingest_window_seconds", std::chrono::duration<double>(kRateWindow).count());
    j.Integer("ingest_windows", r.window_rates.size());
    for (const auto& [name, q] : kWindowQuantiles) {
      const std::string key = std::string("ingest_window_") + name + "_points_per_second";
      if (r.window_rates.empty()) {
        j.Null(key);
      } else {
        j.Number(key, static_cast<double>(Percentile(r.window_rates, q)));
      }
    }
  } else {
    for (const char* k : {"ingest_seconds", "points_acknowledged", "batches_acknowledged",
                          "points_per_second", "payload_bytes_per_second", "wire_bytes_per_second",
                          "batches_per_second", "client_cpu_seconds_ingest"}) {
      j.Null(k);
    }
  }
  // Queries.
  const auto latencies = [&](const std::string& prefix, const Latencies& l, bool ran) {
    if (!ran) {
      for (const char* k : {"count", "p50_us", "p99_us", "p999_us", "max_us"}) j.Null(prefix + k);
      return;
    }
    j.Integer(prefix + "count", l.count());
    j.Number(prefix + "p50_us", l.Us(0.5));
    j.Number(prefix + "p99_us", l.Us(0.99));
    j.Number(prefix + "p999_us", l.Us(0.999));
    j.Number(prefix + "max_us", l.Us(1.0));
  };
  latencies("query_", r.loaded, r.loaded_ran);
  if (r.loaded_ran) {
    j.Integer("query_late_sends", r.loaded.late);
  } else {
    j.Null("query_late_sends");
  }
  latencies("idle_query_", r.idle, r.idle_ran);
  // Baselines.
  j.Bool("baseline", r.baseline_ran);
  if (r.baseline_ran) {
    j.Number("baseline_discard_seconds", r.discard.seconds);
    j.Number("baseline_discard_bytes_per_second", discard_per_second);
    j.Number("baseline_discard_points_per_second",
             r.discard.seconds > 0
                 ? static_cast<double>(r.discard.batches_sent * static_cast<uint64_t>(c.batch)) /
                       r.discard.seconds
                 : 0);
    j.Number("ingest_fraction_of_discard",
             r.ingest_ran && discard_per_second > 0 ? wire_per_second / discard_per_second : kNaN);
    latencies("baseline_echo_", r.echo, true);
    latencies("baseline_echo_under_ingest_", r.loaded_echo, r.loaded_ran);
    // Each query p50 over the echo p50 of the same phase: same machine state.
    j.Number("query_p50_over_echo_p50",
             r.loaded_ran ? r.loaded.Us(0.5) / r.loaded_echo.Us(0.5) : kNaN);
    j.Number("idle_query_p50_over_echo_p50", r.idle_ran ? r.idle.Us(0.5) / r.echo.Us(0.5) : kNaN);
  } else {
    for (const char* k :
         {"baseline_discard_bytes_per_second", "ingest_fraction_of_discard", "baseline_echo_p50_us",
          "baseline_echo_p99_us", "query_p50_over_echo_p50"}) {
      j.Null(k);
    }
  }
  // The server process.
  if (r.have_stats) {
    j.Integer("server_pid", static_cast<uint64_t>(r.server_pid));
    j.Number("server_cpu_seconds", r.at_end.cpu_seconds);
    j.Number("server_cpu_seconds_ingest", r.after_ingest.cpu_seconds - r.before_ingest.cpu_seconds);
    j.Integer("server_peak_rss_bytes", r.peak_rss);
    j.Integer("server_rss_before_ingest_bytes", r.before_ingest.rss_bytes);
    j.Integer("server_rss_after_ingest_bytes", r.after_ingest.rss_bytes);
    JsonObject checkpoints;
    for (const RssCheckpoint& cp : r.checkpoints) {
      JsonObject o;
      o.Integer("points", cp.points);
      o.Integer("rss_bytes", cp.rss_bytes);
      checkpoints.Object(std::to_string(cp.threshold), o);
    }
    j.Object("server_rss_at_points", checkpoints);
  } else {
    for (const char* k : {"server_cpu_seconds", "server_peak_rss_bytes"}) j.Null(k);
  }
  if (r.series_count > 0) {
    j.Integer("series_count", r.series_count);
    j.Number("series_seconds", r.series_seconds);
    j.Integer("series_rss_before_bytes", r.series_rss_before);
    j.Integer("series_rss_after_bytes", r.series_rss_after);
    j.Number("series_bytes_per_series",
             (static_cast<double>(r.series_rss_after) - static_cast<double>(r.series_rss_before)) /
                 static_cast<double>(r.series_count));
  }
  out << j.str() << '\n';
}

std::string LatencyLine(const Latencies& l) {
  return "p50 " + Fixed(l.Us(0.5), 1) + " µs   p99 " + Fixed(l.Us(0.99), 1) + " µs   p99.9 " +
         Fixed(l.Us(0.999), 1) + " µs   max " + Fixed(l.Us(1.0), 1) + " µs   (" +
         Grouped(l.count()) + " round trips)";
}

void PrintReadable(const BenchConfig& c, const Report& r, std::ostream& out) {
  out << "gradctl bench: gradientd at " << r.server;
  if (c.spawn_server) out << " (spawned " << r.server_binary << ", pid " << r.server_pid << ")";
  out << '\n';
  if (r.ingest_ran) {
    out << c.producers << " producer" << (c.producers == 1 ? "" : "s") << " x "
        << Grouped(static_cast<uint64_t>(c.batch)) << "-point batches, window " << c.window << ", "
        << FormatNumber(c.seconds) << " s";
    if (!r.ingest.tcp_congestion.empty()) out << ", TCP " << r.ingest.tcp_congestion;
    out << "; ";
  } else {
    out << "no ingest (--seconds 0); ";
  }
  out << "gradient queries at " << FormatNumber(c.query_rate) << "/s; series '" << c.series
      << "'\n\n";
  KeyValueBlock b;
  const double wire_per_second =
      r.ingest.seconds > 0 ? static_cast<double>(r.ingest.bytes_sent) / r.ingest.seconds : 0;
  if (r.ingest_ran) {
    const double pps = static_cast<double>(r.ingest.points_acked) / r.ingest.seconds;
    b.Add("ingest", Fixed(pps / 1e6, 2) + " M points/s   " +
                        Fixed(pps * kPayloadBytesPerPointD / 1e6, 1) + " MB/s payload   " +
                        Fixed(static_cast<double>(r.ingest.batches_acked) / r.ingest.seconds, 0) +
                        " batches/s");
    b.Add("  acknowledged", Grouped(r.ingest.points_acked) + " points in " +
                                Grouped(r.ingest.batches_acked) + " batches, " +
                                Fixed(r.ingest.seconds, 3) + " s");
    b.Add("  on the wire", Fixed(wire_per_second / 1e6, 1) + " MB/s (payload: 16 bytes a point)");
    if (!r.window_rates.empty()) {
      std::string line;
      for (const auto& [name, q] : kWindowQuantiles) {
        line += std::string(line.empty() ? "" : "   ") + name + " " +
                Fixed(static_cast<double>(Percentile(r.window_rates, q)) / 1e6, 1);
      }
      b.Add("  per " + FormatNumber(std::chrono::duration<double>(kRateWindow).count()) + " s",
            line + " M points/s (" + Grouped(r.window_rates.size()) + " windows)");
    }
  }
  if (r.idle_ran) b.Add("query, idle", LatencyLine(r.idle));
  if (r.loaded_ran) {
    b.Add("query, under ingest", LatencyLine(r.loaded));
    if (r.loaded.late > 0) b.Add("  late sends", Grouped(r.loaded.late) + " (behind schedule)");
  }
  if (r.baseline_ran) {
    const double discard = static_cast<double>(r.discard.bytes_sent) / r.discard.seconds;
    std::string line = Fixed(discard / 1e6, 1) + " MB/s on the wire";
    if (r.ingest_ran) line += "; ingest carries " + Fixed(100 * wire_per_second / discard, 1) + "%";
    b.Add("discard baseline", line);
    b.Add("echo, idle", LatencyLine(r.echo));
    if (r.loaded_ran) b.Add("echo, under ingest", LatencyLine(r.loaded_echo));
    std::string ratio;
    if (r.idle_ran) ratio += "idle " + Fixed(r.idle.Us(0.5) / r.echo.Us(0.5), 2) + "x";
    if (r.loaded_ran) {
      ratio += (ratio.empty() ? "" : ", ") + std::string("under ingest ") +
               Fixed(r.loaded.Us(0.5) / r.loaded_echo.Us(0.5), 2) + "x";
    }
    if (!ratio.empty()) b.Add("query p50 / echo p50", ratio);
  }
  if (r.have_stats) {
    const double ingest_cpu = r.after_ingest.cpu_seconds - r.before_ingest.cpu_seconds;
    std::string cpu = Fixed(r.at_end.cpu_seconds, 2) + " s in all";
    if (r.ingest_ran) {
      cpu += ", " + Fixed(ingest_cpu, 2) + " s during ingest (" +
             Fixed(ingest_cpu / r.ingest.seconds, 2) + " cores)";
    }
    b.Add("server CPU", cpu);
    b.Add("server memory", "peak RSS " + MiB(r.peak_rss) + "; RSS " +
                               MiB(r.before_ingest.rss_bytes) + " before ingest, " +
                               MiB(r.after_ingest.rss_bytes) + " after");
    for (const RssCheckpoint& cp : r.checkpoints) {
      b.Add("  RSS at " + Grouped(cp.threshold) + " points",
            MiB(cp.rss_bytes) + " (sampled at " + Grouped(cp.points) + ")");
    }
  }
  if (r.ingest_ran) {
    b.Add("client CPU", Fixed(r.client_cpu_ingest, 2) + " s during ingest (" +
                            Fixed(r.client_cpu_ingest / r.ingest.seconds, 2) + " cores)");
  }
  if (r.series_count > 0) {
    const double per =
        (static_cast<double>(r.series_rss_after) - static_cast<double>(r.series_rss_before)) /
        static_cast<double>(r.series_count);
    b.Add("series", Grouped(r.series_count) + " created in " + Fixed(r.series_seconds, 2) +
                        " s; RSS " + MiB(r.series_rss_before) + " -> " + MiB(r.series_rss_after) +
                        " = " + Fixed(per, 0) + " bytes a series");
  }
  b.Print(out);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public.

int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const auto index = static_cast<std::size_t>(std::max(rank, 1.0)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

Status ParseProcessStats(const std::string& stat, const std::string& status, long ticks_per_second,
                         ProcessStats* stats) {
  // stat: "PID (COMM) STATE PPID ..." where COMM may hold spaces and
  // parentheses; utime and stime are fields 14 and 15, the 12th and 13th
  // after the closing parenthesis.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || ticks_per_second <= 0) {
    return Status::Internal("cannot parse /proc/PID/stat");
  }
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  if (!fields) return Status::Internal("cannot parse /proc/PID/stat");
  stats->cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
  bool rss = false, hwm = false;
  std::istringstream lines(status);
  std::string line;
  while (std::getline(lines, line)) {
    const auto kib = [&](std::string_view key, uint64_t* bytes) {
      if (!line.starts_with(key)) return false;
      *bytes = std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024;
      return true;
    };
    rss = kib("VmRSS:", &stats->rss_bytes) || rss;
    hwm = kib("VmHWM:", &stats->peak_rss_bytes) || hwm;
  }
  if (!rss || !hwm) return Status::Internal("no VmRSS or VmHWM in /proc/PID/status");
  return Status::Ok();
}

void AddBenchOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("spawn-server", po::bool_switch(),
       "start a private gradientd (--listen 127.0.0.1:0 --in-memory) for the run, stop it at "
       "the end, and report its CPU time and memory; --server is then ignored")
      ("server-binary", po::value<std::string>()->value_name("PATH"),
       "the gradientd to spawn (default: the gradientd next to this gradctl)")
      ("producers", po::value<int>()->default_value(2)->value_name("P"),
       "producer connections, one thread each")
      ("batch", po::value<int64_t>()->default_value(8192)->value_name("B"), "points per batch")
      ("window", po::value<int64_t>()->default_value(8)->value_name("W"),
       "most unacknowledged batches per producer")
      ("seconds", po::value<double>()->default_value(5.0)->value_name("S"),
       "how long the producers send (and the discard baseline runs); 0 skips ingest")
      ("points", po::value<int64_t>()->default_value(0)->value_name("N"),
       "stop ingest once N points are acknowledged (0: no limit; --seconds still bounds it)")
      ("query-rate", po::value<double>()->default_value(1000.0)->value_name("Q"),
       "gradient queries per second, one at a time on their own connection")
      ("idle-seconds", po::value<double>()->default_value(1.0)->value_name("S"),
       "query latency is measured this long before ingest starts (and the echo baseline runs "
       "this long); 0 skips it")
      ("baseline", po::bool_switch(),
       "run the baselines: a discard server in gradctl fed by the same producers, and a TCP "
       "echo server in a child process (the default with --spawn-server)")
      ("no-baseline", po::bool_switch(), "skip the baselines")
      ("series-count", po::value<int64_t>()->default_value(0)->value_name("N"),
       "after ingest, create N more series of one point each and report the server's RSS per "
       "series (needs --spawn-server)");
  // clang-format on
}

Status ParseBenchConfig(const po::variables_map& vm, BenchConfig* c) {
  c->server = vm["server"].as<std::string>();
  // The benchmark writes a lot: not into "default" unless asked to.
  c->series = vm["series"].defaulted() ? "bench" : vm["series"].as<std::string>();
  c->json = vm["json"].as<bool>();
  c->spawn_server = vm["spawn-server"].as<bool>();
  if (vm.count("server-binary")) {
    c->server_binary = vm["server-binary"].as<std::string>();
    if (!c->spawn_server) return Status::InvalidArgument("--server-binary needs --spawn-server");
  }
  const bool baseline = vm["baseline"].as<bool>();
  const bool no_baseline = vm["no-baseline"].as<bool>();
  if (baseline && no_baseline)
    return Status::InvalidArgument("--baseline and --no-baseline conflict");
  c->baseline = baseline || (c->spawn_server && !no_baseline);
  c->producers = vm["producers"].as<int>();
  if (c->producers < 1 || c->producers > 256) {
    return Status::InvalidArgument("--producers must be between 1 and 256");
  }
  c->batch = vm["batch"].as<int64_t>();
  if (c->batch < 1 || c->batch > kMaxBatchPoints) {
    return Status::InvalidArgument("--batch must be between 1 and " +
                                   std::to_string(kMaxBatchPoints));
  }
  c->window = vm["window"].as<int64_t>();
  if (c->window < 1 || c->window > 65536) {
    return Status::InvalidArgument("--window must be between 1 and 65536");
  }
  c->seconds = vm["seconds"].as<double>();
  if (!(c->seconds >= 0 && c->seconds <= 86400)) {
    return Status::InvalidArgument("--seconds must be between 0 and 86400");
  }
  c->idle_seconds = vm["idle-seconds"].as<double>();
  if (!(c->idle_seconds >= 0 && c->idle_seconds <= 86400)) {
    return Status::InvalidArgument("--idle-seconds must be between 0 and 86400");
  }
  c->query_rate = vm["query-rate"].as<double>();
  if (!(c->query_rate > 0 && c->query_rate <= 1e6)) {
    return Status::InvalidArgument("--query-rate must be > 0 and at most 1000000");
  }
  const int64_t points = vm["points"].as<int64_t>();
  if (points < 0) return Status::InvalidArgument("--points must be >= 0");
  c->points = static_cast<uint64_t>(points);
  const int64_t series_count = vm["series-count"].as<int64_t>();
  if (series_count < 0 || series_count > 100'000'000) {
    return Status::InvalidArgument("--series-count must be between 0 and 100000000");
  }
  c->series_count = static_cast<uint64_t>(series_count);
  if (c->series_count > 0 && !c->spawn_server) {
    return Status::InvalidArgument(
        "--series-count needs --spawn-server (it reads the server's RSS)");
  }
  return Status::Ok();
}

int RunBench(const BenchConfig& c, std::ostream& out, std::ostream& err) {
  const auto fail = [&](const std::string& message) {
    err << "gradctl bench: " << message << '\n';
    return kExitFailure;
  };
  const BatchTemplate batch = MakeBatchTemplate(static_cast<uint64_t>(c.batch));
  if (Status s = VerifyTemplate(batch); !s.ok()) return fail(s.message());
  Report r;

  SpawnedServer spawned;
  if (c.spawn_server) {
    if (Status s = FindServerBinary(c, &r.server_binary); !s.ok()) return fail(s.message());
    if (Status s = spawned.Start(r.server_binary, &r.server); !s.ok()) return fail(s.message());
    r.server_pid = spawned.pid();
    r.have_stats = true;
  } else {
    r.server = c.server;
  }
  protocol::Endpoint endpoint;
  if (Status s = protocol::ParseEndpoint(r.server, &endpoint); !s.ok()) {
    return fail("--server " + r.server + ": " + s.message());
  }
  // Any failure from here on: what the server said, when it was spawned.
  const auto fail_run = [&](const Status& s) {
    std::string message = s.message();
    if (c.spawn_server) {
      std::string problem;
      spawned.Stop(&problem);
      if (!problem.empty()) message += "\n" + problem;
      const std::string tail = spawned.StderrTail();
      if (!tail.empty()) message += "\nthe server's stderr:\n" + tail;
    }
    return fail(message);
  };
  const std::string run_id = "gradctl-bench-" + util::RandomHex64();
  ProducerPlan plan;
  plan.batch = &batch;
  plan.series = c.series;
  plan.window = static_cast<uint64_t>(c.window);
  plan.connect = c.connect;

  // Baselines: the discard server first, alone; the echo server is probed
  // at the same ticks as the queries, idle and under ingest.
  std::optional<EchoProcess> echo_server;
  Connection echo;
  if (c.baseline) {
    r.baseline_ran = true;
    DiscardServer discard(c.producers);
    protocol::Endpoint discard_endpoint;
    if (Status s = discard.Start(&discard_endpoint); !s.ok()) return fail_run(s);
    ProducerPlan discard_plan = plan;
    discard_plan.expect_acks = false;
    discard_plan.connect.token.clear();  // the discard server never answers a Hello
    r.discard = RunProducers(discard_endpoint, c.producers, discard_plan,
                             c.seconds > 0 ? c.seconds : 1.0, run_id + "-discard", nullptr);
    discard.Join();
    r.discard_bytes_received = discard.bytes_received();
    if (!r.discard.status.ok()) return fail_run(r.discard.status);

    echo_server.emplace();
    protocol::Endpoint echo_endpoint;
    if (Status s = echo_server->Start(&echo_endpoint); !s.ok()) return fail_run(s);
    client::ConnectOptions echo_options;
    echo_options.tcp_congestion = c.connect.tcp_congestion;
    if (Status s = echo.Connect(echo_endpoint, echo_options); !s.ok()) return fail_run(s);
  }

  // Idle queries. The query series is only made when queries will run (a
  // series-count run alone creates exactly the series it counts).
  Connection queries;
  const bool query_series = c.idle_seconds > 0 || c.seconds > 0;
  if (query_series) {
    // The series is made on a connection of its own: the query connection
    // stays a pure query client (gradientd moves a connection that ingests
    // to an ingest thread).
    Connection setup;
    if (Status s = setup.Connect(endpoint, plan.connect); !s.ok()) return fail_run(s);
    if (Status s = EnsureSeries(&setup, c.series, batch, run_id + "-setup"); !s.ok()) {
      return fail_run(s);
    }
    setup.Close();
    if (Status s = queries.Connect(endpoint, plan.connect); !s.ok()) return fail_run(s);
  }
  RoundTripPlan rt;
  rt.connection = &queries;
  rt.series = c.series;
  rt.rate = c.query_rate;
  rt.echo = c.baseline ? &echo : nullptr;
  if (c.idle_seconds > 0 || c.baseline) {
    // Without an idle phase, the echo baseline still runs (for a second).
    if (c.idle_seconds <= 0) rt.connection = nullptr;
    rt.end = Clock::now() + FromSeconds(c.idle_seconds > 0 ? c.idle_seconds : 1.0);
    if (Status s = RunRoundTrips(rt, &r.idle, &r.echo); !s.ok()) return fail_run(s);
    r.idle_ran = c.idle_seconds > 0;
    rt.connection = &queries;
  }

  // Ingest, with queries alongside.
  if (r.have_stats) {
    if (Status s = spawned.Stats(&r.before_ingest); !s.ok()) return fail_run(s);
  }
  if (c.seconds > 0) {
    r.ingest_ran = r.loaded_ran = true;
    std::atomic<bool> ingest_done{false};
    Status query_status;
    rt.end = Clock::now() + FromSeconds(c.seconds);
    rt.stop = &ingest_done;
    std::thread query_thread([&] { query_status = RunRoundTrips(rt, &r.loaded, &r.loaded_echo); });
    uint64_t next_checkpoint = 1'000'000;
    ProcessStats sample;
    Clock::time_point window_start = Clock::now();
    uint64_t window_points = 0;
    // The ingest rate of each window, and the server's RSS when the points
    // acknowledged pass each power of ten.
    const std::function<void(uint64_t)> monitor = [&](uint64_t points) {
      if (const Clock::time_point now = Clock::now(); now - window_start >= kRateWindow) {
        const double seconds = std::chrono::duration<double>(now - window_start).count();
        r.window_rates.push_back(
            static_cast<int64_t>(static_cast<double>(points - window_points) / seconds));
        window_start = now;
        window_points = points;
      }
      if (!r.have_stats) return;
      while (points >= next_checkpoint) {
        if (spawned.Stats(&sample).ok()) {
          r.checkpoints.push_back({next_checkpoint, points, sample.rss_bytes});
        }
        next_checkpoint *= 10;
      }
    };
    plan.points_limit = c.points;
    const double cpu_before = CpuSecondsSelf();
    r.ingest = RunProducers(endpoint, c.producers, plan, c.seconds, run_id, monitor);
    std::sort(r.window_rates.begin(), r.window_rates.end());
    r.client_cpu_ingest = CpuSecondsSelf() - cpu_before;
    ingest_done.store(true);
    query_thread.join();
    if (!r.ingest.status.ok()) return fail_run(r.ingest.status);
    if (!query_status.ok()) return fail_run(query_status);
  }
  if (r.have_stats) {
    if (Status s = spawned.Stats(&r.after_ingest); !s.ok()) return fail_run(s);
    r.peak_rss = std::max(
        {r.after_ingest.peak_rss_bytes, r.after_ingest.rss_bytes, r.before_ingest.peak_rss_bytes});
    for (const RssCheckpoint& cp : r.checkpoints) r.peak_rss = std::max(r.peak_rss, cp.rss_bytes);
  }
  if (query_series) queries.Close();
  if (echo_server) {
    echo.Close();
    echo_server->Stop();
  }

  // Series.
  if (c.series_count > 0) {
    ProcessStats before, after;
    if (Status s = spawned.Stats(&before); !s.ok()) return fail_run(s);
    if (Status s = CreateSeries(endpoint, plan.connect, c.series + "-" + util::RandomHex64(),
                                c.series_count, &r.series_seconds);
        !s.ok()) {
      return fail_run(s);
    }
    if (Status s = spawned.Stats(&after); !s.ok()) return fail_run(s);
    r.series_count = c.series_count;
    r.series_rss_before = before.rss_bytes;
    r.series_rss_after = after.rss_bytes;
  }

  if (r.have_stats) {
    if (Status s = spawned.Stats(&r.at_end); !s.ok()) return fail_run(s);
    spawned.Stop(&r.stop_problem);
    if (!r.stop_problem.empty()) return fail_run(Status::Internal(r.stop_problem));
  }
  if (c.json) {
    PrintJson(c, r, out);
  } else {
    PrintReadable(c, r, out);
  }
  out.flush();
  return kExitOk;
}

}  // namespace gradientd::cli
