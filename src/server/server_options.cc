#include "server/server_options.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <sstream>
#include <utility>

namespace gradientd::server {
namespace po = boost::program_options;

namespace {

constexpr std::size_t kMaxFrameLimit = 1u << 30;  // protobuf parses at most 2 GiB

}  // namespace

Status ParseByteSize(std::string_view text, std::size_t* bytes) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a size (examples: 65536, 64KiB, 16MiB)");
  }
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1}, {"B", 1}, {"KiB", 1u << 10}, {"MiB", 1u << 20}, {"GiB", 1u << 30}};
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    if (value > UINT64_MAX / scale) break;
    *bytes = static_cast<std::size_t>(value * scale);
    return Status::Ok();
  }
  return Status::InvalidArgument("'" + std::string(text) +
                                 "' is not a size (units: B, KiB, MiB, GiB)");
}

Status ParseCommandLine(int argc, const char* const* argv, CommandLine* command_line) {
  ServerOptions& options = command_line->server;
  std::string max_frame = "16MiB";
  po::options_description flags(
      "Usage: gradientd [OPTIONS]\n\n"
      "Streams of (x, y) points in, the gradient of the mean-squared-error loss of a\n"
      "line over every point seen so far out, in O(1). Prints one line\n"
      "'gradientd listening on HOST:PORT' to stdout once it accepts connections;\n"
      "SIGINT or SIGTERM shut it down gracefully. State is kept in memory.\n\n"
      "Options",
      100, 50);
  flags.add_options()("help,h", "print this help and exit")("version",
                                                            "print the version and exit")(
      "listen", po::value(&options.listen)->default_value(options.listen),
      "HOST:PORT to accept connections on; port 0 picks a free port, which the "
      "listening line reports; [ADDR]:PORT for IPv6")(
      "threads", po::value(&options.threads)->default_value(0),
      "threads serving connections; 0 = one per core")(
      "max-frame-bytes", po::value(&max_frame)->default_value(max_frame),
      "largest request frame accepted (B, KiB, MiB, GiB); a larger declared size "
      "gets a RESOURCE_EXHAUSTED error and the connection is closed");
  std::ostringstream usage;
  usage << flags;
  command_line->usage = usage.str();

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(flags).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Status::InvalidArgument(e.what());
  }
  command_line->help = vm.count("help") > 0;
  command_line->version = vm.count("version") > 0;
  std::size_t bytes = 0;
  if (Status s = ParseByteSize(max_frame, &bytes); !s.ok()) {
    return Status::InvalidArgument("--max-frame-bytes: " + s.message());
  }
  if (bytes == 0 || bytes > kMaxFrameLimit) {
    return Status::InvalidArgument("--max-frame-bytes must be between 1 and 1GiB, got " +
                                   max_frame);
  }
  options.max_frame_bytes = bytes;
  if (options.threads > 1024) {
    return Status::InvalidArgument("--threads must be at most 1024");
  }
  return Status::Ok();
}

}  // namespace gradientd::server
