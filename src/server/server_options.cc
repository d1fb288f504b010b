#include "server/server_options.h"

#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <cstdlib>
#include <sstream>
#include <tuple>
#include <utility>

#include "util/byte_size.h"
#include "util/duration.h"

namespace gradientd::server {
namespace po = boost::program_options;

namespace {

using util::ParseByteSize;
using util::ParseDuration;

constexpr std::size_t kMaxFrameLimit = 1u << 30;  // protobuf parses at most 2 GiB
constexpr std::size_t kMaxSeriesNameLimit = 65536;

}  // namespace

Status RaiseOpenFileLimit(uint64_t* limit) {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) {
    return Status::Internal("cannot read the open-file limit (getrlimit)");
  }
  if (files.rlim_cur < files.rlim_max) {
    rlimit raised = files;
    raised.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) files = raised;
  }
  *limit = static_cast<uint64_t>(files.rlim_cur);
  return Status::Ok();
}

Status CheckOpenFileLimit(std::size_t max_connections, uint64_t limit) {
  const uint64_t needed =
      uint64_t{max_connections} + Server::kRefusalAllowance + kReservedDescriptors;
  if (needed <= limit) return Status::Ok();
  return Status::InvalidArgument(
      "--max-connections " + std::to_string(max_connections) + " needs " + std::to_string(needed) +
      " descriptors (" + std::to_string(Server::kRefusalAllowance) + " more for refusals and " +
      std::to_string(kReservedDescriptors) +
      " for the journal, snapshots and recording), but the limit is " + std::to_string(limit) +
      " open files: raise it (ulimit -n, LimitNOFILE= for systemd) or lower --max-connections "
      "to at most " +
      std::to_string(limit > needed - max_connections ? limit - (needed - max_connections) : 0));
}

std::string DefaultDataDir() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state != 0) {
    return std::string(state) + "/gradientd";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != 0) {
    return std::string(home) + "/.local/state/gradientd";
  }
  return "gradientd-data";
}

