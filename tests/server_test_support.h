// What the server tests share: a ServerTest fixture (a real server on
// port 0 over a Service), raw-socket helpers with and without a time bound,
// and a FakeServer over a fake handler and change log, for promises that
// need a misbehaving log or handler.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "auth/authenticator.h"
#include "client/client.h"
#include "client_calls.h"
#include "core/point_stats.h"
#include "protocol/frame_codec.h"
#include "server/server.h"
#include "service/change_log.h"
#include "service/series_store.h"
#include "service/service.h"

namespace gradientd {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.max_frame_bytes = 1 << 20;
    Configure(&options);
    server_ = std::make_unique<server::Server>(options, service_, nullptr, authenticator_.get());
    ASSERT_TRUE(server_->Start().ok());
    address_ = server::FormatEndpoint(server_->local_endpoint());
    runner_ = std::thread([this] { server_->Run(); });
  }

  void TearDown() override {
    server_->Stop();
    runner_.join();
  }

  // Tests with other limits (or an authenticator_) override this.
  virtual void Configure(server::ServerOptions*) {}

  std::unique_ptr<client::Client> Connect() { return testing::ConnectClient(address_); }

  v1::Response Call(client::Client& c, v1::Request request) {
    return testing::CallClient(c, std::move(request));
  }

  v1::Response Fit(client::Client& c, const std::string& series) {
    v1::Request r;
    r.mutable_fit()->set_series(series);
    return Call(c, r);
  }

  // A raw socket, for bytes no well-behaved client would send.
  tcp::socket RawConnect() {
    tcp::socket socket(raw_io_);
    socket.connect(server_->local_endpoint());
    return socket;
  }

  service::SeriesStore store_;
  service::Service service_{store_};
  std::unique_ptr<auth::Authenticator> authenticator_;  // null: an open server
  std::unique_ptr<server::Server> server_;
  std::string address_;
  std::thread runner_;
  asio::io_context raw_io_;
};

