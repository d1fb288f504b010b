// The addresses of a gradientd cluster, where every node answers every
// series ("HOST:PORT[,HOST:PORT...]", gradctl's --server), and connecting to
// the first of them that answers. Pure functions over Client::Connect.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "core/status.h"

namespace gradientd::client {

// Splits `text` at commas into *servers, each checked with ParseEndpoint
// (an IPv6 address needs brackets). kInvalidArgument naming the bad entry;
// an empty entry ("a:1,,b:2", a trailing comma) is one.
Status ParseServerList(std::string_view text, std::vector<std::string>* servers);

// Whether a failed Client::Connect is worth trying another node for: the
// node could not be reached, the connection broke, or TLS (or the Hello)
// failed with that node. Not a refused token, nor a bad address: another
// node of the same cluster would say the same.
bool TryAnotherServer(const Status& connect_failure);

// Connects to servers[first], then to the next ones in order (wrapping
// around), each at most once, until one connects; *index is that one.
// With one server, its error unchanged. With several, when none connects:
// kUnavailable if any of them was unreachable (else the last error's code),
// the message naming every address tried and why, in order. A failure
// TryAnotherServer rejects is returned at once. REQUIRES: servers not empty.
Status ConnectToFirstAvailable(const std::vector<std::string>& servers, std::size_t first,
                               const ConnectOptions& options, std::unique_ptr<Client>* client,
                               std::size_t* index);

}  // namespace gradientd::client
