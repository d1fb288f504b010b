#include "tls/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace gradientd::tls {
namespace {

// A file OpenSSL will open too, checked first for a message naming errno.
Status CheckReadable(const std::string& flag, const std::string& file) {
  if (file.empty()) return Status::InvalidArgument(flag + " needs a FILE");
  std::ifstream in(file);
  if (!in) {
    return Status::InvalidArgument(flag + " " + file + ": cannot read it: " + std::strerror(errno));
  }
  return Status::Ok();
}

// Never prompts on the terminal for an encrypted key's passphrase.
int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

std::string TakeOpenSslErrors(const std::string& fallback) {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!text.empty()) text += "; ";
    text += reason != nullptr ? reason : "error " + std::to_string(e);
  }
  return text.empty() ? fallback : text;
}

Status SetModernDefaults(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return Status::Internal("cannot require TLS 1.2: " + TakeOpenSslErrors());
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  return Status::Ok();
}

Status LoadCertificateAndKey(SSL_CTX* ctx, const std::string& cert_flag,
                             const std::string& cert_file, const std::string& key_flag,
                             const std::string& key_file) {
  if (Status s = CheckReadable(cert_flag, cert_file); !s.ok()) return s;
  if (Status s = CheckReadable(key_flag, key_file); !s.ok()) return s;
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Status::InvalidArgument(cert_flag + " " + cert_file +
                                   ": cannot load a PEM certificate chain: " + TakeOpenSslErrors());
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(key_file.c_str(), "r"), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (!key) {
    return Status::InvalidArgument(key_flag + " " + key_file +
                                   ": cannot load a PEM private key (encrypted keys are not "
                                   "supported): " +
                                   TakeOpenSslErrors());
  }
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr || X509_check_private_key(cert, key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(key_flag + " " + key_file +
                                   ": does not match the certificate in " + cert_flag + " " +
                                   cert_file);
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return Status::InvalidArgument(key_flag + " " + key_file +
                                   ": cannot use the key: " + TakeOpenSslErrors());
  }
  return Status::Ok();
}

Status LoadTrustedCertificates(SSL_CTX* ctx, const std::string& flag, const std::string& ca_file) {
  if (Status s = CheckReadable(flag, ca_file); !s.ok()) return s;
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return Status::InvalidArgument(flag + " " + ca_file +
                                   ": cannot load PEM CA certificates: " + TakeOpenSslErrors());
  }
  return Status::Ok();
}

}  // namespace gradientd::tls
