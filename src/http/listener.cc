#include "http/listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

#include "http/replies.h"
#include "protocol/endpoint.h"

namespace gradientd::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunk = 4096;

Response ErrorResponse(beast_http::status status, const std::string& message) {
  Response response;
  response.version(11);
  SetJsonError(Status::InvalidArgument(message), &response);
  response.result(status);
  response.prepare_payload();
  return response;
}

}  // namespace

struct Listener::Connection {
  Connection(tcp::socket socket, bool over_limit, std::size_t buffer_limit)
      : transport(std::move(socket)), refused(over_limit), buffer(buffer_limit) {}

  beast::tcp_stream transport;  // the socket, with Beast's timeouts
  const bool refused;           // over max_connections: each request is answered 503
  beast::flat_buffer buffer;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser;
};

Listener::Listener(ListenerOptions options, const Router& router, asio::any_io_executor executor,
                   asio::ssl::context* tls)
    : options_(std::move(options)),
      router_(router),
      executor_(executor),
      tls_(tls),
      acceptor_(executor) {}

Listener::~Listener() = default;

Status Listener::Start() {
  const std::string flag = "--http-listen " + options_.listen;
  protocol::Endpoint where;
  if (Status s = protocol::ParseEndpoint(options_.listen, &where); !s.ok()) {
    return Status::InvalidArgument("--http-listen: " + s.message());
  }
  boost::system::error_code ec;
  tcp::resolver resolver(executor_);
  const auto results =
      resolver.resolve(where.host, std::to_string(where.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument(flag + ": cannot resolve the address: " + ec.message());
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable(flag + ": cannot listen: " + ec.message() +
                               " (choose another port, or --http-listen off)");
  }
  asio::co_spawn(executor_, Accept(), asio::detached);
  return Status::Ok();
}

tcp::endpoint Listener::local_endpoint() const { return acceptor_.local_endpoint(); }

void Listener::Stop() {
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& connection : connections_) connection->transport.close();
}

asio::awaitable<void> Listener::Accept() {
  while (true) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {  // out of descriptors and the like: a moment for the others
      asio::steady_timer pause(executor_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    Admit(std::move(socket));
  }
}

void Listener::Admit(tcp::socket socket) {
  bool over_limit = false;
  if (stopping_) return;
  if (served_ < options_.max_connections) {
    ++served_;
  } else if (refusing_ < kRefusalAllowance) {
    ++refusing_;
    over_limit = true;
  } else {
    return;  // closed at once: too many refusals under way
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  const std::size_t buffer_limit = options_.max_header_bytes + options_.max_body_bytes + kReadChunk;
  auto connection = std::make_shared<Connection>(std::move(socket), over_limit, buffer_limit);
  connections_.push_back(connection);
  asio::co_spawn(executor_, Serve(connection),
                 [this, connection](std::exception_ptr) { Forget(connection); });
}

void Listener::Forget(const std::shared_ptr<Connection>& connection) {
  connection->transport.close();
  (connection->refused ? refusing_ : served_) -= 1;
  connections_.remove(connection);
}

asio::awaitable<void> Listener::Serve(std::shared_ptr<Connection> connection) {
  beast::tcp_stream& transport = connection->transport;
  if (tls_ == nullptr) {
    co_await Exchange(*connection, transport);
    boost::system::error_code ignored;
    transport.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return;
  }
  asio::ssl::stream<beast::tcp_stream&> stream(transport, *tls_);
  transport.expires_after(options_.request_timeout);
  auto [handshake] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
  if (handshake) co_return;
  co_await Exchange(*connection, stream);
  // close_notify, so the client can tell the end from a cut; bounded.
  transport.expires_after(options_.write_timeout);
  co_await stream.async_shutdown(use_tuple);
}

template <typename Stream>
asio::awaitable<void> Listener::Exchange(Connection& connection, Stream& stream) {
  while (!stopping_) {
    Response response;
    bool close = false;
    const Outcome outcome = co_await ReadRequest(connection, stream, &response);
    if (outcome == Outcome::kEnd) co_return;
    if (outcome == Outcome::kMalformed) {
      close = true;
    } else if (connection.refused) {
      response.version(connection.parser->get().version());
      SetJsonError(Status::ResourceExhausted("too many HTTP connections (the limit is " +
                                             std::to_string(options_.max_connections) + ")"),
                   &response);
      response.prepare_payload();
      close = true;
    } else {
      response = router_.Handle(connection.parser->get());  // with its Content-Length
      close = !response.keep_alive();
    }
    response.keep_alive(!close && !stopping_);
    connection.transport.expires_after(options_.write_timeout);
    auto [ec, written] = co_await beast_http::async_write(stream, response, use_tuple);
    if (ec || close) co_return;
  }
}

template <typename Stream>
asio::awaitable<Listener::Outcome> Listener::ReadRequest(Connection& connection, Stream& stream,
                                                         Response* error) {
  if (connection.buffer.size() == 0) {  // idle between requests
    connection.transport.expires_after(options_.idle_timeout);
    auto [ec, n] =
        co_await stream.async_read_some(connection.buffer.prepare(kReadChunk), use_tuple);
    if (ec) co_return Outcome::kEnd;
    connection.buffer.commit(n);
  }
  auto& parser = connection.parser.emplace();
  parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
  parser.body_limit(options_.max_body_bytes);
  connection.transport.expires_after(options_.request_timeout);
  auto [ec, n] = co_await beast_http::async_read(stream, connection.buffer, parser, use_tuple);
  if (!ec) co_return Outcome::kRequest;
  if (ec == beast_http::error::header_limit || ec == beast_http::error::buffer_overflow) {
    *error = ErrorResponse(
        beast_http::status::request_header_fields_too_large,
        "the request header is over " + std::to_string(options_.max_header_bytes) + " bytes");
  } else if (ec == beast_http::error::body_limit) {
    *error = ErrorResponse(beast_http::status::payload_too_large,
                           "the request body is over " + std::to_string(options_.max_body_bytes) +
                               " bytes (GET and HEAD need none)");
  } else if (ec.category() ==
                 beast_http::make_error_code(beast_http::error::bad_target).category() &&
             ec != beast_http::error::end_of_stream && ec != beast_http::error::partial_message) {
    *error = ErrorResponse(beast_http::status::bad_request, "malformed request: " + ec.message());
  } else {
    co_return Outcome::kEnd;  // timed out, cut, or closed by Stop
  }
  co_return Outcome::kMalformed;
}

}  // namespace gradientd::http
