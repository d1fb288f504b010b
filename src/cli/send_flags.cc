#include "cli/send_flags.h"

#include <string>

#include "util/duration.h"

namespace gradientd::cli {

namespace po = boost::program_options;

void AddExactlyOnceOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("producer-id", po::value<std::string>()->value_name("ID"),
       "exactly-once: the producer id every batch carries (default: a new random one, printed "
       "at the start). The server applies each (producer id, sequence) at most once, so "
       "sending the same input again with the same id skips the batches already applied")
      ("first-sequence", po::value<int64_t>()->default_value(1)->value_name("N"),
       "exactly-once: the first batch's sequence number; the next get N+1, N+2, ... To add "
       "new data under an id used before, start above its last sequence")
      ("retry-for", po::value<std::string>()->default_value("60s")->value_name("DURATION"),
       "when the connection is lost (or cannot be made, or a batch is answered UNAVAILABLE), "
       "reconnect with backoff (50ms doubling to 2s; with several --server addresses to the "
       "next one) and resend the unacknowledged batches, for at most this long (500ms, 30s, "
       "5m, ...; 0 = fail at once). Default: 60s with one --server address, "
       "--failover-timeout with several");
  // clang-format on
}

Status ExactlyOnceFlagsFromVm(const po::variables_map& vm, ExactlyOnceFlags* flags) {
  *flags = ExactlyOnceFlags{};
  if (vm.count("producer-id")) {
    flags->producer_id = vm["producer-id"].as<std::string>();
    if (flags->producer_id.empty()) return Status::InvalidArgument("--producer-id is empty");
    if (flags->producer_id.size() > 128) {
      return Status::InvalidArgument("--producer-id is longer than 128 bytes");
    }
    for (const char c : flags->producer_id) {
      if (c < 0x21 || c > 0x7e) {
        return Status::InvalidArgument(
            "--producer-id must be printable ASCII without spaces (0x21-0x7E)");
      }
    }
  }
  const int64_t first_sequence = vm["first-sequence"].as<int64_t>();
  if (first_sequence < 1) return Status::InvalidArgument("--first-sequence must be >= 1");
  flags->first_sequence = static_cast<uint64_t>(first_sequence);
  if (Status s = util::ParseDuration(vm["retry-for"].as<std::string>(), &flags->retry_for);
      !s.ok()) {
    return Status::InvalidArgument("--retry-for: " + s.message());
  }
  flags->retry_for_given = !vm["retry-for"].defaulted();
  return Status::Ok();
}

Status BatchAndWindowFromVm(const po::variables_map& vm, std::size_t* batch, std::size_t* window) {
  const int64_t batch_points = vm["batch"].as<int64_t>();
  if (batch_points < 1 || batch_points > kMaxBatchPoints) {
    return Status::InvalidArgument("--batch must be between 1 and " +
                                   std::to_string(kMaxBatchPoints));
  }
  const int64_t window_batches = vm["window"].as<int64_t>();
  if (window_batches < 1 || window_batches > kMaxWindow) {
    return Status::InvalidArgument("--window must be between 1 and " + std::to_string(kMaxWindow));
  }
  *batch = static_cast<std::size_t>(batch_points);
  *window = static_cast<std::size_t>(window_batches);
  return Status::Ok();
}

}  // namespace gradientd::cli
