#include "app/command_line.h"

#include <boost/program_options.hpp>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <variant>

#include "app/nats_credentials.h"
#include "jetstream/shard_streams.h"
#include "util/byte_size.h"
#include "util/duration.h"

namespace gradientd::app {
namespace po = boost::program_options;
using std::chrono::milliseconds;

namespace {

// How a row's text becomes its target's value, and the unit of its bounds.
enum class Kind {
  kSwitch,    // present or not
  kText,      // bounds: length
  kCount,     // parsed by program_options; bounds: the number
  kBytes,     // util::ParseByteSize; bounds: bytes
  kDuration,  // util::ParseDuration to milliseconds; bounds: ms
  kFsyncMode,
};

// (uint64_t fields, such as checkpoint_bytes, are std::size_t here.)
static_assert(std::is_same_v<uint64_t, std::size_t>);
using Field = std::variant<bool*, std::string*, unsigned*, std::size_t*, milliseconds*,
                           std::chrono::nanoseconds*, storage::FsyncMode*>;

// One option. Messages: "{flag}" stands for --NAME, "{}" for the value as
// given, "{least}" and "{most}" for the bounds in the row's unit.
struct Bounds {
  uint64_t least = 0;
  uint64_t most = std::numeric_limits<uint64_t>::max();
  const char* too_small = nullptr;
  const char* too_large = nullptr;  // nullptr: the too_small message
  uint64_t multiple_of = 1;         // too_small's message too
};
struct Row {
  const char* name;  // program_options' "NAME[,SHORT]"
  Kind kind;
  Field (*field)(CommandLine&);
  const char* help;
  Bounds bounds = {};
  const char* value_name = nullptr;  // "FILE"; text rows show their default unless empty
};

constexpr uint64_t kMaxFrameLimit = 1u << 30;  // protobuf parses at most 2 GiB
// Names end up in journal and snapshot records, which are bounded
// (storage::kMaxJournalRecordBytes) so that none nears protobuf's limits.
constexpr uint64_t kMaxSeriesNameLimit = 65536;
constexpr uint64_t kHour = 3'600'000;  // in ms

// clang-format off
const Row kRows[] = {
  {"help,h", Kind::kSwitch, [](CommandLine& c) -> Field { return &c.help; },
   "print this help and exit"},
  {"version", Kind::kSwitch, [](CommandLine& c) -> Field { return &c.version; },
   "print the version and exit"},
  {"listen", Kind::kText, [](CommandLine& c) -> Field { return &c.node.server.listen; },
   "HOST:PORT to accept connections on; port 0 picks a free port, which the listening line "
   "reports; [ADDR]:PORT for IPv6"},
  {"http-listen", Kind::kText, [](CommandLine& c) -> Field { return &c.node.http.listen; },
   "HOST:PORT for HTTP (health, metrics, the read-only JSON API; README, HTTP API), or off. "
   "Default: --listen's host at its port + 1 (127.0.0.1:7879), port 0 when --listen's is 0. "
   "Prints 'gradientd http listening on HOST:PORT'. Same --auth-file and TLS as the protocol",
   {.least = 1, .too_small = "{flag} needs HOST:PORT or off"}, "HOST:PORT"},
  {"http-max-connections", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.http.max_connections; },
   "HTTP connections served at once; more are answered 503 and closed (4 at a time; beyond, "
   "closed at once)",
   {.least = 1, .too_small = "{flag} must be positive"}},
  {"auth-file", Kind::kText, [](CommandLine& c) -> Field { return &c.node.auth_file; },
   "require a token: each connection's first request is a Hello whose token FILE lists "
   "(lines 'NAME ROLE[,ROLE...] TOKEN'; roles produce, query, admin); other requests get "
   "UNAUTHENTICATED, and those the roles do not allow PERMISSION_DENIED. SIGHUP re-reads "
   "FILE (a bad file keeps the previous tokens). See README, Access control",
   {.least = 1, .too_small = "{flag} needs a FILE"}, "FILE"},
  {"threads", Kind::kCount, [](CommandLine& c) -> Field { return &c.node.server.threads; },
   "ingest threads; 0 = one per core. Connections start on one more thread, which answers "
   "queries; a connection moves to an ingest thread at its first ingest, step, configure or "
   "reset",
   {.most = 1024, .too_small = "{flag} must be at most {most}"}},
  {"max-frame-bytes", Kind::kBytes,
   [](CommandLine& c) -> Field { return &c.node.server.max_frame_bytes; },
   "largest request frame accepted (B, KiB, MiB, GiB); a larger declared size gets a "
   "RESOURCE_EXHAUSTED error and the connection is closed",
   {.least = 1, .most = kMaxFrameLimit,
    .too_small = "{flag} must be between 1 and {most}, got {}"}},
  {"data-dir", Kind::kText, [](CommandLine& c) -> Field { return &c.node.data.path; },
   "directory for the durable state (journal, snapshots, LOCK); created if missing; one "
   "gradientd per directory. Default: $XDG_STATE_HOME/gradientd, else "
   "$HOME/.local/state/gradientd",
   {.least = 1, .too_small = "{flag} must not be empty"}},
  {"in-memory", Kind::kSwitch, [](CommandLine& c) -> Field { return &c.node.in_memory; },
   "keep no durable state: a restart starts empty"},
  {"fsync", Kind::kFsyncMode, [](CommandLine& c) -> Field { return &c.node.data.journal.fsync; },
   "always: acknowledge a change after the fsync that covers it (group commit); interval: "
   "acknowledge after write(), fsync every --fsync-interval (an OS crash or power loss can "
   "lose that much acknowledged data; a gradientd crash loses nothing); never: acknowledge "
   "after write(), the OS flushes when it likes"},
  {"fsync-interval", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.data.journal.fsync_interval; },
   "with --fsync interval: how often to fsync (ms, s, m, h)",
   {.least = 1, .too_small = "{flag} must be positive"}},
  {"checkpoint-interval", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.data.checkpoint_interval; },
   "write a snapshot and drop the journal it covers this often (and on shutdown)"},
  {"checkpoint-bytes", Kind::kBytes,
   [](CommandLine& c) -> Field { return &c.node.data.checkpoint_bytes; },
   "also write one once the journal has grown by this much"},
  {"max-series", Kind::kCount, [](CommandLine& c) -> Field { return &c.node.limits.max_series; },
   "series the server will hold; creating one more is refused with RESOURCE_EXHAUSTED"},
  {"max-series-name-bytes", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.limits.max_series_name_bytes; },
   "longest series name, at most 65536 (UTF-8 without control characters)",
   {.least = 1, .most = kMaxSeriesNameLimit,
   .too_small = "--max-series-name-bytes and --max-batch-points must be positive",
   .too_large = "{flag} must be at most {most}, got {}"}},
  {"max-batch-points", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.limits.max_batch_points; },
   "most points in one batch",
   {.least = 1,
    .too_small = "--max-series-name-bytes and --max-batch-points must be positive"}},
  {"max-producers", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.limits.max_producers; },
   "exactly-once producers remembered at once (about 400 bytes of memory and 160 of snapshot "
   "each, plus --producer-window/8 while one has a hole in its window); a new one while all "
   "are unexpired gets RESOURCE_EXHAUSTED",
   {.least = 1, .too_small = "{flag} must be positive"}},
  {"producer-window", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.limits.producer_window; },
   "sequences below a producer's highest whose batches are told apart, so that a retry "
   "landing after later batches is applied once; one further below is taken as applied "
   "(a producer needs no more unacknowledged batches than this). Costs up to N/8 bytes per "
   "producer while one of them is missing",
   {.least = 64, .most = 1 << 20, .too_small = "{flag} must be a multiple of 64 between {least} "
   "and {most}, got {}", .multiple_of = 64}},
  {"producer-expiry", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.limits.producer_expiry; },
   "forget a producer once none of its batches has been applied for this long (1s to 8760h); "
   "a retry of one of its batches after that counts again",
   {.least = 1000, .most = 8760 * kHour,
   .too_small = "{flag}: must be between {least} and {most} (365 days), got {}"}},
  {"max-step-time", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.limits.max_step_time; },
   "a step request stops after this long (1ms to 60s) and reports the iterations run",
   {.least = 1, .most = 60'000,
    .too_small = "{flag}: must be between 1ms and 60s, got {}"}},
  {"max-future-skew", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.limits.max_future_skew; },
   "refuse (INVALID_ARGUMENT) a batch whose event time is more than this ahead of the "
   "server's clock (0 to 8760h); a batch without one is stamped with its receive time, and "
   "one older than a window still counts in the other views",
   {.most = 8760 * kHour, .too_small = "{flag}: must be at most {most} (365 days), got {}"}},
  {"max-window-memory", Kind::kBytes,
   [](CommandLine& c) -> Field { return &c.node.limits.max_window_bytes; },
   "heap all series' sliding windows may hold together (a 60-bucket window holds 8,672 bytes, "
   "a 4096-bucket one 557,056); a configure that would pass it gets RESOURCE_EXHAUSTED"},
  {"max-connections", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.server.max_connections; },
   "connections served at once, counted from accept (TLS handshake included); more get a "
   "RESOURCE_EXHAUSTED error and are closed (16 at a time; beyond, closed at once). Must fit "
   "in the open-file limit (raised to the hard limit at start) with 16 + 64 to spare",
   {.least = 1, .too_small = "{flag} must be positive"}},
  {"max-queued-bytes", Kind::kBytes,
   [](CommandLine& c) -> Field { return &c.node.server.max_queued_bytes; },
   "responses queued for one connection before it stops being read (back-pressure for "
   "clients that pipeline faster than they read)",
   {.least = 1, .too_small = "{flag}: must be positive"}},
  {"idle-timeout", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.server.idle_timeout; },
   "close a connection that sends nothing for this long between requests",
   {.least = 1, .too_small = "{flag}: must be positive"}},
  {"request-timeout", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.server.request_timeout; },
   "close a connection whose request frame (or TLS handshake) is not complete this long "
   "after its first byte",
   {.least = 1, .too_small = "{flag}: must be positive"}},
  {"write-timeout", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.server.write_timeout; },
   "close a connection whose responses cannot be written for this long",
   {.least = 1, .too_small = "{flag}: must be positive"}},
  {"record", Kind::kText, [](CommandLine& c) -> Field { return &c.node.record_path; },
   "append every accepted batch to this recording file (see gradctl replay, inspect)"},
  {"tls-cert", Kind::kText, [](CommandLine& c) -> Field { return &c.node.server.tls.cert_file; },
   "serve TLS (1.2 or newer) only, with this PEM certificate chain (leaf first); needs "
   "--tls-key. The handshake is bounded by --request-timeout", {}, "FILE"},
  {"tls-key", Kind::kText, [](CommandLine& c) -> Field { return &c.node.server.tls.key_file; },
   "the PEM private key (unencrypted) of the --tls-cert certificate", {}, "FILE"},
  {"tls-client-ca", Kind::kText,
   [](CommandLine& c) -> Field { return &c.node.server.tls.client_ca_file; },
   "require every client to present a certificate signed by a CA in this PEM file", {}, "FILE"},
  {"cluster", Kind::kText, [](CommandLine& c) -> Field { return &c.cluster_urls; },
   "be a node of the cluster whose log is on these NATS JetStream servers (nats://HOST:PORT, "
   "comma-separated; any one reachable suffices): every node holds and answers every series; "
   "the state lives in the cluster's shard streams, not in a data directory. See README, "
   "Cluster", {.least = 1, .too_small = "{flag} needs NATS URLS"}, "URLS"},
  {"cluster-name", Kind::kText,
   [](CommandLine& c) -> Field { return &c.node.cluster.streams.name; },
   "with --cluster: the cluster's name; its shard streams are GRADIENTD_NAME_0, _1, ... "
   "([A-Za-z0-9_-], 1 to 32 bytes)"},
  {"cluster-shards", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.cluster.streams.shards; },
   "with --cluster: the shard streams (a series' shard is a hash of its name), fixed when "
   "the first node creates the cluster; every node must give the same",
   {.least = 1, .most = 256, .too_small = "{flag} must be between {least} and {most}, got {}"}},
  {"cluster-replicas", Kind::kCount,
   [](CommandLine& c) -> Field { return &c.node.cluster.streams.replicas; },
   "with --cluster: the NATS servers that store each shard stream (a change is acknowledged "
   "once a majority has it), fixed at creation; every node must give the same",
   {.least = 1, .most = 5, .too_small = "{flag} must be between {least} and {most}, got {}"}},
  {"cluster-timeout", Kind::kDuration,
   [](CommandLine& c) -> Field { return &c.node.cluster.decide_timeout; },
   "with --cluster: how long a change waits to be stored by the cluster's log and applied "
   "here (through a NATS leader election: 4 to 9 s) before it gets UNAVAILABLE",
   {.least = 100, .most = 10 * 60'000,
    .too_small = "{flag}: must be between {least} and {most}, got {}"}},
  {"cluster-ca", Kind::kText,
   [](CommandLine& c) -> Field { return &c.node.cluster.streams.security.ca_file; },
   "with --cluster: connect to NATS over TLS and verify its servers' certificates against "
   "the CAs in this PEM file (tls:// URLs also mean TLS)",
   {.least = 1, .too_small = "{flag} needs a FILE"}, "FILE"},
  {"cluster-cert", Kind::kText,
   [](CommandLine& c) -> Field { return &c.node.cluster.streams.security.cert_file; },
   "with --cluster: the PEM client certificate chain to present to NATS servers that verify "
   "clients (TLS verify: true); needs --cluster-key",
   {.least = 1, .too_small = "{flag} needs a FILE"}, "FILE"},
  {"cluster-key", Kind::kText,
   [](CommandLine& c) -> Field { return &c.node.cluster.streams.security.key_file; },
   "with --cluster: the PEM private key (unencrypted) of the --cluster-cert certificate",
   {.least = 1, .too_small = "{flag} needs a FILE"}, "FILE"},
  {"cluster-user-file", Kind::kText, [](CommandLine& c) -> Field { return &c.cluster_user_file; },
   "with --cluster: log in to NATS as the USER:PASSWORD on this file's first line (read at "
   "start; chmod 600 it)",
   {.least = 1, .too_small = "{flag} needs a FILE"}, "FILE"},
  {"cluster-token-file", Kind::kText,
   [](CommandLine& c) -> Field { return &c.cluster_token_file; },
   "with --cluster: log in to NATS with the token on this file's first line (read at start; "
   "not with --cluster-user-file)",
   {.least = 1, .too_small = "{flag} needs a FILE"}, "FILE"},
};
// clang-format on

