// `gradctl produce`: sends points from a CSV file, stdin or a synthetic line
// (point_source.h) in pipelined batches through an exactly-once Producer
// (producer.h), with optional progress queries and --save, then prints a
// summary with the series' fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "cli/command.h"
#include "cli/produce/point_source.h"
#include "cli/send_flags.h"
#include "client/client.h"

namespace gradientd::cli {

Command ProduceCommand();

struct ProduceConfig {
  std::string server;
  client::ConnectOptions connect;
  std::string series;
  bool json = false;
  std::size_t batch = 8192;
  std::size_t window = 16;
  uint64_t progress_every = 0;
  std::string source_description;  // for the summary
  ExactlyOnceFlags exactly_once;
  std::string save_path;  // --save; empty: none
};

// Sends the source's points and prints a summary (readable, or JSON with
// config.json) to `out`; diagnostics to `err`. Returns a gradctl exit code.
int RunProduce(const ProduceConfig& config, PointSource& source, std::ostream& out,
               std::ostream& err);

}  // namespace gradientd::cli
