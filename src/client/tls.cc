#include "client/tls.h"

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include "tls/tls_files.h"

namespace gradientd::client {
namespace ssl = boost::asio::ssl;

Status MakeClientTlsContext(const TlsOptions& options, std::shared_ptr<ssl::context>* context) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Status::InvalidArgument(options.cert_file.empty() ? "--tls-key needs --tls-cert"
                                                             : "--tls-cert needs --tls-key");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  if (Status s = tls::SetModernDefaults(native); !s.ok()) return s;
  if (options.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(native) != 1) {
      return Status::Internal("cannot load the system's trusted CA certificates: " +
                              tls::TakeOpenSslErrors());
    }
  } else if (Status s = tls::LoadTrustedCertificates(native, "--tls-ca", options.ca_file);
             !s.ok()) {
    return s;
  }
  if (!options.cert_file.empty()) {
    if (Status s = tls::LoadCertificateAndKey(native, "--tls-cert", options.cert_file, "--tls-key",
                                              options.key_file);
        !s.ok()) {
      return s;
    }
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  *context = std::move(ctx);
  return Status::Ok();
}

}  // namespace gradientd::client
