#include "server/tls.h"

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include "tls/tls_files.h"

namespace gradientd::server {
namespace ssl = boost::asio::ssl;

Status MakeServerTlsContext(const TlsOptions& options, std::unique_ptr<ssl::context>* context) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  if (Status s = tls::SetModernDefaults(native); !s.ok()) return s;
  if (Status s = tls::LoadCertificateAndKey(native, "--tls-cert", options.cert_file, "--tls-key",
                                            options.key_file);
      !s.ok()) {
    return s;
  }
  if (!options.client_ca_file.empty()) {
    if (Status s = tls::LoadTrustedCertificates(native, "--tls-client-ca", options.client_ca_file);
        !s.ok()) {
      return s;
    }
    // Tells clients which CAs are accepted, so they can pick a certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    tls::TakeOpenSslErrors();  // whatever SSL_load_client_CA_file left
    // Needed with client verification, or resumed sessions fail.
    static constexpr unsigned char kSessionContext[] = "gradientd";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  *context = std::move(ctx);
  return Status::Ok();
}

}  // namespace gradientd::server
