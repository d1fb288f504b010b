// The secrets a cluster node gives NATS, read from the files named by
// --cluster-user-file (first line USER:PASSWORD) and --cluster-token-file
// (first line a token) at startup. Errors name the flag and the file, never
// what it holds.
#pragma once

#include <string>

#include "core/status.h"
#include "jetstream/shard_streams.h"

namespace gradientd::app {

// Sets security's user and password from `user_file` and its token from
// `token_file` (each: empty for none; not both). The first line counts,
// without its trailing CR; an unreadable file, an empty first line or a
// user line without ':' is INVALID_ARGUMENT.
Status ReadNatsCredentials(const std::string& user_file, const std::string& token_file,
                           jetstream::NatsSecurity* security);

}  // namespace gradientd::app
