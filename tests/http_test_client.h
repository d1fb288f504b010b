// A blocking HTTP/1.1 client for the listener's tests, on Beast: one
// connection (plaintext, or TLS trusting a CA file), requests and
// responses in order. Each operation is Beast's asynchronous one run to its
// end on the client's own io_context, so tcp_stream's expiry bounds it
// (Beast's synchronous operations have no timeout): a test fails instead of
// hanging. Errors are values.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "protocol/endpoint.h"

namespace gradientd::testing {

class HttpTestClient {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  static constexpr auto kPatience = std::chrono::seconds(60);  // a bound, not a measurement

  // Connects to HOST:PORT; with ca_file, over TLS trusting it.
  explicit HttpTestClient(const std::string& address, const std::string& ca_file = "")
      : stream_(io_) {
    protocol::Endpoint where;
    if (!protocol::ParseEndpoint(address, &where).ok()) {
      error_ = boost::asio::error::invalid_argument;
      return;
    }
    boost::asio::ip::tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(where.host, std::to_string(where.port), error_);
    if (error_) return;
    stream_.expires_after(kPatience);
    stream_.async_connect(endpoints, [this](auto ec, const auto&) { error_ = ec; });
    RunToEnd();
    if (error_ || ca_file.empty()) return;
    tls_context_ =
        std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    tls_context_->load_verify_file(ca_file, error_);
    tls_context_->set_verify_mode(boost::asio::ssl::verify_peer);
    if (error_) return;
    tls_ = std::make_unique<boost::asio::ssl::stream<boost::beast::tcp_stream&>>(stream_,
                                                                                 *tls_context_);
    stream_.expires_after(kPatience);
    tls_->async_handshake(boost::asio::ssl::stream_base::client, [this](auto ec) { error_ = ec; });
    RunToEnd();
  }

  bool connected() const { return !error_; }
  boost::system::error_code error() const { return error_; }

  static Request Get(const std::string& target, const std::string& token = "") {
    Request request(boost::beast::http::verb::get, target, 11);
    request.set(boost::beast::http::field::host, "127.0.0.1");
    if (!token.empty()) request.set(boost::beast::http::field::authorization, "Bearer " + token);
    return request;
  }

  // Sends raw bytes (pipelined requests, a malformed or oversized one).
  boost::system::error_code WriteRaw(const std::string& bytes) {
    boost::system::error_code ec;
    auto done = [&ec](auto e, std::size_t) { ec = e; };
    stream_.expires_after(kPatience);
    if (tls_) {
      boost::asio::async_write(*tls_, boost::asio::buffer(bytes), done);
    } else {
      boost::asio::async_write(stream_, boost::asio::buffer(bytes), done);
    }
    RunToEnd();
    return ec;
  }

  boost::system::error_code Write(Request request) {
    request.prepare_payload();
    boost::system::error_code ec;
    auto done = [&ec](auto e, std::size_t) { ec = e; };
    stream_.expires_after(kPatience);
    if (tls_) {
      boost::beast::http::async_write(*tls_, request, done);
    } else {
      boost::beast::http::async_write(stream_, request, done);
    }
    RunToEnd();
    return ec;
  }

  // The next response; nullopt (with *ec) if the connection ended or failed.
  std::optional<Response> Read(boost::system::error_code* ec = nullptr) {
    boost::system::error_code e;
    Response response;
    auto done = [&e](auto error, std::size_t) { e = error; };
    stream_.expires_after(kPatience);
    if (tls_) {
      boost::beast::http::async_read(*tls_, buffer_, response, done);
    } else {
      boost::beast::http::async_read(stream_, buffer_, response, done);
    }
    RunToEnd();
    if (ec) *ec = e;
    if (e) return std::nullopt;
    return response;
  }

  std::optional<Response> Call(Request request) {
    if (Write(std::move(request))) return std::nullopt;
    return Read();
  }
  std::optional<Response> Call(const std::string& target, const std::string& token = "") {
    return Call(Get(target, token));
  }

  // Reads until the server ends the connection; its error (end of stream,
  // a reset) or timeout if it stays open for kPatience. With `bytes`, what
  // was read is appended there.
  boost::system::error_code AwaitClose(std::string* bytes = nullptr) {
    char byte;
    boost::system::error_code ec;
    auto done = [&ec](auto e, std::size_t) { ec = e; };
    stream_.expires_after(kPatience);
    while (!ec) {
      if (tls_) {
        tls_->async_read_some(boost::asio::buffer(&byte, 1), done);
      } else {
        stream_.async_read_some(boost::asio::buffer(&byte, 1), done);
      }
      RunToEnd();
      if (!ec && bytes) bytes->push_back(byte);
    }
    return ec;
  }

  void Close() {
    boost::system::error_code ignored;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void RunToEnd() {
    io_.restart();
    io_.run();
  }

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  std::unique_ptr<boost::asio::ssl::stream<boost::beast::tcp_stream&>> tls_;
  boost::system::error_code error_;
};

}  // namespace gradientd::testing
