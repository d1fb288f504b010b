#include "cli/bench/raw_connection.h"

#include <boost/asio/connect.hpp>
#include <cstddef>

#include "cli/output.h"
#include "protocol/frame_codec.h"

namespace gradientd::cli::bench {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::size_t kMaxResponseBytes = std::size_t{64} << 20;

}  // namespace

RawConnection::RawConnection() : reader_(kMaxResponseBytes) {}

Status RawConnection::Connect(const protocol::Endpoint& endpoint,
                              const client::ConnectOptions& options) {
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

Status RawConnection::Open(const protocol::Endpoint& endpoint, const std::string& tcp_congestion) {
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

std::string RawConnection::congestion() { return client::TcpCongestion(socket_.native_handle()); }

Status RawConnection::WaitFrame(std::span<const uint8_t>* body) {
  bool got = false;
  return NextFrame(true, body, &got);
}

Status RawConnection::PollFrame(std::span<const uint8_t>* body, bool* got) {
  return NextFrame(false, body, got);
}

Status RawConnection::NextFrame(bool wait, std::span<const uint8_t>* body, bool* got) {
  *got = false;
  while (true) {
    const protocol::FrameHeader h = reader_.Next(body);
    if (h.kind == protocol::FrameHeader::Kind::kError) {
      return Status::Internal("bad frame from " + name_ + ": " + h.error);
    }
    if (h.kind == protocol::FrameHeader::Kind::kFrame) {
      *got = true;
      return Status::Ok();
    }
    boost::system::error_code ec;
    if (!wait && socket_.available(ec) == 0) return ec ? Broken(ec) : Status::Ok();
    const std::span<uint8_t> space = reader_.Space();
    const std::size_t n = socket_.read_some(asio::buffer(space.data(), space.size()), ec);
    if (ec) return Broken(ec);
    reader_.Commit(n);
  }
}

void RawConnection::Close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

Status RawConnection::Broken(const boost::system::error_code& ec) const {
  if (ec == asio::error::eof) return Status::Unavailable("connection to " + name_ + " closed");
  return Status::Unavailable("connection to " + name_ + " failed: " + ec.message());
}

Status CheckResponse(std::span<const uint8_t> body, v1::Response::BodyCase expected,
                     v1::Response* response) {
  if (!response->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::Internal("cannot decode a response");
  }
  if (Status s = client::ResponseStatus(*response); !s.ok()) {
    return Status(s.code(), "server error " + s.message());
  }
  if (response->body_case() != expected) {
    return Status::Internal("unexpected reply: " + ToJson(*response));
  }
  return Status::Ok();
}

}  // namespace gradientd::cli::bench
