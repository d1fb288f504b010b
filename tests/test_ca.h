// A throw-away certificate authority made at test time with OpenSSL: P-256
// keys, SHA-256 signatures, valid from an hour ago for a day. Nothing is
// committed; every file is written under the directory given.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace gradientd::testing {

class TestCa {
 public:
  // A self-signed CA named `name`.
  explicit TestCa(const std::string& name) : key_(NewKey()), cert_(X509_new(), &X509_free) {
    Fill(cert_.get(), name, key_.get());
    X509_set_issuer_name(cert_.get(), X509_get_subject_name(cert_.get()));
    AddExtension(cert_.get(), cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert_.get(), cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    AddExtension(cert_.get(), cert_.get(), NID_subject_key_identifier, "hash");
    Sign(cert_.get(), key_.get());
  }

  // Writes the CA's certificate (what a peer trusts) as PEM.
  void WriteCertificate(const std::string& path) const { WriteCert(path, cert_.get()); }

  // Issues a certificate for `common_name` with the subjectAltName `alt_names`
  // ("IP:127.0.0.1,DNS:localhost"; empty for none, e.g. a client), and writes
  // it and its new private key as PEM.
  void Issue(const std::string& common_name, const std::string& alt_names,
             const std::string& cert_path, const std::string& key_path) const {
    Key key = NewKey();
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    Fill(cert.get(), common_name, key.get());
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get()));
    AddExtension(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), cert_.get(), NID_key_usage, "critical,digitalSignature");
    AddExtension(cert.get(), cert_.get(), NID_ext_key_usage, "serverAuth,clientAuth");
    AddExtension(cert.get(), cert_.get(), NID_authority_key_identifier, "keyid:always");
    if (!alt_names.empty()) {
      AddExtension(cert.get(), cert_.get(), NID_subject_alt_name, alt_names);
    }
    Sign(cert.get(), key_.get());
    WriteCert(cert_path, cert.get());
    WriteKey(key_path, key.get());
  }

 private:
  using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

  static void Check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("TestCa: ") + what + " failed");
  }
  static Key NewKey() {
    Key key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    Check(key != nullptr, "EVP_EC_gen");
    return key;
  }
  static void Fill(X509* cert, const std::string& name, EVP_PKEY* key) {
    static long serial = 1;
    Check(X509_set_version(cert, 2) == 1, "X509_set_version");
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_NAME* subject = X509_get_subject_name(cert);
    Check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1,
                                     0) == 1,
          "X509_NAME_add_entry_by_txt");
    Check(X509_set_pubkey(cert, key) == 1, "X509_set_pubkey");
  }
  static void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    Check(ext != nullptr, "X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  static void Sign(X509* cert, EVP_PKEY* key) {
    Check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");
  }
  static void WriteCert(const std::string& path, X509* cert) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    Check(f != nullptr, "fopen");
    const bool ok = PEM_write_X509(f, cert) == 1;
    std::fclose(f);
    Check(ok, "PEM_write_X509");
  }
  static void WriteKey(const std::string& path, EVP_PKEY* key) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    Check(f != nullptr, "fopen");
    const bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    std::fclose(f);
    Check(ok, "PEM_write_PrivateKey");
  }

  Key key_;
  std::unique_ptr<X509, decltype(&X509_free)> cert_;
};

}  // namespace gradientd::testing