constexpr const char* kCaption =
    "Usage: gradientd [OPTIONS]\n\n"
    "Streams of (x, y) points in, the gradient of the mean-squared-error loss of a\n"
    "line over every point seen so far out, in O(1). Prints\n"
    "'gradientd http listening on HOST:PORT' to stdout (unless --http-listen off)\n"
    "once HTTP answers (/healthz at once; /readyz once recovered), then\n"
    "'gradientd listening on HOST:PORT' once it accepts connections;\n"
    "SIGINT or SIGTERM shut it down gracefully. State is durable in the data\n"
    "directory (journal + snapshots) unless --in-memory, or in a cluster's NATS\n"
    "JetStream streams with --cluster. Without --auth-file anyone\n"
    "who can connect may do everything, so the default --listen is loopback only.\n\n"
    "Options";

std::string Key(const Row& row) {
  const std::string name = row.name;
  return name.substr(0, name.find(','));
}

// The shortest text the grammar reads back as `bytes`: 16MiB, 1GiB, 100B.
std::string FormatBytes(uint64_t bytes) {
  for (const auto& [unit, size] :
       {std::pair{"GiB", 30}, std::pair{"MiB", 20}, std::pair{"KiB", 10}}) {
    if (bytes != 0 && bytes % (uint64_t{1} << size) == 0) {
      return std::to_string(bytes >> size) + unit;
    }
  }
  return std::to_string(bytes) + "B";
}

