#include "app/nats_credentials.h"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace gradientd::app {
namespace {

// The first line of `path`, without its newline and trailing CR.
Status FirstLine(const std::string& flag, const std::string& path, std::string* line) {
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument(flag + ": cannot read " + path + ": " + std::strerror(errno));
  }
  std::getline(in, *line);
  if (in.bad()) {
    return Status::InvalidArgument(flag + ": cannot read " + path + ": " + std::strerror(errno));
  }
  if (!line->empty() && line->back() == '\r') line->pop_back();
  if (line->empty())
    return Status::InvalidArgument(flag + ": the first line of " + path + " is empty");
  return Status::Ok();
}

}  // namespace

Status ReadNatsCredentials(const std::string& user_file, const std::string& token_file,
                           jetstream::NatsSecurity* security) {
  if (!user_file.empty() && !token_file.empty()) {
    return Status::InvalidArgument(
        "--cluster-user-file and --cluster-token-file: give one of them, not both");
  }
  std::string line;
  if (!user_file.empty()) {
    if (Status s = FirstLine("--cluster-user-file", user_file, &line); !s.ok()) return s;
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("--cluster-user-file: the first line of " + user_file +
                                     " must be USER:PASSWORD");
    }
    security->user = line.substr(0, colon);
    security->password = line.substr(colon + 1);
  }
  if (!token_file.empty()) {
    if (Status s = FirstLine("--cluster-token-file", token_file, &line); !s.ok()) return s;
    security->token = line;
  }
  return Status::Ok();
}

}  // namespace gradientd::app
