// The auth file (gradientd --auth-file): which tokens exist, their names and
// roles. Parsing is pure; tokens are kept only as SHA-256 digests.
//
// Format: one token per line, three fields separated by spaces or tabs:
//
//   # name     roles               token
//   ingester   produce             9f86d081884c7d659a2feaa0c55ad015
//   ops        produce,query,admin 2c26b46b68ffc68ff99b453c1d304134
//
// Blank lines and lines whose first non-blank character is '#' are ignored.
// name: 1-64 of [A-Za-z0-9._@-], unique; it stands for the token in replies
// and messages. roles: a comma-separated, non-empty list of produce, query,
// admin (roles are independent: admin does not imply the others). token: 16
// to 1024 printable ASCII characters without spaces, unique.
//
// Errors name the file and line and never quote a token (nor a field that
// could be one).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::auth {

inline constexpr std::size_t kMinTokenBytes = 16;
inline constexpr std::size_t kMaxTokenBytes = 1024;
inline constexpr std::size_t kMaxNameBytes = 64;

// SHA-256 of a token. Tokens are compared by digest, in constant time, so
// neither their content nor their length leaks through timing.
using Digest = std::array<uint8_t, 32>;
Digest DigestOf(std::string_view token);
// Constant-time equality (CRYPTO_memcmp).
bool SameDigest(const Digest& a, const Digest& b);

// A set of roles (v1::PRODUCE, v1::QUERY, v1::ADMIN).
class RoleSet {
 public:
  RoleSet() = default;
  static RoleSet All() { return RoleSet().With(v1::PRODUCE).With(v1::QUERY).With(v1::ADMIN); }
  RoleSet With(v1::Role role) const {
    RoleSet r = *this;
    r.bits_ = static_cast<uint8_t>(r.bits_ | Bit(role));
    return r;
  }
  bool Has(v1::Role role) const { return (bits_ & Bit(role)) != 0; }
  bool empty() const { return bits_ == 0; }
  // In Role order.
  std::vector<v1::Role> roles() const;
  // "produce,query"; "none" when empty.
  std::string ToString() const;
  bool operator==(const RoleSet&) const = default;

 private:
  static uint8_t Bit(v1::Role role) {
    return static_cast<uint8_t>(1u << static_cast<unsigned>(role));
  }
  uint8_t bits_ = 0;
};

// "produce", "query", "admin".
std::string_view RoleName(v1::Role role);

struct TokenEntry {
  std::string name;
  RoleSet roles;
  Digest digest{};
  int line = 0;  // where it was defined
};

class TokenTable {
 public:
  TokenTable() = default;
  explicit TokenTable(std::vector<TokenEntry> entries) : entries_(std::move(entries)) {}

  // The entry whose token has this digest, or nullptr. Compares against
  // every entry whatever matches, each in constant time.
  const TokenEntry* Find(const Digest& digest) const;

  const std::vector<TokenEntry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<TokenEntry> entries_;
};

// Parses the auth file's text; `file` names it in errors ("FILE:LINE: ...").
// On error `table` is left as it was.
Status ParseTokenFile(std::string_view text, std::string_view file, TokenTable* table);

// Reads and parses the file at `path`.
Status LoadTokenFile(const std::string& path, TokenTable* table);

}  // namespace gradientd::auth
