#include "cli/bench/baselines.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <memory>

#include "cli/bench/common.h"

namespace gradientd::cli::bench {

namespace asio = boost::asio;
using asio::ip::tcp;

Status DiscardServer::Start(protocol::Endpoint* endpoint) {
  boost::system::error_code ec;
  acceptor_.open(tcp::v4(), ec);
  if (!ec) acceptor_.bind(tcp::endpoint(asio::ip::address_v4::loopback(), 0), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Internal("cannot start the discard server: " + ec.message());
  endpoint->host = "127.0.0.1";
  endpoint->port = acceptor_.local_endpoint(ec).port();
  acceptor_thread_ = std::thread([this] { Accept(); });
  return Status::Ok();
}

// Accepts exactly the connections the benchmark makes, then stops
// accepting; each connection ends at the client's end of stream.
void DiscardServer::Accept() {
  for (int i = 0; i < connections_; ++i) {
    auto socket = std::make_shared<tcp::socket>(io_);
    boost::system::error_code ec;
    acceptor_.accept(*socket, ec);
    if (ec) break;
    accepted_.fetch_add(1);
    socket->set_option(tcp::no_delay(true), ec);
    workers_.emplace_back([this, socket] { Serve(*socket); });
  }
}

void DiscardServer::Join() {
  if (acceptor_thread_.joinable()) {
    boost::system::error_code ec;
    const tcp::endpoint self(asio::ip::address_v4::loopback(), acceptor_.local_endpoint(ec).port());
    for (int i = accepted_.load(); i < connections_ && !ec; ++i) {
      tcp::socket dummy(io_);
      dummy.connect(self, ec);
    }
    acceptor_thread_.join();
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void DiscardServer::Serve(tcp::socket& socket) {
  std::vector<char> buffer(std::size_t{1} << 20);
  uint64_t bytes = 0;
  while (true) {
    boost::system::error_code ec;
    const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
    if (ec) break;
    bytes += n;
  }
  bytes_.fetch_add(bytes);
}

Status EchoProcess::Start(protocol::Endpoint* endpoint) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return Errno("cannot start the echo server: socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const Status s = Errno("cannot start the echo server");
    close(listener);
    return s;
  }
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    close(listener);
    return Errno("cannot start the echo server: fork");
  }
  if (pid_ == 0) Serve(listener, parent);
  close(listener);
  endpoint->host = "127.0.0.1";
  endpoint->port = ntohs(address.sin_port);
  return Status::Ok();
}

void EchoProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

// The child. This process has threads, so only async-signal-safe calls.
void EchoProcess::Serve(int listener, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive gradctl
  if (getppid() != parent) _exit(1);
  const int connection = accept(listener, nullptr, nullptr);
  if (connection < 0) _exit(1);
  const int one = 1;
  setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  static char buffer[64 * 1024];
  while (true) {
    const ssize_t n = recv(connection, buffer, sizeof buffer, 0);
    if (n <= 0) _exit(0);
    for (ssize_t sent = 0; sent < n;) {
      const ssize_t w =
          send(connection, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
      if (w <= 0) _exit(0);
      sent += w;
    }
  }
}

}  // namespace gradientd::cli::bench
