#include "auth/token_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace gradientd::auth {
namespace {

constexpr std::size_t kMaxFileBytes = 16u << 20;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '-';
}

bool IsTokenChar(char c) { return c > ' ' && c < 0x7f; }

// How a message mentions a name: quoted when it is too short to be a token,
// otherwise by its line only (a 64-hex token is a valid name: a token
// written in the name column must not end up in a log).
std::string Mention(std::string_view name, int line) {
  if (name.size() < kMinTokenBytes) return "'" + std::string(name) + "'";
  return "the name on line " + std::to_string(line) + " (not quoted: it could be a token)";
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

Status ParseRoles(std::string_view text, RoleSet* roles, std::string* problem) {
  RoleSet set;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string_view word = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::optional<v1::Role> role;
    for (const v1::Role r : {v1::PRODUCE, v1::QUERY, v1::ADMIN}) {
      if (word == RoleName(r)) role = r;
    }
    if (word.empty()) {
      *problem = "an empty role in the roles list";
      return Status::InvalidArgument("");
    }
    if (!role) {
      // A field this long could be a token written in the wrong column:
      // never quote it.
      *problem = word.size() < kMinTokenBytes
                     ? "unknown role '" + std::string(word) + "'"
                     : "an unknown role of " + std::to_string(word.size()) +
                           " characters (is the token in the roles column?)";
      *problem += " (roles are produce, query, admin)";
      return Status::InvalidArgument("");
    }
    if (set.Has(*role)) {
      *problem = "role '" + std::string(word) + "' is listed twice";
      return Status::InvalidArgument("");
    }
    set = set.With(*role);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  *roles = set;
  return Status::Ok();
}

}  // namespace

Digest DigestOf(std::string_view token) {
  Digest digest{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != digest.size()) {
    // Cannot happen with a working libcrypto; fail closed rather than match.
    std::abort();
  }
  return digest;
}

bool SameDigest(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<v1::Role> RoleSet::roles() const {
  std::vector<v1::Role> out;
  for (const v1::Role r : {v1::PRODUCE, v1::QUERY, v1::ADMIN}) {
    if (Has(r)) out.push_back(r);
  }
  return out;
}

std::string RoleSet::ToString() const {
  std::string out;
  for (const v1::Role r : roles()) {
    if (!out.empty()) out += ',';
    out += RoleName(r);
  }
  return out.empty() ? "none" : out;
}

std::string_view RoleName(v1::Role role) {
  switch (role) {
    case v1::PRODUCE:
      return "produce";
    case v1::QUERY:
      return "query";
    case v1::ADMIN:
      return "admin";
    default:
      return "unknown";
  }
}

const TokenEntry* TokenTable::Find(const Digest& digest) const {
  // No early exit: the time taken does not depend on which entry matches.
  const TokenEntry* found = nullptr;
  for (const TokenEntry& entry : entries_) {
    if (SameDigest(entry.digest, digest)) found = &entry;
  }
  return found;
}

Status ParseTokenFile(std::string_view text, std::string_view file, TokenTable* table) {
  std::vector<TokenEntry> entries;
  int line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto fail = [&](const std::string& problem) {
      return Status::InvalidArgument(std::string(file) + ":" + std::to_string(line_number) + ": " +
                                     problem);
    };
    const std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    if (fields.size() != 3) {
      return fail("expected 3 fields (name roles token), found " + std::to_string(fields.size()) +
                  (fields.size() > 3 ? "; a comment must be on a line of its own" : ""));
    }
    TokenEntry entry;
    entry.line = line_number;
    const std::string_view name = fields[0], roles = fields[1], token = fields[2];
    bool name_ok = name.size() <= kMaxNameBytes;
    for (const char c : name) name_ok = name_ok && IsNameChar(c);
    if (!name_ok) {
      return fail("the name must be 1 to " + std::to_string(kMaxNameBytes) +
                  " of the characters A-Z a-z 0-9 . _ @ -");
    }
    entry.name = std::string(name);
    for (const TokenEntry& other : entries) {
      if (other.name == entry.name) {
        return fail("the name " + Mention(entry.name, line_number) + " is already used on line " +
                    std::to_string(other.line));
      }
    }
    std::string problem;
    if (!ParseRoles(roles, &entry.roles, &problem).ok()) {
      return fail(Mention(entry.name, line_number) + ": " + problem);
    }
    if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes) {
      return fail("the token of " + Mention(entry.name, line_number) + " has " +
                  std::to_string(token.size()) + " characters; it needs " +
                  std::to_string(kMinTokenBytes) + " to " + std::to_string(kMaxTokenBytes));
    }
    for (const char c : token) {
      if (!IsTokenChar(c)) {
        return fail("the token of " + Mention(entry.name, line_number) +
                    " has a character that is not printable ASCII");
      }
    }
    entry.digest = DigestOf(token);
    for (const TokenEntry& other : entries) {
      if (SameDigest(other.digest, entry.digest)) {
        return fail(Mention(entry.name, line_number) + " has the same token as " +
                    Mention(other.name, other.line) + " (line " + std::to_string(other.line) + ")");
      }
    }
    entries.push_back(std::move(entry));
  }
  *table = TokenTable(std::move(entries));
  return Status::Ok();
}

Status LoadTokenFile(const std::string& path, TokenTable* table) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
  std::string text;
  char buffer[64 * 1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return Status::InvalidArgument(path + " is larger than " + std::to_string(kMaxFileBytes) +
                                     " bytes; is it the right file?");
    }
  }
  if (in.bad()) return Status::InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  return ParseTokenFile(text, path, table);
}

}  // namespace gradientd::auth
