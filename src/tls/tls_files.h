// Loading PEM files into an OpenSSL context, shared by the server's and the
// client's TLS setup. Errors name the flag and the file and carry OpenSSL's
// reason, e.g. "--tls-key server.key: does not match the certificate in
// --tls-cert server.pem".
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "core/status.h"

namespace gradientd::tls {

// Sets TLS 1.2 as the oldest version (OpenSSL negotiates 1.3 when both ends
// can) and OpenSSL's default ciphers.
Status SetModernDefaults(SSL_CTX* ctx);

// Loads the certificate chain in `cert_file` (leaf first) and the private
// key in `key_file`, and checks that they belong together. `cert_flag` and
// `key_flag` name the options in errors.
Status LoadCertificateAndKey(SSL_CTX* ctx, const std::string& cert_flag,
                             const std::string& cert_file, const std::string& key_flag,
                             const std::string& key_file);

// Trusts the CA certificates in `ca_file` for verifying the peer. Fails if
// the file holds none.
Status LoadTrustedCertificates(SSL_CTX* ctx, const std::string& flag, const std::string& ca_file);

// OpenSSL's queued errors as text ("no start line; ..."), and clears them.
// `fallback` when there are none.
std::string TakeOpenSslErrors(const std::string& fallback = "unknown OpenSSL error");

}  // namespace gradientd::tls
