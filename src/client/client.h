// Client: a small blocking client for gradientd. Requests may be pipelined:
// Send any number, then Receive their responses in the same order.
//
// Not thread-safe: one thread per Client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "client/tls.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/endpoint.h"

namespace gradientd::client {

inline constexpr std::string_view kDefaultServer = "127.0.0.1:7878";

using protocol::Endpoint;
using protocol::kDefaultPort;
using protocol::ParseEndpoint;

// How to connect.
struct ConnectOptions {
  // TLS with this context (see client/tls.h: MakeClientTlsContext); null:
  // plaintext. The server's certificate must be valid for the HOST of
  // HOST:PORT (a DNS name, sent as SNI, or an IP address).
  std::shared_ptr<boost::asio::ssl::context> tls;
  // Not empty: authenticate with a Hello carrying this token right after
  // connecting (see Client::Hello).
  std::string token;
  // Not empty: the connection's TCP congestion control (Linux
  // TCP_CONGESTION, e.g. "reno"); empty: the system's default.
  std::string tcp_congestion{};
  // Above zero: give up a TCP connect after this long (kUnavailable, "timed
  // out"); zero: the system's limit.
  std::chrono::nanoseconds connect_timeout{0};
};

// Sets the TCP congestion control of the connected socket `fd`. Fails with
// kFailedPrecondition, naming the algorithm and why the kernel refused it.
Status SetTcpCongestion(int fd, const std::string& name);
// The TCP congestion control of socket `fd` ("" if the kernel does not say).
std::string TcpCongestion(int fd);

// The error a response carries as a Status (OK when it carries none).
Status ResponseStatus(const v1::Response& response);

class Client {
 public:
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects to "HOST:PORT". Fails with kUnavailable ("cannot connect to
  // HOST:PORT: Connection refused") or kInvalidArgument for a bad address.
  static Status Connect(std::string_view server, std::unique_ptr<Client>* client);
  // The same with options. With TLS, a failed handshake is kUnavailable when
  // the connection broke, kFailedPrecondition when TLS itself failed
  // ("TLS handshake with HOST:PORT failed: certificate verify failed
  // (unable to get local issuer certificate)"), which retrying will not fix.
  // A TLS error later on the connection (e.g. the server's alert that it
  // requires a client certificate, which TLS 1.3 sends after the handshake)
  // is kFailedPrecondition from Send or Receive too.
  // With a token, the server's refusal of it is the status
  // (kUnauthenticated or kPermissionDenied).
  static Status Connect(std::string_view server, const ConnectOptions& options,
                        std::unique_ptr<Client>* client);

  // Sends a Hello with `token` and waits for its reply (into `reply` when
  // given). The server's error (UNAUTHENTICATED) as a Status whose message
  // never contains the token. REQUIRES: in_flight() == 0.
  Status Hello(std::string_view token, v1::HelloReply* reply = nullptr);

  // Sends `request` without waiting for its response, after giving it the
  // next id (1, 2, ...). Returns kUnavailable if the connection broke.
  Status Send(v1::Request& request);

  // Waits for the next response. kUnavailable if the connection closed
  // first (the server's last Error response, if any, is returned before).
  Status Receive(v1::Response* response);

  // Send, then Receive; fails if the response does not carry the request's
  // id. Transport errors only: an Error response is returned as a response
  // (see ResponseStatus).
  Status Call(v1::Request& request, v1::Response* response);

  // Requests sent whose responses have not been received yet.
  uint64_t in_flight() const { return sent_ - received_; }

  const std::string& server() const { return server_; }

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl, std::string server);

  std::unique_ptr<Impl> impl_;
  std::string server_;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
};

}  // namespace gradientd::client
