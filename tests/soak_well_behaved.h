// The soak tests' well-behaved clients: exactly-once producers, each
// pipelining on its own series with an exact reference of what was
// acknowledged, and queriers that check every reply against the producers'
// counts. A producer's or querier's state is written by its own thread;
// the atomics may be read by others while it runs, `acked` only after join.
#ifndef GRADIENTD_TESTS_SOAK_WELL_BEHAVED_H_
#define GRADIENTD_TESTS_SOAK_WELL_BEHAVED_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "client/client.h"
#include "soak_support.h"

namespace gradientd::soak {

__extension__ typedef __int128 Int128;  // exact reference sums

// Exact sums over points x = offset + k, y = j / 4 with integers k and j:
// the reference for the server's statistics, independent of its code.
struct ExactSums {
  Int128 n = 0, k = 0, j = 0, kk = 0, kj = 0;
  void Add(const ExactSums& o) {
    n += o.n;
    k += o.k;
    j += o.j;
    kk += o.kk;
    kj += o.kj;
  }
};

struct ProducerSpec {
  std::string series;
  std::string producer_id;
  double offset;   // x = offset + k (1.7e9: Unix-timestamp-like data)
  int64_t slope4;  // y ~ (slope4 * k + intercept4 + noise) / 4
  int64_t intercept4;
};

struct ProducerState {
  ProducerSpec spec;
  std::atomic<uint64_t> points_sent{0};   // raised before the batch is sent
  std::atomic<uint64_t> points_acked{0};  // raised once its ack is received
  std::atomic<uint64_t> batches_acked{0};
  std::atomic<uint64_t> duplicates_acked{0};
  std::atomic<bool> dropped{false};
  ExactSums acked;  // written by the producer thread only; read after join
};

using Producers = std::vector<std::unique_ptr<ProducerState>>;

// The kProducers producers, on the series soak-p0 .. soak-p3, each with its
// own offset and line.
Producers MakeProducers();

// Pipelines batches with up to kWindow unacknowledged until `stop`, then
// drains. Checks each ack exactly (the series is this producer's alone);
// any failure, a dropped connection included, is a problem: the server must
// never drop a well-behaved client.
void RunProducer(ProducerState& p, client::Client& c, uint64_t seed, const std::atomic<bool>& stop,
                 Problems& problems);

// Rounds of gradient + fit + list + a missing series, pipelined, until
// `stop`; every reply checked against the producers' counts. Counts
// "queriers"/"rounds" in `tally`.
void RunQuerier(Producers& producers, client::Client& c, uint64_t seed,
                const std::atomic<bool>& stop, Problems& problems, Tally& tally);

// Every acknowledged point counted exactly once: n exact, the line equal
// to the exact reference (gtest failures otherwise). Call after the
// producers' threads are joined.
void ExpectExactTotals(const Producers& producers, client::Client& fresh);

}  // namespace gradientd::soak

#endif  // GRADIENTD_TESTS_SOAK_WELL_BEHAVED_H_