Status ParseCommandLine(int argc, const char* const* argv, CommandLine* command_line) {
  ServerOptions& options = command_line->server;
  std::string max_frame = "16MiB";
  std::string data_dir = DefaultDataDir();
  std::string fsync = "always";
  std::string fsync_interval = "100ms";
  std::string checkpoint_interval = "5m";
  std::string checkpoint_bytes = "64MiB";
  std::string max_queued = "4MiB";
  std::string idle_timeout = "5m";
  std::string request_timeout = "30s";
  std::string write_timeout = "30s";
  std::string producer_expiry = "1h";
  std::string max_step_time = "100ms";
  po::options_description flags(
      "Usage: gradientd [OPTIONS]\n\n"
      "Streams of (x, y) points in, the gradient of the mean-squared-error loss of a\n"
      "line over every point seen so far out, in O(1). Prints one line\n"
      "'gradientd listening on HOST:PORT' to stdout once it accepts connections;\n"
      "SIGINT or SIGTERM shut it down gracefully. State is durable in the data\n"
      "directory (journal + snapshots) unless --in-memory. Without --auth-file anyone\n"
      "who can connect may do everything, so the default --listen is loopback only.\n\n"
      "Options",
      100, 50);
  flags.add_options()("help,h", "print this help and exit")("version",
                                                            "print the version and exit")(
      "listen", po::value(&options.listen)->default_value(options.listen),
      "HOST:PORT to accept connections on; port 0 picks a free port, which the "
      "listening line reports; [ADDR]:PORT for IPv6")(
      "auth-file", po::value(&command_line->auth_file)->value_name("FILE"),
      "require a token: each connection's first request is a Hello whose token FILE lists "
      "(lines 'NAME ROLE[,ROLE...] TOKEN'; roles produce, query, admin); other requests get "
      "UNAUTHENTICATED, and those the roles do not allow PERMISSION_DENIED. SIGHUP re-reads "
      "FILE (a bad file keeps the previous tokens). See README, Access control")(
      "threads", po::value(&options.threads)->default_value(0),
      "ingest threads; 0 = one per core. Connections start on one more thread, which "
      "answers queries; a connection moves to an ingest thread at its first ingest, step, "
      "configure or reset")(
      "max-frame-bytes", po::value(&max_frame)->default_value(max_frame),
      "largest request frame accepted (B, KiB, MiB, GiB); a larger declared size "
      "gets a RESOURCE_EXHAUSTED error and the connection is closed")(
      "data-dir", po::value(&data_dir)->default_value(data_dir),
      "directory for the durable state (journal, snapshots, LOCK); created if missing; one "
      "gradientd per directory. Default: $XDG_STATE_HOME/gradientd, else "
      "$HOME/.local/state/gradientd")("in-memory", "keep no durable state: a restart starts empty")(
      "fsync", po::value(&fsync)->default_value(fsync),
      "always: acknowledge a change after the fsync that covers it (group commit); "
      "interval: acknowledge after write(), fsync every --fsync-interval (an OS crash or "
      "power loss can lose that much acknowledged data; a gradientd crash loses nothing); "
      "never: acknowledge after write(), the OS flushes when it likes")(
      "fsync-interval", po::value(&fsync_interval)->default_value(fsync_interval),
      "with --fsync interval: how often to fsync (ms, s, m, h)")(
      "checkpoint-interval", po::value(&checkpoint_interval)->default_value(checkpoint_interval),
      "write a snapshot and drop the journal it covers this often (and on shutdown)")(
      "checkpoint-bytes", po::value(&checkpoint_bytes)->default_value(checkpoint_bytes),
      "also write one once the journal has grown by this much")(
      "max-series",
      po::value(&command_line->limits.max_series)->default_value(command_line->limits.max_series),
      "series the server will hold; creating one more is refused with RESOURCE_EXHAUSTED")(
      "max-series-name-bytes",
      po::value(&command_line->limits.max_series_name_bytes)
          ->default_value(command_line->limits.max_series_name_bytes),
      "longest series name, at most 65536 (UTF-8 without control characters)")(
      "max-batch-points",
      po::value(&command_line->limits.max_batch_points)
          ->default_value(command_line->limits.max_batch_points),
      "most points in one batch")(
      "max-producers",
      po::value(&command_line->limits.max_producers)
          ->default_value(command_line->limits.max_producers),
      "exactly-once producers remembered at once (about 400 bytes of memory and 160 of "
      "snapshot each); a new one while all are unexpired gets RESOURCE_EXHAUSTED")(
      "producer-expiry", po::value(&producer_expiry)->default_value(producer_expiry),
      "forget a producer once none of its batches has been applied for this long (1s to "
      "8760h); a retry of one of its batches after that counts again")(
      "max-step-time", po::value(&max_step_time)->default_value(max_step_time),
      "a step request stops after this long (1ms to 60s) and reports the iterations run")(
      "max-connections",
      po::value(&options.max_connections)->default_value(options.max_connections),
      "connections served at once, counted from accept (TLS handshake included); more get a "
      "RESOURCE_EXHAUSTED error and are closed (16 at a time; beyond, closed at once). Must fit "
      "in the open-file limit (raised to the hard limit at start) with 16 + 64 to spare")(
      "max-queued-bytes", po::value(&max_queued)->default_value(max_queued),
      "responses queued for one connection before it stops being read (back-pressure for "
      "clients that pipeline faster than they read)")(
      "idle-timeout", po::value(&idle_timeout)->default_value(idle_timeout),
      "close a connection that sends nothing for this long between requests")(
      "request-timeout", po::value(&request_timeout)->default_value(request_timeout),
      "close a connection whose request frame (or TLS handshake) is not complete this long "
      "after its first byte")("write-timeout",
                              po::value(&write_timeout)->default_value(write_timeout),
                              "close a connection whose responses cannot be written for this long")(
      "record", po::value(&command_line->record_path),
      "append every accepted batch to this recording file (see gradctl replay, inspect)")(
      "tls-cert", po::value(&options.tls.cert_file)->value_name("FILE"),
      "serve TLS (1.2 or newer) only, with this PEM certificate chain (leaf first); needs "
      "--tls-key. The handshake is bounded by --request-timeout")(
      "tls-key", po::value(&options.tls.key_file)->value_name("FILE"),
      "the PEM private key (unencrypted) of the --tls-cert certificate")(
      "tls-client-ca", po::value(&options.tls.client_ca_file)->value_name("FILE"),
      "require every client to present a certificate signed by a CA in this PEM file");
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
  std::size_t queued = 0;
  if (Status s = ParseByteSize(max_queued, &queued); !s.ok() || queued == 0) {
    return Status::InvalidArgument("--max-queued-bytes: " +
                                   (s.ok() ? std::string("must be positive") : s.message()));
  }
  options.max_queued_bytes = queued;
  if (command_line->limits.max_series_name_bytes == 0 ||
      command_line->limits.max_batch_points == 0) {
    return Status::InvalidArgument(
        "--max-series-name-bytes and --max-batch-points must be positive");
  }
  // Names end up in journal records and snapshot records, which are bounded
  // (storage::kMaxJournalRecordBytes) so that none nears protobuf's limits.
  if (command_line->limits.max_series_name_bytes > kMaxSeriesNameLimit) {
    return Status::InvalidArgument("--max-series-name-bytes must be at most " +
                                   std::to_string(kMaxSeriesNameLimit) + ", got " +
                                   std::to_string(command_line->limits.max_series_name_bytes));
  }
  if (command_line->limits.max_producers == 0) {
    return Status::InvalidArgument("--max-producers must be positive");
  }
  for (const auto& [flag, text, target, least, most, range] :
       {std::tuple{"--producer-expiry", &producer_expiry, &command_line->limits.producer_expiry,
                   std::chrono::milliseconds(std::chrono::seconds(1)),
                   std::chrono::milliseconds(std::chrono::hours(24 * 365)),
                   "1s and 8760h (365 days)"},
        std::tuple{"--max-step-time", &max_step_time, &command_line->limits.max_step_time,
                   std::chrono::milliseconds(1),
                   std::chrono::milliseconds(std::chrono::seconds(60)), "1ms and 60s"}}) {
    std::chrono::milliseconds value{};
    if (Status s = ParseDuration(*text, &value); !s.ok() || value < least || value > most) {
      return Status::InvalidArgument(
          std::string(flag) + ": " +
          (s.ok() ? std::string("must be between ") + range + ", got " + *text : s.message()));
    }
    *target = value;
  }
  if (options.max_connections == 0) {
    return Status::InvalidArgument("--max-connections must be positive");
  }
  for (const auto& [flag, text, target] :
       {std::tuple{"--idle-timeout", &idle_timeout, &options.idle_timeout},
        std::tuple{"--request-timeout", &request_timeout, &options.request_timeout},
        std::tuple{"--write-timeout", &write_timeout, &options.write_timeout}}) {
    if (Status s = ParseDuration(*text, target); !s.ok() || target->count() <= 0) {
      return Status::InvalidArgument(std::string(flag) + ": " +
                                     (s.ok() ? std::string("must be positive") : s.message()));
    }
  }
  if (vm.count("auth-file") && command_line->auth_file.empty()) {
    return Status::InvalidArgument("--auth-file needs a FILE");
  }
  if (vm.count("tls-cert") != vm.count("tls-key")) {
    return Status::InvalidArgument(vm.count("tls-cert") ? "--tls-cert needs --tls-key"
                                                        : "--tls-key needs --tls-cert");
  }
  if (vm.count("tls-client-ca") && !vm.count("tls-cert")) {
    return Status::InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (vm.count("tls-cert") && (options.tls.cert_file.empty() || options.tls.key_file.empty() ||
                               (vm.count("tls-client-ca") && options.tls.client_ca_file.empty()))) {
    return Status::InvalidArgument("--tls-cert, --tls-key and --tls-client-ca need a FILE");
  }
  command_line->in_memory = vm.count("in-memory") > 0;
  durable::DataDirectoryOptions& data = command_line->data;
  data.path = data_dir;
  if (data_dir.empty()) return Status::InvalidArgument("--data-dir must not be empty");
  if (Status s = storage::ParseFsyncMode(fsync, &data.journal.fsync); !s.ok()) {
    return Status::InvalidArgument("--fsync: " + s.message());
  }
  if (Status s = ParseDuration(fsync_interval, &data.journal.fsync_interval); !s.ok()) {
    return Status::InvalidArgument("--fsync-interval: " + s.message());
  }
  if (data.journal.fsync_interval.count() <= 0) {
    return Status::InvalidArgument("--fsync-interval must be positive");
  }
  if (Status s = ParseDuration(checkpoint_interval, &data.checkpoint_interval); !s.ok()) {
    return Status::InvalidArgument("--checkpoint-interval: " + s.message());
  }
  std::size_t checkpoint_size = 0;
  if (Status s = ParseByteSize(checkpoint_bytes, &checkpoint_size); !s.ok()) {
    return Status::InvalidArgument("--checkpoint-bytes: " + s.message());
  }
  data.checkpoint_bytes = checkpoint_size;
  if (options.threads > 1024) {
    return Status::InvalidArgument("--threads must be at most 1024");
  }
  return Status::Ok();
}

}  // namespace gradientd::server
