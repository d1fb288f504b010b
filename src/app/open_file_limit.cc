#include "app/open_file_limit.h"

#include <sys/resource.h>

#include <string>

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

Status CheckOpenFileLimit(std::size_t max_connections, uint64_t limit) {
  constexpr std::size_t kRefusals = server::Server::kRefusalAllowance;
  const uint64_t needed = uint64_t{max_connections} + kRefusals + kReservedDescriptors;
  if (needed <= limit) return Status::Ok();
  return Status::InvalidArgument(
      "--max-connections " + std::to_string(max_connections) + " needs " + std::to_string(needed) +
      " descriptors (" + std::to_string(kRefusals) + " more for refusals and " +
      std::to_string(kReservedDescriptors) +
      " for the journal, snapshots and recording), but the limit is " + std::to_string(limit) +
      " open files: raise it (ulimit -n, LimitNOFILE= for systemd) or lower --max-connections "
      "to at most " +
      std::to_string(limit > needed - max_connections ? limit - (needed - max_connections) : 0));
}

}  // namespace gradientd::app
