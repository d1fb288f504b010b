// Accepting connections: binding the listening socket, counting each
// accepted socket from accept, and refusing those over max_connections.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <iostream>

#include "protocol/endpoint.h"
#include "protocol/error_codes.h"
#include "protocol/frame_codec.h"
#include "server/server_impl.h"

namespace gradientd::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> Server::Impl::Accept() {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(query_context, use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: say so (at most every few
      // seconds), back off a moment while the other connections are
      // served, go on.
      if (Clock::now() - last_accept_error >= std::chrono::seconds(5)) {
        last_accept_error = Clock::now();
        std::cerr << "gradientd: accept failed: " << ec.message() << "\n";
      }
      Timer pause(control, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    Admit(std::move(socket));
  }
}

void Server::Impl::CountConnectionRefusal() {
  if (options.metrics != nullptr && options.metrics->max_connections_refusals != nullptr) {
    options.metrics->max_connections_refusals->Add();
  }
}

void Server::Impl::Admit(tcp::socket socket) {
  // Every accepted socket counts from here until it is closed: as a
  // connection, or as a refusal in progress.
  std::shared_ptr<Peer> peer;
  std::shared_ptr<tcp::socket> refused;
  {
    util::MutexLock lock(mu);
    if (stopping) return;
    if (peers.size() < options.max_connections) {
      peer = std::make_shared<Peer>(std::move(socket), tls.get(), handler, authenticator,
                                    options.metrics ? options.metrics->auth_failures : nullptr,
                                    options.max_frame_bytes);
      peers.push_back(peer);
    } else if (CountConnectionRefusal(); refusing.size() < Server::kRefusalAllowance) {
      refused = std::make_shared<tcp::socket>(std::move(socket));
      refusing.push_back(refused);
    }
  }
  if (peer) {
    SpawnServe(control, std::move(peer));
  } else if (refused) {
    asio::co_spawn(control, Refuse(refused), [this, refused](std::exception_ptr) {
      boost::system::error_code e;
      refused->close(e);
      util::MutexLock lock(mu);
      refusing.remove(refused);
    });
  } else {
    boost::system::error_code ignored;
    socket.close(ignored);  // too many refusals already under way
  }
}

asio::awaitable<void> Server::Impl::Refuse(std::shared_ptr<tcp::socket> refused) {
  tcp::socket& socket = *refused;
  v1::Response response;
  protocol::SetError(Status::ResourceExhausted("too many connections (the limit is " +
                                               std::to_string(options.max_connections) + ")"),
                     &response);
  std::string frame;
  protocol::AppendFrame(response, &frame);
  if (tls) {
    // A TLS client can only read the refusal over TLS.
    TlsStream stream(socket, *tls);
    if (co_await AcceptTls(stream, options.request_timeout)) {
      Timer deadline(socket.get_executor(), options.write_timeout);
      auto result = co_await (asio::async_write(stream, asio::buffer(frame), use_tuple) ||
                              deadline.async_wait(use_tuple));
      if (result.index() == 0 && !std::get<0>(std::get<0>(result))) {
        co_await SendCloseNotify(stream, options.write_timeout);
      }
    }
  } else {
    Timer deadline(socket.get_executor(), options.write_timeout);
    co_await (asio::async_write(socket, asio::buffer(frame), use_tuple) ||
              deadline.async_wait(use_tuple));
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

Status Server::Bind() {
  if (impl_->acceptor.is_open()) return Status::Ok();
  protocol::Endpoint where;
  if (Status s = protocol::ParseEndpoint(impl_->options.listen, &where); !s.ok()) {
    return Status::InvalidArgument("--listen: " + s.message());
  }
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->control);
  const auto results =
      resolver.resolve(where.host, std::to_string(where.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument("cannot resolve listen address " + impl_->options.listen + ": " +
                                   ec.message());
  }
  if (impl_->options.tls.enabled()) {
    if (Status s = MakeServerTlsContext(impl_->options.tls, &impl_->tls); !s.ok()) return s;
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return Status::Unavailable("cannot listen on " + impl_->options.listen + ": " + ec.message());
  }
  return Status::Ok();
}

Status Server::Start() {
  if (Status s = Bind(); !s.ok()) return s;
  boost::system::error_code ec;
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + impl_->options.listen + ": " + ec.message());
  }
  asio::co_spawn(impl_->control, impl_->Accept(), asio::detached);
  return Status::Ok();
}

tcp::endpoint Server::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  return protocol::FormatEndpoint(endpoint.address().to_string(), endpoint.port());
}

}  // namespace gradientd::server
