// The TLS tests' fixture: a throw-away CA (test_ca.h) with a server
// certificate for 127.0.0.1 and localhost, another CA, and real Asio servers
// on port 0 over one in-memory Service, stopped at TearDown. Each test's
// files live in its own temporary folder.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/tls.h"
#include "server/server.h"
#include "service/series_store.h"
#include "service/service.h"
#include "test_ca.h"

namespace gradientd {

inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline v1::Request Ingest(const std::string& series, std::vector<double> x, std::vector<double> y) {
  v1::Request r;
  r.mutable_ingest()->set_series(series);
  for (double v : x) r.mutable_ingest()->add_x(v);
  for (double v : y) r.mutable_ingest()->add_y(v);
  return r;
}

inline v1::Request FitRequest(const std::string& series) {
  v1::Request r;
  r.mutable_fit()->set_series(series);
  return r;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "tls_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ca_.WriteCertificate(Path("ca.pem"));
    ca_.Issue("gradientd test server", "IP:127.0.0.1,DNS:localhost", Path("server.pem"),
              Path("server.key"));
    other_ca_.WriteCertificate(Path("other-ca.pem"));
  }

  void TearDown() override {
    for (auto& running : servers_) {
      running.server->Stop();
      running.runner.join();
    }
    std::filesystem::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Server options for TLS with the CA's server certificate.
  server::ServerOptions TlsServerOptions() const {
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.tls.cert_file = Path("server.pem");
    options.tls.key_file = Path("server.key");
    return options;
  }

  // Starts a server; returns its HOST:PORT.
  std::string StartServer(const server::ServerOptions& options, service::ChangeLog* log = nullptr) {
    Running& running = servers_.emplace_back();
    running.server = std::make_unique<server::Server>(options, service_, log);
    const Status s = running.server->Start();
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok()) return "";
    running.runner = std::thread([server = running.server.get()] { server->Run(); });
    return server::FormatEndpoint(running.server->local_endpoint());
  }

  client::ConnectOptions ClientOptions(const std::string& ca, const std::string& cert = "",
                                       const std::string& key = "") {
    client::TlsOptions tls;
    tls.ca_file = ca;
    tls.cert_file = cert;
    tls.key_file = key;
    client::ConnectOptions options;
    const Status s = client::MakeClientTlsContext(tls, &options.tls);
    EXPECT_TRUE(s.ok()) << s.message();
    return options;
  }

  std::unique_ptr<client::Client> Connect(const std::string& address,
                                          const client::ConnectOptions& options) {
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address, options, &c);
    EXPECT_TRUE(s.ok()) << s.message();
    return c;
  }

  // The connection works: a list request gets its answer.
  void ExpectServed(client::Client& c) {
    v1::Request list;
    list.mutable_list();
    v1::Response response;
    const Status s = c.Call(list, &response);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_TRUE(response.has_series_list()) << response.DebugString();
  }

  struct Running {
    std::unique_ptr<server::Server> server;
    std::thread runner;
  };

  std::string dir_;
  testing::TestCa ca_{"gradientd test CA"};
  testing::TestCa other_ca_{"some other CA"};
  service::SeriesStore store_;
  service::Service service_{store_};
  std::vector<Running> servers_;
};

}  // namespace gradientd
