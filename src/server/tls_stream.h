// TLS over a connection's socket, for the server's coroutines: the
// handshake and the close, each bounded by a timeout.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <chrono>

namespace gradientd::server {

// The socket stays the lowest layer: closing and half-closing it work as for
// plaintext.
using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;

// The server side of the TLS handshake, bounded by `timeout`. False if it
// failed (a plaintext client, an untrusted or missing client certificate)
// or timed out; OpenSSL has then sent the client an alert if it could.
boost::asio::awaitable<bool> AcceptTls(TlsStream& stream, std::chrono::milliseconds timeout);

// Sends TLS close_notify after the last response, so the client can tell the
// end of the responses from a cut connection. Does not wait for the client's
// close_notify (marked as received), only for the write, within `timeout`.
boost::asio::awaitable<void> SendCloseNotify(TlsStream& stream, std::chrono::milliseconds timeout);

}  // namespace gradientd::server
