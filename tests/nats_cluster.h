// NatsCluster: real nats-server processes (Debian's /usr/sbin/nats-server,
// or $GRADIENTD_NATS_SERVER) with JetStream, clustered on loopback ports
// chosen free, each with its own store directory under a temporary one.
// Nodes can be killed (SIGKILL) and started again on the same ports and
// store. Everything is stopped, by PID, when it is destroyed. `config`, if
// given, is a nats-server configuration (tls {...}, authorization {...})
// every node reads besides its flags.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace gradientd::testing {

class NatsCluster {
 public:
  // `nodes` servers named n0, n1, ...; one node runs unclustered.
  explicit NatsCluster(int nodes, const std::string& config = "") : dir_(MakeTempDir()) {
    if (!config.empty()) {
      config_file_ = (dir_ / "nats-server.conf").string();
      std::ofstream(config_file_) << config << "\n";
    }
    std::vector<int> sockets;
    for (int i = 0; i < nodes; ++i) {
      Node node;
      node.client_port = FreePort(&sockets);
      node.route_port = FreePort(&sockets);
      node.name = "n" + std::to_string(i);
      nodes_.push_back(node);
    }
    for (const int fd : sockets) ::close(fd);  // the ports, held until all were chosen
    for (int i = 0; i < nodes; ++i) Start(i);
  }
  ~NatsCluster() {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) Kill(i);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  std::string Url(int i) const { return "nats://127.0.0.1:" + std::to_string(At(i).client_port); }
  std::vector<std::string> Urls() const {
    std::vector<std::string> urls;
    for (int i = 0; i < size(); ++i) urls.push_back(Url(i));
    return urls;
  }
  const std::string& Name(int i) const { return At(i).name; }
  int IndexOf(const std::string& name) const {
    for (int i = 0; i < size(); ++i) {
      if (At(i).name == name) return i;
    }
    return -1;
  }
  bool Running(int i) const { return At(i).pid > 0; }

  // Starts node i (again), on its ports and store.
  void Start(int i) {
    Node& node = At(i);
    if (node.pid > 0) return;
    const std::filesystem::path store = dir_ / node.name;
    std::filesystem::create_directories(store);
    std::vector<std::string> args = {Binary(),
                                     "-a",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(node.client_port),
                                     "-n",
                                     node.name,
                                     "-js",
                                     "-sd",
                                     store.string(),
                                     "-l",
                                     (dir_ / (node.name + ".log")).string()};
    if (!config_file_.empty()) args.insert(args.end(), {"-c", config_file_});
    if (size() > 1) {
      std::string routes;
      for (const Node& other : nodes_) {
        if (&other == &node) continue;
        routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") +
                  std::to_string(other.route_port);
      }
      args.insert(args.end(),
                  {"--cluster_name", "gradientd-test", "--cluster",
                   "nats://127.0.0.1:" + std::to_string(node.route_port), "--routes", routes});
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&node.pid, argv[0], nullptr, nullptr, argv.data(), environ);
    if (rc != 0) {
      node.pid = -1;
      start_error_ = "cannot start " + args[0] + ": " + std::strerror(rc);
    }
  }

  // SIGKILL, then reaped.
  void Kill(int i) {
    Node& node = At(i);
    if (node.pid <= 0) return;
    ::kill(node.pid, SIGKILL);
    ::waitpid(node.pid, nullptr, 0);
    node.pid = -1;
  }

  // "" or why a node could not start, or which one has exited.
  std::string Problem() {
    if (!start_error_.empty()) return start_error_;
    for (int i = 0; i < size(); ++i) {
      Node& node = At(i);
      if (node.pid <= 0) continue;
      int status = 0;
      if (::waitpid(node.pid, &status, WNOHANG) == node.pid) {
        node.pid = -1;
        return "nats-server " + node.name + " exited; its log:\n" + Log(i);
      }
    }
    return "";
  }

  std::string Log(int i) const {
    std::ifstream in(dir_ / (At(i).name + ".log"));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  struct Node {
    std::string name;
    int client_port = 0;
    int route_port = 0;
    pid_t pid = -1;
  };
  Node& At(int i) { return nodes_[static_cast<std::size_t>(i)]; }
  const Node& At(int i) const { return nodes_[static_cast<std::size_t>(i)]; }

  static std::string Binary() {
    const char* given = std::getenv("GRADIENTD_NATS_SERVER");
    return given != nullptr && *given != '\0' ? given : "/usr/sbin/nats-server";
  }

  static std::filesystem::path MakeTempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "gradientd-nats-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return {};
    return pattern;
  }

  // A loopback port nothing listens on; the socket stays open (in
  // `sockets`) so that the next call picks another.
  static int FreePort(std::vector<int>* sockets) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      if (fd >= 0) ::close(fd);
      return 0;
    }
    sockets->push_back(fd);
    return ntohs(address.sin_port);
  }

  std::filesystem::path dir_;
  std::vector<Node> nodes_;
  std::string start_error_;
  std::string config_file_;  // empty: flags only
};

}  // namespace gradientd::testing
