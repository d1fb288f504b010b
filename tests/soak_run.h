// One soak run's shared phases, for both soak tests: the server's limit
// flags, the well-behaved clients connected first, their threads, the
// hostile loops, the fresh connection afterwards. A SoakRun is driven by
// the test's thread; the threads it starts share `stop`, `problems` and
// `tally` (thread-safe) and are joined by StopAndJoin, before the
// producers' exact sums are read.
#ifndef GRADIENTD_TESTS_SOAK_RUN_H_
#define GRADIENTD_TESTS_SOAK_RUN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "soak_support.h"
#include "soak_well_behaved.h"

namespace gradientd::soak {

// gradientd's flags for the limits above, in memory, on 127.0.0.1:0.
std::vector<std::string> LimitFlags();

struct SoakRun {
  Producers producers = MakeProducers();
  std::vector<std::unique_ptr<client::Client>> clients;  // producers', then queriers'
  const uint64_t seed = std::random_device()();
  std::atomic<bool> stop{false};
  Problems problems;
  Tally tally;
  std::vector<std::thread> threads;

  // Connects the kWellBehaved clients, producers with `produce`, queriers
  // with `query` (gtest fatal failure if one cannot connect).
  void ConnectWellBehaved(const std::string& address, const client::ConnectOptions& produce,
                          const client::ConnectOptions& query);
  // Starts the producers and waits (bounded) until each has a batch
  // acknowledged, as the queriers expect every producer series to exist.
  // Returns whether they all have (else a problem is added).
  bool StartProducers();
  void StartQueriers();
  // A thread running `action` until stop, pausing `pause` plus 0 to
  // `jitter_ms` - 1 ms after each; its seed is the run's plus 200, 201, ...
  void StartLoop(std::function<void(std::mt19937_64&)> action, Clock::duration pause,
                 int jitter_ms);
  // Sets stop, joins the threads, closes the well-behaved connections.
  void StopAndJoin();

  uint64_t PointsAcked() const;

 private:
  uint64_t next_loop_seed_ = 200;
};

// A fresh connection with `options` that answers a List, within
// kPatience; retries a refusal at the limit, and with `retry_any` every
// failure. Returns "" or the last problem; counts the attempts.
std::string AnswerFreshConnection(const std::string& address, const client::ConnectOptions& options,
                                  bool retry_any, std::unique_ptr<client::Client>* fresh,
                                  int* attempts);

}  // namespace gradientd::soak

#endif  // GRADIENTD_TESTS_SOAK_RUN_H_