// The same for durations: 1h, 5m, 30s, 100ms.
std::string FormatMilliseconds(uint64_t ms) {
  for (const auto& [unit, size] :
       {std::pair{"h", kHour}, std::pair{"m", uint64_t{60'000}}, std::pair{"s", uint64_t{1000}}}) {
    if (ms != 0 && ms % size == 0) return std::to_string(ms / size) + unit;
  }
  return ms == 0 ? "0" : std::to_string(ms) + "ms";
}

std::string FormatFsyncMode(storage::FsyncMode mode) {
  for (const char* name : {"always", "interval", "never"}) {
    storage::FsyncMode parsed{};
    if (storage::ParseFsyncMode(name, &parsed).ok() && parsed == mode) return name;
  }
  return "?";
}

std::string FormatBound(const Row& row, uint64_t bound) {
  if (row.kind == Kind::kBytes) return FormatBytes(bound);
  if (row.kind == Kind::kDuration) return FormatMilliseconds(bound);
  return std::to_string(bound);
}

// The field's value as a number in the row's unit (0 for text and switches).
uint64_t NumberIn(const Field& field) {
  return std::visit(
      [](auto* p) -> uint64_t {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<uint64_t>(*p);
        } else if constexpr (std::is_same_v<T, milliseconds> ||
                             std::is_same_v<T, std::chrono::nanoseconds>) {
          return static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(*p).count());
        } else {
          return 0;
        }
      },
      field);
}

// What --help shows as the default; "" for none.
std::string DefaultText(const Row& row, CommandLine& defaults) {
  const Field field = row.field(defaults);
  switch (row.kind) {
    case Kind::kText:
      return row.value_name ? "" : *std::get<std::string*>(field);
    case Kind::kBytes:
      return FormatBytes(NumberIn(field));
    case Kind::kDuration:
      return FormatMilliseconds(NumberIn(field));
    case Kind::kFsyncMode:
      return FormatFsyncMode(*std::get<storage::FsyncMode*>(field));
    default:
      return "";
  }
}

void AddRow(const Row& row, CommandLine& defaults, po::options_description* flags) {
  if (row.kind == Kind::kSwitch) {
    flags->add_options()(row.name, row.help);
    return;
  }
  const po::value_semantic* semantic = nullptr;
  if (row.kind == Kind::kCount) {
    semantic = std::visit(
        [](auto* p) -> const po::value_semantic* {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, unsigned> || std::is_same_v<T, std::size_t>) {
            return po::value<T>()->default_value(*p);
          } else {
            return nullptr;
          }
        },
        row.field(defaults));
  } else {
    auto* text = po::value<std::string>();
    if (const std::string shown = DefaultText(row, defaults); !shown.empty()) {
      text->default_value(shown);
    }
    if (row.value_name) text->value_name(row.value_name);
    semantic = text;
  }
  flags->add_options()(row.name, semantic, row.help);
}

