#include "server/tls_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace gradientd::server {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

asio::awaitable<bool> AcceptTls(TlsStream& stream, std::chrono::milliseconds timeout) {
  asio::steady_timer deadline(stream.get_executor(), timeout);
  auto result = co_await (stream.async_handshake(TlsStream::server, use_tuple) ||
                          deadline.async_wait(use_tuple));
  co_return result.index() == 0 && !std::get<0>(std::get<0>(result));
}

asio::awaitable<void> SendCloseNotify(TlsStream& stream, std::chrono::milliseconds timeout) {
  SSL* ssl = stream.native_handle();
  SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  asio::steady_timer deadline(stream.get_executor(), timeout);
  co_await (stream.async_shutdown(use_tuple) || deadline.async_wait(use_tuple));
}

}  // namespace gradientd::server
