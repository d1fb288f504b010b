// `gradctl produce`: sends points from a CSV file, stdin or a synthetic line
// (point_source.h) in pipelined batches through an exactly-once Producer
// (producer.h), with optional progress queries and --save, then prints a
// summary with the series' fit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/command.h"
#include "cli/produce/point_source.h"
#include "cli/send_flags.h"
#include "client/client.h"

namespace gradientd::cli {

Command ProduceCommand();

// produce --event-time: what each batch says about when its points happened.
struct EventTimeFlag {
  enum class Kind {
    kNow,       // no event time: the server stamps the batch when it receives it
    kXSeconds,  // the batch's last x, read as seconds since the Unix epoch
    kFixed,     // `fixed_unix_nanos` on every batch
  };
  Kind kind = Kind::kNow;
  int64_t fixed_unix_nanos = 0;
};

// "now", "x-seconds" or an integer of nanoseconds since the Unix epoch.
Status ParseEventTimeFlag(std::string_view text, EventTimeFlag* flag);

// The event time of a batch whose last x is `last_x` (kXSeconds);
// kInvalidArgument when that x is not a time (not finite, or beyond the
// year 2262 either way, where int64 nanoseconds end).
Status EventTimeOfBatch(const EventTimeFlag& flag, double last_x,
                        std::optional<int64_t>* event_time_unix_nanos);

struct ProduceConfig {
  std::string server;  // HOST:PORT[,HOST:PORT...]
  std::chrono::nanoseconds failover_timeout = std::chrono::seconds(30);
  client::ConnectOptions connect;
  std::string series;
  bool json = false;
  std::size_t batch = 8192;
  std::size_t window = 16;
  uint64_t progress_every = 0;
  std::string source_description;  // for the summary
  ExactlyOnceFlags exactly_once;
  std::string save_path;  // --save; empty: none
  EventTimeFlag event_time;
};

// Sends the source's points and prints a summary (readable, or JSON with
// config.json) to `out`; diagnostics to `err`. Returns a gradctl exit code.
int RunProduce(const ProduceConfig& config, PointSource& source, std::ostream& out,
               std::ostream& err);

}  // namespace gradientd::cli
