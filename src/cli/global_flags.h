// gradctl's global flags (--server, --failover-timeout, --token, --series,
// --json, --help, the TLS flags, --tcp-congestion), accepted anywhere on the
// line, and how they become the client's ConnectOptions and address list.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "client/client.h"
#include "core/status.h"

namespace gradientd::cli {

// The width of every --help text.
inline constexpr int kHelpWidth = 100;
inline constexpr int kHelpDescriptionWidth = 50;

// With several --server addresses, a TCP connect gives up after this long,
// so that an address that does not answer at all leaves time for the others.
inline constexpr std::chrono::seconds kFailoverConnectTimeout{5};

struct GlobalFlags {
  std::string server;  // HOST:PORT[,HOST:PORT...]
  std::string failover_timeout = "30s";
  std::string token;
  std::string series;
  bool json = false;
  bool help = false;
  bool tls = false;
  std::string tls_ca;  // empty: $GRADIENTD_TLS_CA, else the system's CAs
  std::string tls_cert;
  std::string tls_key;
  std::string tcp_congestion;  // empty: the system's
};

// The global options, parsed into *flags (which must outlive the result).
boost::program_options::options_description GlobalOptions(GlobalFlags* flags,
                                                          const std::string& default_server,
                                                          const std::string& default_token);

// The global flags' values and combinations that make no sense: a usage error.
Status CheckGlobalFlags(const GlobalFlags& flags, const boost::program_options::variables_map& vm);

// How every command connects: the token, the congestion control, the
// connect timeout with several addresses, and with --tls a context loaded
// here (an error when a TLS file cannot be used).
Status ConnectOptionsFromFlags(const GlobalFlags& flags, client::ConnectOptions* options);

// --server as its list of addresses; kInvalidArgument saying what is wrong.
Status ServersFromFlags(const GlobalFlags& flags, std::vector<std::string>* servers);

// --failover-timeout. REQUIRES: CheckGlobalFlags accepted the flags.
std::chrono::nanoseconds FailoverTimeout(const GlobalFlags& flags);

}  // namespace gradientd::cli
