#include "http_test_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "protocol/endpoint.h"

namespace gradientd::testing {

struct HttpTestClient::Connection {
  Connection() : stream(io) {}

  void RunToEnd() {
    io.restart();
    io.run();
  }

  boost::asio::io_context io;
  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;
  std::unique_ptr<boost::asio::ssl::context> tls_context;
  std::unique_ptr<boost::asio::ssl::stream<boost::beast::tcp_stream&>> tls;
};

HttpTestClient::HttpTestClient(const std::string& address, const std::string& ca_file)
    : connection_(std::make_unique<Connection>()) {
  Connection& c = *connection_;
  protocol::Endpoint where;
  if (!protocol::ParseEndpoint(address, &where).ok()) {
    error_ = boost::asio::error::invalid_argument;
    return;
  }
  boost::asio::ip::tcp::resolver resolver(c.io);
  const auto endpoints = resolver.resolve(where.host, std::to_string(where.port), error_);
  if (error_) return;
  c.stream.expires_after(kPatience);
  c.stream.async_connect(endpoints, [this](auto ec, const auto&) { error_ = ec; });
  c.RunToEnd();
  if (error_ || ca_file.empty()) return;
  c.tls_context =
      std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
  c.tls_context->load_verify_file(ca_file, error_);
  c.tls_context->set_verify_mode(boost::asio::ssl::verify_peer);
  if (error_) return;
  c.tls = std::make_unique<boost::asio::ssl::stream<boost::beast::tcp_stream&>>(c.stream,
                                                                                *c.tls_context);
  c.stream.expires_after(kPatience);
  c.tls->async_handshake(boost::asio::ssl::stream_base::client, [this](auto ec) { error_ = ec; });
  c.RunToEnd();
}

HttpTestClient::~HttpTestClient() = default;

HttpTestClient::Request HttpTestClient::Get(const std::string& target, const std::string& token) {
  Request request(boost::beast::http::verb::get, target, 11);
  request.set(boost::beast::http::field::host, "127.0.0.1");
  if (!token.empty()) request.set(boost::beast::http::field::authorization, "Bearer " + token);
  return request;
}

boost::system::error_code HttpTestClient::WriteRaw(const std::string& bytes) {
  Connection& c = *connection_;
  boost::system::error_code ec;
  auto done = [&ec](auto e, std::size_t) { ec = e; };
  c.stream.expires_after(kPatience);
  if (c.tls) {
    boost::asio::async_write(*c.tls, boost::asio::buffer(bytes), done);
  } else {
    boost::asio::async_write(c.stream, boost::asio::buffer(bytes), done);
  }
  c.RunToEnd();
  return ec;
}

boost::system::error_code HttpTestClient::Write(Request request) {
  Connection& c = *connection_;
  request.prepare_payload();
  boost::system::error_code ec;
  auto done = [&ec](auto e, std::size_t) { ec = e; };
  c.stream.expires_after(kPatience);
  if (c.tls) {
    boost::beast::http::async_write(*c.tls, request, done);
  } else {
    boost::beast::http::async_write(c.stream, request, done);
  }
  c.RunToEnd();
  return ec;
}

std::optional<HttpTestClient::Response> HttpTestClient::Read(boost::system::error_code* ec) {
  Connection& c = *connection_;
  boost::system::error_code e;
  Response response;
  auto done = [&e](auto error, std::size_t) { e = error; };
  c.stream.expires_after(kPatience);
  if (c.tls) {
    boost::beast::http::async_read(*c.tls, c.buffer, response, done);
  } else {
    boost::beast::http::async_read(c.stream, c.buffer, response, done);
  }
  c.RunToEnd();
  if (ec) *ec = e;
  if (e) return std::nullopt;
  return response;
}

boost::system::error_code HttpTestClient::AwaitClose(std::string* bytes) {
  Connection& c = *connection_;
  char byte;
  boost::system::error_code ec;
  auto done = [&ec](auto e, std::size_t) { ec = e; };
  c.stream.expires_after(kPatience);
  while (!ec) {
    if (c.tls) {
      c.tls->async_read_some(boost::asio::buffer(&byte, 1), done);
    } else {
      c.stream.async_read_some(boost::asio::buffer(&byte, 1), done);
    }
    c.RunToEnd();
    if (!ec && bytes) bytes->push_back(byte);
  }
  return ec;
}

void HttpTestClient::Close() {
  Connection& c = *connection_;
  boost::system::error_code ignored;
  c.stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  c.stream.close();
}

}  // namespace gradientd::testing
