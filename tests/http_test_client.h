// A blocking HTTP/1.1 client for the listener's tests, on Beast: one
// connection (plaintext, or TLS trusting a CA file), requests and
// responses in order. Each operation is Beast's asynchronous one run to its
// end on the client's own io_context, so tcp_stream's expiry bounds it
// (Beast's synchronous operations have no timeout): a test fails instead of
// hanging. Errors are values. Beast's operations are instantiated once, in
// http_test_client.cc, not in every test that uses the client.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace gradientd::testing {

class HttpTestClient {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  static constexpr auto kPatience = std::chrono::seconds(60);  // a bound, not a measurement

  // Connects to HOST:PORT; with ca_file, over TLS trusting it.
  explicit HttpTestClient(const std::string& address, const std::string& ca_file = "");
  ~HttpTestClient();
  HttpTestClient(const HttpTestClient&) = delete;
  HttpTestClient& operator=(const HttpTestClient&) = delete;

  bool connected() const { return !error_; }
  boost::system::error_code error() const { return error_; }

  static Request Get(const std::string& target, const std::string& token = "");

  // Sends raw bytes (pipelined requests, a malformed or oversized one).
  boost::system::error_code WriteRaw(const std::string& bytes);
  boost::system::error_code Write(Request request);

  // The next response; nullopt (with *ec) if the connection ended or failed.
  std::optional<Response> Read(boost::system::error_code* ec = nullptr);

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
  boost::system::error_code AwaitClose(std::string* bytes = nullptr);

  void Close();

 private:
  struct Connection;
  std::unique_ptr<Connection> connection_;
  boost::system::error_code error_;
};

}  // namespace gradientd::testing
