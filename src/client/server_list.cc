#include "client/server_list.h"

namespace gradientd::client {

Status ParseServerList(std::string_view text, std::vector<std::string>* servers) {
  servers->clear();
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    if (entry.empty()) {
      servers->clear();
      return Status::InvalidArgument("an empty address in the list (HOST:PORT[,HOST:PORT...])");
    }
    Endpoint endpoint;
    if (Status s = ParseEndpoint(entry, &endpoint); !s.ok()) {
      servers->clear();
      return s;
    }
    servers->emplace_back(entry);
    if (comma == std::string_view::npos) return Status::Ok();
    text.remove_prefix(comma + 1);
  }
}

bool TryAnotherServer(const Status& connect_failure) {
  switch (connect_failure.code()) {
    case StatusCode::kUnavailable:         // refused, reset, timed out, closed
    case StatusCode::kFailedPrecondition:  // TLS, or the Hello, failed with this node
    case StatusCode::kInternal:            // an unexpected reply to the Hello
      return true;
    default:  // a bad address, a refused token
      return false;
  }
}

Status ConnectToFirstAvailable(const std::vector<std::string>& servers, std::size_t first,
                               const ConnectOptions& options, std::unique_ptr<Client>* client,
                               std::size_t* index) {
  std::string why;
  bool any_unreachable = false;
  Status last;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const std::size_t at = (first + i) % servers.size();
    last = Client::Connect(servers[at], options, client);
    if (last.ok()) {
      *index = at;
      return last;
    }
    if (servers.size() == 1 || !TryAnotherServer(last)) return last;
    any_unreachable = any_unreachable || last.code() == StatusCode::kUnavailable;
    why += (why.empty() ? "" : "; ") + last.message();
  }
  return Status(
      any_unreachable ? StatusCode::kUnavailable : last.code(),
      "no server answered (tried " + std::to_string(servers.size()) + " addresses): " + why);
}

}  // namespace gradientd::client
