// FailoverClient: the connection of gradctl's query commands (gradient,
// fit, step, configure, reset, list, watch) over the --server list. It
// connects to the first address that answers and, when a call fails on a
// connection failure or comes back UNAVAILABLE, retries it on the next
// address: each address at most attempts_per_server times per call, with
// backoff between rounds, for at most `timeout` from the call's first
// failure. A request that is not idempotent is resent only when it was
// never written (the connection could not be made). With one address
// nothing is retried: each call fails as a Client's does.
//
// Not thread-safe: one thread per FailoverClient.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "client/client.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

struct FailoverPolicy {
  std::vector<std::string> servers;  // HOST:PORT each; not empty
  client::ConnectOptions connect;    // for every connection (the Hello, TLS)
  int attempts_per_server = 2;
  std::chrono::nanoseconds backoff = std::chrono::milliseconds(100);  // doubling each round
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(2);
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);  // --failover-timeout
};

// Whether a request may be sent again after it may have reached a server.
enum class Resend {
  kIdempotent,  // queries: resent on any failure
  kIfUnsent,    // step, configure, reset: only after a failure to connect
};

class FailoverClient {
 public:
  // Notes about each failover go to `log` ("gradctl: ..." lines).
  FailoverClient(FailoverPolicy policy, std::ostream& log);
  ~FailoverClient();
  FailoverClient(const FailoverClient&) = delete;
  FailoverClient& operator=(const FailoverClient&) = delete;

  // Connects to the first address that answers, in order. When none does:
  // kUnavailable naming every address tried; a refused token (or with one
  // address, any failure) as Client::Connect says it.
  Status Connect();

  // `request`'s response, as Client::Call, failing over as described above.
  // Other Error replies are returned as responses. When the request may
  // have reached a server and `resend` forbids resending it: kUnavailable,
  // saying that its outcome is unknown.
  Status Call(v1::Request& request, v1::Response* response, Resend resend);

  // The address in use (or to be tried next).
  const std::string& server() const { return policy_.servers[index_]; }
  void set_log(std::ostream& log) { log_ = &log; }

 private:
  using Clock = std::chrono::steady_clock;

  bool failover() const { return policy_.servers.size() > 1; }
  // Connects if not connected, moving on through the list on failure.
  Status EnsureConnected();
  // Whether the budget allows one more connection; sleeps the backoff at
  // the start of each round after the first.
  bool TakeAttempt();
  // Drops the connection, records and notes `why`, moves to the next address.
  void NoteFailure(const Status& why);
  // After a success: a fresh budget for the next failure.
  void ResetBudget();
  Status Exhausted() const;

  FailoverPolicy policy_;
  std::ostream* log_;
  std::unique_ptr<client::Client> client_;
  std::size_t index_ = 0;
  std::size_t attempts_ = 0;  // connections tried since the last success
  std::optional<Clock::time_point> first_failure_;
  std::chrono::nanoseconds backoff_;
  std::string failures_;  // since the last success, for the final message
  std::string note_;      // the last failure, noted on the log when another address is tried
};

}  // namespace gradientd::cli
