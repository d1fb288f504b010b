#include "client/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <span>

#include "protocol/error_codes.h"
#include "protocol/frame_codec.h"
#include "protocol/frame_reader.h"

namespace gradientd::client {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Replies are small, but a list of many series can be large.
constexpr std::size_t kMaxResponseBytes = 1u << 30;

using TlsStream = asio::ssl::stream<tcp::socket&>;

// OpenSSL's reason for an error of the SSL category, without the library
// name Asio appends; the verification result when that failed.
std::string TlsReason(const boost::system::error_code& ec, TlsStream* stream) {
  const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
  std::string text = reason != nullptr ? reason : ec.message();
  if (stream != nullptr) {
    const long verify = SSL_get_verify_result(stream->native_handle());
    if (verify != X509_V_OK) {
      text += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
  }
  if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER) {
    text += " (is the server serving TLS?)";
  }
  return text;
}

Status Broken(const std::string& server, const boost::system::error_code& ec) {
  if (ec == asio::error::eof) {
    return Status::Unavailable("connection to " + server + " closed by the server");
  }
  if (ec == asio::ssl::error::stream_truncated) {
    return Status::Unavailable("connection to " + server +
                               " closed by the server (without TLS close_notify)");
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    return Status::FailedPrecondition("TLS error on the connection to " + server + ": " +
                                      TlsReason(ec, nullptr));
  }
  return Status::Unavailable("connection to " + server + " failed: " + ec.message());
}

// SSL_set_tlsext_host_name, without the macro's old-style cast.
bool SetServerName(SSL* ssl, const std::string& host) {
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(host.c_str())) == 1;
}

// Connects the socket to one of `endpoints`, within `timeout` when above
// zero (the io_context runs only here, until the connect completes).
boost::system::error_code ConnectSocket(asio::io_context& io, tcp::socket& socket,
                                        const tcp::resolver::results_type& endpoints,
                                        std::chrono::nanoseconds timeout) {
  boost::system::error_code ec;
  if (timeout.count() <= 0) {
    asio::connect(socket, endpoints, ec);
    return ec;
  }
  bool done = false;
  asio::async_connect(socket, endpoints,
                      [&](const boost::system::error_code& e, const tcp::endpoint&) {
                        ec = e;
                        done = true;
                      });
  io.run_for(timeout);
  if (!done) {
    socket.close(ec);  // the connect completes at once, aborted
    io.restart();
    io.run();
    ec = asio::error::timed_out;
  }
  io.restart();
  return ec;
}

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct Client::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  std::shared_ptr<asio::ssl::context> tls_context;  // outlives tls
  std::unique_ptr<TlsStream> tls;                   // over socket; null for plaintext

  template <typename ConstBuffers>
  void WriteAll(const ConstBuffers& buffers, boost::system::error_code& ec) {
    if (tls) {
      asio::write(*tls, buffers, ec);
    } else {
      asio::write(socket, buffers, ec);
    }
  }
  std::size_t ReadSome(asio::mutable_buffer buffer, boost::system::error_code& ec) {
    return tls ? tls->read_some(buffer, ec) : socket.read_some(buffer, ec);
  }
  std::string out;  // framed requests not yet written
  protocol::FrameReader in{kMaxResponseBytes};
};

Status ResponseStatus(const v1::Response& response) {
  if (!response.has_error()) return Status::Ok();
  return Status(protocol::FromWireCode(response.error().code()),
                v1::Error::Code_Name(response.error().code()) + ": " + response.error().message());
}

Client::Client(std::unique_ptr<Impl> impl, std::string server)
    : impl_(std::move(impl)), server_(std::move(server)) {}

Client::~Client() = default;

Status Client::Connect(std::string_view server, std::unique_ptr<Client>* client) {
  return Connect(server, ConnectOptions(), client);
}