std::string Expand(const Row& row, const char* message, const std::string& given) {
  std::string text = message;
  const std::pair<const char*, std::string> values[] = {
      {"{flag}", "--" + Key(row)},
      {"{least}", FormatBound(row, row.bounds.least)},
      {"{most}", FormatBound(row, row.bounds.most)},
      {"{}", given}};
  for (const auto& [name, value] : values) {
    if (const auto at = text.find(name); at != std::string::npos) {
      text.replace(at, std::string_view(name).size(), value);
    }
  }
  return text;
}

// Checks `number` against the row's bounds.
Status CheckBounds(const Row& row, uint64_t number, const std::string& given) {
  if (number < row.bounds.least)
    return Status::InvalidArgument(Expand(row, row.bounds.too_small, given));
  if (number > row.bounds.most) {
    return Status::InvalidArgument(
        Expand(row, row.bounds.too_large ? row.bounds.too_large : row.bounds.too_small, given));
  }
  if (number % row.bounds.multiple_of != 0) {
    return Status::InvalidArgument(Expand(row, row.bounds.too_small, given));
  }
  return Status::Ok();
}

// Sets the row's target from the text given (or defaulted) for it.
Status Apply(const Row& row, const po::variable_value& value, CommandLine* command_line) {
  const Field field = row.field(*command_line);
  const std::string flag = "--" + Key(row);
  if (row.kind == Kind::kCount) {
    return std::visit(
        [&](auto* p) -> Status {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, unsigned> || std::is_same_v<T, std::size_t>) {
            const T number = value.as<T>();
            if (Status s = CheckBounds(row, number, std::to_string(number)); !s.ok()) return s;
            *p = number;
          }
          return Status::Ok();
        },
        field);
  }
  const std::string& text = value.as<std::string>();
  Status parsed;
  uint64_t number = text.size();
  if (row.kind == Kind::kText) {
    *std::get<std::string*>(field) = text;
  } else if (row.kind == Kind::kFsyncMode) {
    parsed = storage::ParseFsyncMode(text, std::get<storage::FsyncMode*>(field));
  } else if (row.kind == Kind::kBytes) {
    std::size_t bytes = 0;
    parsed = util::ParseByteSize(text, &bytes);
    number = bytes;
    std::visit(
        [bytes](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            *p = static_cast<T>(bytes);
          }
        },
        field);
  } else {
    milliseconds ms{};
    parsed = util::ParseDuration(text, &ms);
    number = static_cast<uint64_t>(ms.count());
    std::visit(
        [ms](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, milliseconds> ||
                        std::is_same_v<T, std::chrono::nanoseconds>) {
            *p = ms;
          }
        },
        field);
  }
  if (!parsed.ok()) return Status::InvalidArgument(flag + ": " + parsed.message());
  return CheckBounds(row, number, text);
}

