#include "cli/global_flags.h"

#include <cstdlib>

#include "client/server_list.h"
#include "client/tls.h"
#include "protocol/series_name.h"
#include "util/duration.h"

namespace gradientd::cli {

namespace po = boost::program_options;

po::options_description GlobalOptions(GlobalFlags* flags, const std::string& default_server,
                                      const std::string& default_token) {
  po::options_description d("Global options (accepted anywhere on the line)", kHelpWidth,
                            kHelpDescriptionWidth);
  // clang-format off
  d.add_options()
      ("server",
       po::value(&flags->server)->default_value(default_server)->value_name("HOST:PORT[,...]"),
       "the gradientd server, or several nodes of one cluster separated by commas: connections "
       "try them in order, and a failed connection or an UNAVAILABLE reply moves on to the "
       "next (see --failover-timeout); the default comes from $GRADIENTD_SERVER when set")
      ("failover-timeout",
       po::value(&flags->failover_timeout)->default_value("30s")->value_name("DURATION"),
       "with several --server addresses: how long a command keeps trying them after a "
       "failure, with backoff (a query tries each at most twice; produce and replay resend "
       "their unacknowledged batches for this long unless --retry-for is given). A step, "
       "configure or reset that may have reached a server is never resent")
      // The help never shows the token itself.
      ("token",
       po::value(&flags->token)
           ->default_value(default_token, default_token.empty() ? "" : "$GRADIENTD_TOKEN")
           ->value_name("TOKEN"),
       "authenticate every connection with this token (a server started with --auth-file "
       "needs one); the default comes from $GRADIENTD_TOKEN, which keeps it out of the "
       "process list")
      ("series",
       po::value(&flags->series)
           ->default_value(std::string(protocol::kDefaultSeries))
           ->value_name("NAME"),
       "the series to work on")
      ("json", po::bool_switch(&flags->json),
       "machine-readable output: one JSON object per reply, one per line, field names as in "
       "the protocol (gradientd.proto)")
      ("tls", po::bool_switch(&flags->tls),
       "connect with TLS; the server's certificate must be signed by a trusted CA and name "
       "the HOST of --server")
      ("tls-ca", po::value(&flags->tls_ca)->value_name("FILE"),
       "with --tls: trust the CA certificates in this PEM file instead of the system's; the "
       "default comes from $GRADIENTD_TLS_CA when set")
      ("tls-cert", po::value(&flags->tls_cert)->value_name("FILE"),
       "with --tls: present this PEM client certificate (for a server run with "
       "--tls-client-ca); needs --tls-key")
      ("tls-key", po::value(&flags->tls_key)->value_name("FILE"),
       "the PEM private key (unencrypted) of --tls-cert")
      ("tcp-congestion", po::value(&flags->tcp_congestion)->value_name("NAME"),
       "TCP congestion control for every connection this command makes (Linux, e.g. reno or "
       "cubic; default: the system's, net.ipv4.tcp_congestion_control). With bbr, Linux paces "
       "each flow, loopback too, which costs producers on the server's machine throughput")
      ("help,h", po::bool_switch(&flags->help), "print usage and exit");
  // clang-format on
  return d;
}

Status CheckGlobalFlags(const GlobalFlags& flags, const po::variables_map& vm) {
  std::chrono::nanoseconds timeout{0};
  if (Status s = util::ParseDuration(flags.failover_timeout, &timeout); !s.ok()) {
    return Status::InvalidArgument("--failover-timeout: " + s.message());
  }
  if (vm.count("tcp-congestion") && flags.tcp_congestion.empty()) {
    return Status::InvalidArgument("--tcp-congestion needs a NAME");
  }
  for (const char* flag : {"tls-ca", "tls-cert", "tls-key"}) {
    if (vm.count(flag) && !flags.tls) {
      return Status::InvalidArgument("--" + std::string(flag) + " needs --tls");
    }
    if (vm.count(flag) && vm[flag].as<std::string>().empty()) {
      return Status::InvalidArgument("--" + std::string(flag) + " needs a FILE");
    }
  }
  if (vm.count("tls-cert") != vm.count("tls-key")) {
    return Status::InvalidArgument(vm.count("tls-cert") ? "--tls-cert needs --tls-key"
                                                        : "--tls-key needs --tls-cert");
  }
  return Status::Ok();
}

Status ConnectOptionsFromFlags(const GlobalFlags& flags, client::ConnectOptions* options) {
  options->token = flags.token;
  options->tcp_congestion = flags.tcp_congestion;
  if (flags.server.find(',') != std::string::npos) {
    options->connect_timeout = kFailoverConnectTimeout;
  }
  if (!flags.tls) return Status::Ok();
  client::TlsOptions tls;
  tls.ca_file = flags.tls_ca;
  if (tls.ca_file.empty()) {
    const char* env = std::getenv("GRADIENTD_TLS_CA");
    if (env != nullptr) tls.ca_file = env;
  }
  tls.cert_file = flags.tls_cert;
  tls.key_file = flags.tls_key;
  return client::MakeClientTlsContext(tls, &options->tls);
}

Status ServersFromFlags(const GlobalFlags& flags, std::vector<std::string>* servers) {
  return client::ParseServerList(flags.server, servers);
}

std::chrono::nanoseconds FailoverTimeout(const GlobalFlags& flags) {
  std::chrono::nanoseconds timeout{0};
  (void)util::ParseDuration(flags.failover_timeout, &timeout);
  return timeout;
}

}  // namespace gradientd::cli