inline bool ClosedByServer(tcp::socket& socket) {
  uint8_t byte;
  boost::system::error_code ec;
  asio::read(socket, asio::buffer(&byte, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

// --- Bounded waits, for promises whose breaking would otherwise hang. ---

using SteadyClock = std::chrono::steady_clock;

// Reads one framed Response, giving up after `within`; false at end of
// stream, on error or on giving up.
inline bool ReadResponseWithin(tcp::socket& socket, v1::Response* response,
                               std::chrono::milliseconds within) {
  const auto deadline = SteadyClock::now() + within;
  std::vector<uint8_t> buffer;
  while (true) {
    const auto h = protocol::DecodeFrameHeader(buffer, 1 << 20);
    if (h.kind == protocol::FrameHeader::Kind::kFrame) {
      return response->ParseFromArray(buffer.data() + h.header_bytes,
                                      static_cast<int>(h.body_bytes));
    }
    if (h.kind == protocol::FrameHeader::Kind::kError) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    // Never past this frame: what follows is the next call's.
    std::vector<uint8_t> piece(std::max<std::size_t>(h.missing, 1));
    const ssize_t n = ::recv(socket.native_handle(), piece.data(), piece.size(), 0);
    if (n <= 0) return false;
    buffer.insert(buffer.end(), piece.begin(), piece.begin() + n);
  }
}

// Reads one framed Response from a raw socket; false at end of stream (or
// after a minute, only to turn a hang into a failure).
inline bool ReadResponse(tcp::socket& socket, v1::Response* response) {
  return ReadResponseWithin(socket, response, std::chrono::minutes(1));
}

// Whether the server closes the socket (end of stream or reset) within
// `within`, discarding any responses before that.
inline bool ClosedWithin(tcp::socket& socket, std::chrono::milliseconds within) {
  const auto deadline = SteadyClock::now() + within;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char bytes[4096];
    const ssize_t n = ::recv(socket.native_handle(), bytes, sizeof bytes, 0);
    if (n <= 0) return true;
  }
}

// Calls `done` on a thread and reports whether it returned within `within`;
// if not, the thread is left to finish (joined by the returned guard).
class Joiner {
 public:
  explicit Joiner(std::thread& t) : thread_(t) {}
  ~Joiner() {
    if (thread_.joinable()) thread_.join();
  }
  bool JoinWithin(std::chrono::milliseconds within, const std::atomic<bool>& finished) {
    const auto deadline = SteadyClock::now() + within;
    while (!finished && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!finished) return false;
    thread_.join();
    return true;
  }

 private:
  std::thread& thread_;
};

inline std::string Frame(const v1::Request& request) {
  std::string frame;
  protocol::AppendFrame(request, &frame);
  return frame;
}

inline v1::Request IngestRequest(uint64_t id, double x) {
  v1::Request r;
  r.set_id(id);
  r.mutable_ingest()->set_series("s");
  r.mutable_ingest()->add_x(x);
  r.mutable_ingest()->add_y(x);
  return r;
}

inline v1::Request FitRequest(uint64_t id) {
  v1::Request r;
  r.set_id(id);
  r.mutable_fit()->set_series("s");
  return r;
}

// A change log whose records up to durable_upto are durable and whose later
// ones failed with `error`; while held, OnDurable for a later one does not
// answer until Release.
class FakeChangeLog : public service::ChangeLog {
 public:
  FakeChangeLog(uint64_t durable_upto, Status error, bool hold = false)
      : durable_upto_(durable_upto), error_(std::move(error)), hold_(hold) {}

  Status Append(const v1::JournalRecord&, uint64_t*) override {
    return Status::Internal("unused by the server");
  }
  void OnDurable(uint64_t token, std::function<void(const Status&)> done) override {
    {
      std::lock_guard lock(mu_);
      if (hold_ && token > durable_upto_) {
        held_.push_back(std::move(done));
        return;
      }
    }
    done(Outcome(token));
  }
  Status Outcome(uint64_t token) override { return token <= durable_upto_ ? Status::Ok() : error_; }
  std::size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  // Answers every held wait with the error.
  void Release() {
    std::vector<std::function<void(const Status&)>> held;
    {
      std::lock_guard lock(mu_);
      hold_ = false;
      held.swap(held_);
    }
    for (auto& done : held) done(error_);
  }

 private:
  const uint64_t durable_upto_;
  const Status error_;
  std::mutex mu_;
  bool hold_;
  std::vector<std::function<void(const Status&)>> held_;
};

// Acknowledges each ingest with the next token (1, 2, ...) and answers
// other requests at once; `slow_step` makes each step take that long (as a
// step bounded by the Service's time limit may) and `throw_on_list` makes a
// list throw, like protobuf serialising a reply over 2 GiB.
class FakeHandler : public protocol::RequestHandler {
 public:
  uint64_t Handle(const v1::Request& request, v1::Response* response) override {
    if (request.has_ingest()) {
      response->mutable_ack()->set_accepted(static_cast<uint64_t>(request.ingest().x_size()));
      return ++tokens_;
    }
    if (request.has_step()) {
      ++steps_started;
      std::this_thread::sleep_for(slow_step);
      response->mutable_step()->set_iterations(1);
      ++steps_done;
      return 0;
    }
    if (request.has_list()) {
      if (throw_on_list) throw std::length_error("reply too large to serialise");
      response->mutable_series_list();
      return 0;
    }
    response->mutable_fit();
    return 0;
  }

  std::chrono::milliseconds slow_step{0};
  bool throw_on_list = false;
  std::atomic<int> steps_started{0};
  std::atomic<int> steps_done{0};

 private:
  std::atomic<uint64_t> tokens_{0};
};

// A server around a FakeHandler (and, when given, a change log), started
// per test.
class FakeServer {
 public:
  FakeServer(server::ServerOptions options, protocol::RequestHandler& handler,
             service::ChangeLog* log = nullptr)
      : server_(std::move(options), handler, log) {
    const Status s = server_.Start();
    EXPECT_TRUE(s.ok()) << s.message();
    runner_ = std::thread([this] {
      server_.Run();
      finished_ = true;
    });
  }
  ~FakeServer() {
    server_.Stop();
    if (runner_.joinable()) runner_.join();
  }
  // Stops, and says whether Run returned within `within`.
  bool StopsWithin(std::chrono::milliseconds within) {
    server_.Stop();
    return Joiner(runner_).JoinWithin(within, finished_);
  }
  // The socket may outlive the FakeServer (a test may reset it first), so
  // it is on an io_context that lives as long as the process.
  tcp::socket RawConnect() {
    static asio::io_context io;
    tcp::socket socket(io);
    socket.connect(server_.local_endpoint());
    return socket;
  }
  std::string address() const { return server::FormatEndpoint(server_.local_endpoint()); }
  tcp::endpoint endpoint() const { return server_.local_endpoint(); }

 private:
  server::Server server_;
  std::atomic<bool> finished_{false};
  std::thread runner_;
};

inline server::ServerOptions FakeServerOptions() {
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  return options;
}

constexpr auto kHangBound = std::chrono::seconds(20);  // only to turn a hang into a failure

}  // namespace
}  // namespace gradientd
