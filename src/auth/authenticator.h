// Authenticator: the server's current token table, loaded from the auth file
// and replaced by Reload (on SIGHUP). A failed reload keeps the tokens it
// had.
//
// Thread-safe: Authenticate may run on every connection's thread while
// Reload runs on another.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "auth/token_file.h"
#include "core/status.h"
#include "util/mutex.h"

namespace gradientd::auth {

class Authenticator {
 public:
  // Serves `table`; Reload re-reads `path` (none when empty).
  explicit Authenticator(TokenTable table, std::string path = "");

  // Loads the auth file at `path`; the error names the file and line.
  static Status Load(const std::string& path, std::unique_ptr<Authenticator>* authenticator);

  // Re-reads the file. On success new Hellos, and the next request of every
  // authenticated connection, see the new tokens; on error nothing changes.
  Status Reload() EXCLUDES(mu_);

  // The name and roles of the token with this digest, and the generation of
  // the table that said so; nullopt when no token matches. Constant time in
  // the token's content and length.
  struct Grant {
    std::string name;
    RoleSet roles;
    uint64_t generation = 0;
  };
  std::optional<Grant> Authenticate(const Digest& digest) const EXCLUDES(mu_);

  // Changes with every successful Reload.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::size_t size() const EXCLUDES(mu_);
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  mutable util::Mutex mu_;
  // Replaced whole by Reload; a reader keeps the table it took.
  std::shared_ptr<const TokenTable> table_ GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{1};
};

}  // namespace gradientd::auth
