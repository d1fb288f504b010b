// TLS for gradientd: the server's OpenSSL context, built once at startup
// from --tls-cert, --tls-key and --tls-client-ca.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"

namespace boost::asio::ssl {
class context;
}

namespace gradientd::server {

struct TlsOptions {
  std::string cert_file;       // PEM certificate chain, leaf first; empty: plaintext
  std::string key_file;        // PEM private key of the leaf (unencrypted)
  std::string client_ca_file;  // PEM CAs; when set, clients must present a certificate they signed

  bool enabled() const { return !cert_file.empty(); }
};

// The context every TLS connection is accepted with: TLS 1.2 or newer,
// OpenSSL's default ciphers, the certificate and key, and with
// client_ca_file, client certificates required and verified. Errors name
// the flag and file (kInvalidArgument).
// REQUIRES: options.enabled() and key_file set.
Status MakeServerTlsContext(const TlsOptions& options,
                            std::unique_ptr<boost::asio::ssl::context>* context);

}  // namespace gradientd::server