// The rules that span options.
Status CheckTls(const po::variables_map& vm, const server::TlsOptions& tls) {
  if (vm.count("tls-cert") != vm.count("tls-key")) {
    return Status::InvalidArgument(vm.count("tls-cert") ? "--tls-cert needs --tls-key"
                                                        : "--tls-key needs --tls-cert");
  }
  if (vm.count("tls-client-ca") && !vm.count("tls-cert")) {
    return Status::InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (vm.count("tls-cert") && (tls.cert_file.empty() || tls.key_file.empty() ||
                               (vm.count("tls-client-ca") && tls.client_ca_file.empty()))) {
    return Status::InvalidArgument("--tls-cert, --tls-key and --tls-client-ca need a FILE");
  }
  return Status::Ok();
}

// --cluster's URLS into the node's options, and the flags it rules out.
Status CheckCluster(const po::variables_map& vm, CommandLine* command_line) {
  NodeOptions& node = command_line->node;
  if (command_line->cluster_urls.empty()) {
    for (const char* flag :
         {"cluster-name", "cluster-shards", "cluster-replicas", "cluster-timeout", "cluster-ca",
          "cluster-cert", "cluster-key", "cluster-user-file", "cluster-token-file"}) {
      if (vm.count(flag) && !vm[flag].defaulted()) {
        return Status::InvalidArgument(std::string("--") + flag + " needs --cluster");
      }
    }
    return Status::Ok();
  }
  std::istringstream urls(command_line->cluster_urls);
  for (std::string url; std::getline(urls, url, ',');) {
    if (url.empty() || url.find_first_of(" \t") != std::string::npos) {
      return Status::InvalidArgument("--cluster: '" + command_line->cluster_urls +
                                     "' is not a comma-separated list of NATS URLs "
                                     "(nats://HOST:PORT,nats://HOST:PORT)");
    }
    node.cluster.streams.urls.push_back(url);
  }
  if (Status s = jetstream::ValidateClusterName(node.cluster.streams.name); !s.ok()) {
    return Status::InvalidArgument("--cluster-name: " + s.message());
  }
  if (vm.count("cluster-cert") != vm.count("cluster-key")) {
    return Status::InvalidArgument(vm.count("cluster-cert") ? "--cluster-cert needs --cluster-key"
                                                            : "--cluster-key needs --cluster-cert");
  }
  if (Status s =
          ReadNatsCredentials(command_line->cluster_user_file, command_line->cluster_token_file,
                              &node.cluster.streams.security);
      !s.ok()) {
    return s;
  }
  // A cluster node's state is its streams'; these have nothing to act on.
  if (vm.count("record")) {
    return Status::InvalidArgument(
        "--record is not for a cluster node yet: a node's recording would hold only the "
        "batches it received, not the cluster's (README, Cluster)");
  }
  for (const char* flag :
       {"data-dir", "fsync", "fsync-interval", "checkpoint-interval", "checkpoint-bytes"}) {
    if (vm.count(flag) && !vm[flag].defaulted()) {
      return Status::InvalidArgument(std::string("--") + flag +
                                     " is not for a cluster node: with --cluster the state "
                                     "lives in the cluster's streams (README, Cluster)");
    }
  }
  node.in_memory = true;
  return Status::Ok();
}

}  // namespace

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
  CommandLine defaults;
  defaults.node.data.path = DefaultDataDir();
  po::options_description flags(kCaption, 100, 50);
  for (const Row& row : kRows) AddRow(row, defaults, &flags);
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
  for (const Row& row : kRows) {
    const std::string key = Key(row);
    if (row.kind == Kind::kSwitch) {
      *std::get<bool*>(row.field(*command_line)) = vm.count(key) > 0;
    } else if (vm.count(key) > 0) {
      if (Status s = Apply(row, vm[key], command_line); !s.ok()) return s;
    }
  }
  if (Status s = CheckTls(vm, command_line->node.server.tls); !s.ok()) return s;
  return CheckCluster(vm, command_line);
}

}  // namespace gradientd::app
