// The open-file limit gradientd needs: every connection holds a descriptor,
// and idle connections must not take those the journal and snapshots need.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace gradientd::app {

// Descriptors kept, beyond the connections and refusals, for the journal,
// snapshots, the recording, the auth file, the listening socket and Asio's
// own (epoll, eventfd, timers).
inline constexpr std::size_t kReservedDescriptors = 64;

// Raises the soft limit on open files (RLIMIT_NOFILE) to the hard limit and
// sets *limit to the soft limit then in effect.
Status RaiseOpenFileLimit(uint64_t* limit);

// Whether --max-connections and --http-max-connections (0 with HTTP off),
// each with its refusals in progress (server::Server::kRefusalAllowance,
// http::Listener::kRefusalAllowance), and kReservedDescriptors fit in an
// open-file limit of `limit`. The error names the numbers and what to do.
Status CheckOpenFileLimit(std::size_t max_connections, std::size_t http_max_connections,
                          uint64_t limit);

}  // namespace gradientd::app
