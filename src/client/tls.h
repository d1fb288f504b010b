// TLS for the client library: the OpenSSL context clients connect with.
// Build it once (it holds the loaded CA store and client certificate) and
// pass it to Client::Connect in ConnectOptions for every connection.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"

namespace boost::asio::ssl {
class context;
}

namespace gradientd::client {

struct TlsOptions {
  // PEM CA certificates trusted to sign the server's certificate; empty: the
  // system's default trust store (/etc/ssl/certs on Debian).
  std::string ca_file;
  // A client certificate (PEM chain, leaf first) and its unencrypted key,
  // for servers that require one; both or neither.
  std::string cert_file;
  std::string key_file;
};

// The context: TLS 1.2 or newer, OpenSSL's default ciphers, the server's
// certificate verified against the CAs (the host name is checked per
// connection by Client::Connect). Errors name the flag (--tls-ca,
// --tls-cert, --tls-key) and the file; kInvalidArgument.
Status MakeClientTlsContext(const TlsOptions& options,
                            std::shared_ptr<boost::asio::ssl::context>* context);

}  // namespace gradientd::client
