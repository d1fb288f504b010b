// The flags of the commands that send points, `gradctl produce` and `gradctl
// replay`: the exactly-once ones (--producer-id, --first-sequence,
// --retry-for) and the bounds of --batch and --window.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace gradientd::cli {

void AddExactlyOnceOptions(boost::program_options::options_description* options);

struct ExactlyOnceFlags {
  std::string producer_id;  // empty: generate one
  uint64_t first_sequence = 1;
  std::chrono::nanoseconds retry_for = std::chrono::seconds(60);
  bool retry_for_given = false;  // else, with several --server addresses, --failover-timeout
};

// Reads the flags added by AddExactlyOnceOptions. A returned error is a usage
// error naming the flag.
Status ExactlyOnceFlagsFromVm(const boost::program_options::variables_map& vm,
                              ExactlyOnceFlags* flags);

// A PointBatch of this many points stays well under the server's default
// 16 MiB frame limit (each point is two packed doubles, 16 bytes).
inline constexpr int64_t kMaxBatchPoints = 1'000'000;
inline constexpr int64_t kMaxWindow = 1'000'000;

// Reads --batch and --window (each command adds them with its own help
// text). A returned error is a usage error naming the flag.
Status BatchAndWindowFromVm(const boost::program_options::variables_map& vm, std::size_t* batch,
                            std::size_t* window);

}  // namespace gradientd::cli
