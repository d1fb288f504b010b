// Client: a small blocking client for gradientd. Requests may be pipelined:
// Send any number, then Receive their responses in the same order.
//
// Not thread-safe: one thread per Client.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/endpoint.h"

namespace gradientd::client {

inline constexpr std::string_view kDefaultServer = "127.0.0.1:7878";

using protocol::Endpoint;
using protocol::kDefaultPort;
using protocol::ParseEndpoint;

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

  // Connects, then, when `token` is not empty, authenticates with Hello:
  // the server's refusal comes back as its status (kUnauthenticated).
  static Status Connect(std::string_view server, std::string_view token,
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