Status Client::Connect(std::string_view server, const ConnectOptions& options,
                       std::unique_ptr<Client>* client) {
  Endpoint endpoint;
  if (Status s = ParseEndpoint(server, &endpoint); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  const std::string name = std::string(server);
  boost::system::error_code ec;
  tcp::resolver resolver(impl->io);
  const auto endpoints = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
  if (ec) return Status::Unavailable("cannot resolve " + name + ": " + ec.message());
  ec = ConnectSocket(impl->io, impl->socket, endpoints, options.connect_timeout);
  if (ec) return Status::Unavailable("cannot connect to " + name + ": " + ec.message());
  impl->socket.set_option(tcp::no_delay(true), ec);
  if (!options.tcp_congestion.empty()) {
    if (Status s = SetTcpCongestion(impl->socket.native_handle(), options.tcp_congestion);
        !s.ok()) {
      return s;
    }
  }
  if (options.tls) {
    impl->tls_context = options.tls;
    impl->tls = std::make_unique<TlsStream>(impl->socket, *impl->tls_context);
    SSL* ssl = impl->tls->native_handle();
    // The certificate must name the host we asked for: a DNS name (also sent
    // as SNI, for servers with several certificates) or an IP address.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const bool ok = IsIpAddress(endpoint.host)
                        ? X509_VERIFY_PARAM_set1_ip_asc(param, endpoint.host.c_str()) == 1
                        : X509_VERIFY_PARAM_set1_host(param, endpoint.host.c_str(), 0) == 1 &&
                              SetServerName(ssl, endpoint.host);
    if (!ok) return Status::InvalidArgument("cannot verify TLS for host name " + endpoint.host);
    impl->tls->handshake(TlsStream::client, ec);
    if (ec) {
      const std::string failed = "TLS handshake with " + name + " failed: ";
      if (ec.category() == asio::error::get_ssl_category()) {
        return Status::FailedPrecondition(failed + TlsReason(ec, impl->tls.get()));
      }
      return Status::Unavailable(failed +
                                 (ec == asio::error::eof ? "closed by the server" : ec.message()));
    }
  }
  std::unique_ptr<Client> connected(new Client(std::move(impl), name));
  if (!options.token.empty()) {
    if (Status s = connected->Hello(options.token); !s.ok()) return s;
  }
  *client = std::move(connected);
  return Status::Ok();
}

Status SetTcpCongestion(int fd, const std::string& name) {
  if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(),
                 static_cast<socklen_t>(name.size())) == 0) {
    return Status::Ok();
  }
  const int error = errno;
  std::string why = std::strerror(error);
  if (error == ENOENT) {
    why = "this kernel has no such algorithm (see net.ipv4.tcp_available_congestion_control)";
  } else if (error == EPERM) {
    why = "only privileged programs may choose it (see net.ipv4.tcp_allowed_congestion_control)";
  }
  return Status::FailedPrecondition("cannot use TCP congestion control '" + name + "': " + why);
}

std::string TcpCongestion(int fd) {
  char name[32] = {};
  socklen_t size = sizeof name - 1;
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &size) != 0) return "";
  return std::string(name, strnlen(name, size));
}

Status Client::Hello(std::string_view token, v1::HelloReply* reply) {
  v1::Request request;
  request.mutable_hello()->set_token(std::string(token));
  v1::Response response;
  if (Status s = Call(request, &response); !s.ok()) return s;
  if (response.has_error()) {
    const Status refused = ResponseStatus(response);
    if (refused.code() == StatusCode::kUnauthenticated ||
        refused.code() == StatusCode::kPermissionDenied) {
      return Status(refused.code(), server_ + " refused the token: " + refused.message());
    }
    // E.g. INVALID_ARGUMENT from a gradientd that predates Hello: not a
    // problem with the address, nor with the token.
    return Status::FailedPrecondition(server_ + " did not accept the Hello (a gradientd without " +
                                      "access control?): " + refused.message());
  }
  if (!response.has_hello()) {
    return Status::Internal("unexpected reply to Hello from " + server_ +
                            " (a gradientd without access control?)");
  }
  if (reply != nullptr) *reply = response.hello();
  return Status::Ok();
}

Status Client::Send(v1::Request& request) {
  request.set_id(sent_ + 1);
  impl_->out.clear();
  protocol::AppendFrame(request, &impl_->out);
  boost::system::error_code ec;
  impl_->WriteAll(asio::buffer(impl_->out), ec);
  if (ec) return Broken(server_, ec);
  ++sent_;
  return Status::Ok();
}

Status Client::Receive(v1::Response* response) {
  Impl& io = *impl_;
  while (true) {
    std::span<const uint8_t> body;
    const protocol::FrameHeader h = io.in.Next(&body);
    if (h.kind == protocol::FrameHeader::Kind::kError) {
      return Status::Internal("bad response frame from " + server_ + ": " + h.error);
    }
    if (h.kind == protocol::FrameHeader::Kind::kFrame) {
      if (!response->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
        return Status::Internal("cannot decode a response from " + server_);
      }
      ++received_;
      return Status::Ok();
    }
    const std::span<uint8_t> space = io.in.Space();
    boost::system::error_code ec;
    const std::size_t n = io.ReadSome(asio::buffer(space.data(), space.size()), ec);
    if (ec) return Broken(server_, ec);
    io.in.Commit(n);
  }
}

Status Client::Call(v1::Request& request, v1::Response* response) {
  if (Status s = Send(request); !s.ok()) return s;
  // Responses to earlier pipelined requests come first.
  while (true) {
    if (Status s = Receive(response); !s.ok()) return s;
    if (in_flight() == 0) break;
  }
  if (response->id() != request.id() && !response->has_error()) {
    return Status::Internal("response id " + std::to_string(response->id()) +
                            " does not match request id " + std::to_string(request.id()));
  }
  return Status::Ok();
}

}  // namespace gradientd::client
