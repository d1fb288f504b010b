#include "app/open_file_limit.h"

#include <sys/resource.h>

#include <string>

#include "http/listener.h"
#include "server/server.h"

namespace gradientd::app {

Status RaiseOpenFileLimit(uint64_t* limit) {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) {
    return Status::Internal("cannot read the open-file limit (getrlimit)");
  }
  if (files.rlim_cur < files.rlim_max) {
    rlimit raised = files;
    raised.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) files = raised;
  }
  *limit = static_cast<uint64_t>(files.rlim_cur);
  return Status::Ok();
}

Status CheckOpenFileLimit(std::size_t max_connections, std::size_t http_max_connections,
                          uint64_t limit) {
  const uint64_t http = http_max_connections == 0
                            ? 0
                            : uint64_t{http_max_connections} + http::Listener::kRefusalAllowance;
  const uint64_t others = server::Server::kRefusalAllowance + http + kReservedDescriptors;
  const uint64_t needed = uint64_t{max_connections} + others;
  if (needed <= limit) return Status::Ok();
  return Status::InvalidArgument(
      "--max-connections " + std::to_string(max_connections) + " needs " + std::to_string(needed) +
      " descriptors (" + std::to_string(server::Server::kRefusalAllowance) +
      " more for refusals, " + std::to_string(http) + " for HTTP (--http-max-connections " +
      std::to_string(http_max_connections) + " and its refusals) and " +
      std::to_string(kReservedDescriptors) +
      " for the journal, snapshots and recording), but the limit is " + std::to_string(limit) +
      " open files: raise it (ulimit -n, LimitNOFILE= for systemd) or lower --max-connections "
      "to at most " +
      std::to_string(limit > others ? limit - others : 0));
}

}  // namespace gradientd::app
