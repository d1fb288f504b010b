#include "cli/producer.h"

#include <google/protobuf/struct.pb.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

#include "cli/output.h"
#include "protocol/error_codes.h"
#include "protocol/series_name.h"
#include "util/duration.h"
#include "util/random.h"

namespace gradientd::cli {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

std::string Plural(uint64_t n, std::string_view noun) {
  std::string text = std::to_string(n) + " " + std::string(noun);
  if (n != 1) text += noun.ends_with("ch") ? "es" : "s";
  return text;
}

std::string SequenceRange(uint64_t first, uint64_t last) {
  return first == last ? std::to_string(first)
                       : std::to_string(first) + ".." + std::to_string(last);
}

namespace {

std::string FormatSeconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  return buf;
}

std::string FormatRate(double per_second) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", per_second);
  return buf;
}

int64_t UnixNanosNow() {
  return std::chrono::duration_cast<nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------------------
// Helpers.

std::string FormatDuration(nanoseconds duration) {
  const double seconds = std::chrono::duration<double>(duration).count();
  char buf[48];
  if (seconds < 0) return "0 s";
  if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%.0f ms", seconds * 1e3);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (seconds < 3600) {
    const auto s = static_cast<int64_t>(seconds);
    if (s % 60 == 0) {
      std::snprintf(buf, sizeof buf, "%lld min", static_cast<long long>(s / 60));
    } else {
      std::snprintf(buf, sizeof buf, "%lld min %02lld s", static_cast<long long>(s / 60),
                    static_cast<long long>(s % 60));
    }
  } else {
    const auto m = static_cast<int64_t>(seconds / 60);
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", static_cast<long long>(m / 60),
                  static_cast<long long>(m % 60));
  }
  return buf;
}

std::string FormatUtc(int64_t unix_nanos) {
  int64_t seconds = unix_nanos / 1'000'000'000;
  int64_t rest = unix_nanos % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_nanos) + " ns";
  char date[40];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s.%03lldZ", date, static_cast<long long>(rest / 1'000'000));
  return buf;
}

std::string GenerateProducerId(std::string_view prefix) {
  return std::string(prefix) + "-" + util::RandomHex64();
}

// ---------------------------------------------------------------------------
// Flags.

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
       "when the connection is lost (or cannot be made), reconnect with backoff (50ms "
       "doubling to 2s) and resend the unacknowledged batches, for at most this long "
       "(500ms, 30s, 5m, ...; 0 = fail at once)");
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
  return Status::Ok();
}

void AddProduceSaveOption(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("save", po::value<std::string>()->value_name("FILE"),
       "record every batch sent (once, when first sent: series, points, producer id, "
       "sequence, send time) to FILE, a gradientd recording, for `gradctl replay` and "
       "`gradctl inspect`; FILE is created or truncated");
  // clang-format on
}

// ---------------------------------------------------------------------------
// Producer.

Producer::Producer(ProducerOptions options, std::ostream& log)
    : options_(std::move(options)), log_(log), next_sequence_(options_.first_sequence) {
  if (options_.window < 1) options_.window = 1;
}

Producer::~Producer() = default;

std::ostream& Producer::Log() {
  if (before_log_) before_log_();
  return log_;
}

Status Producer::Fail(Status status) {
  if (failure_.ok()) failure_ = std::move(status);
  client_.reset();
  return failure_;
}

Status Producer::ConnectUntil(Clock::time_point deadline) {
  nanoseconds backoff = options_.initial_backoff;
  while (true) {
    std::unique_ptr<client::Client> client;
    const Status s = client::Client::Connect(options_.server, options_.connect, &client);
    if (s.ok()) {
      client_ = std::move(client);
      return s;
    }
    // Only an unreachable server is worth waiting for; a bad address or a
    // refused token will not get better.
    if (s.code() != StatusCode::kUnavailable) return s;
    const auto now = Clock::now();
    if (now >= deadline) return s;
    if (on_wait_) on_wait_();
    std::this_thread::sleep_for(std::min<nanoseconds>(backoff, deadline - now));
    backoff = std::min<nanoseconds>(backoff * 2, options_.max_backoff);
  }
}

Status Producer::Start() {
  const auto start = Clock::now();
  std::unique_ptr<client::Client> client;
  Status s = client::Client::Connect(options_.server, options_.connect, &client);
  if (s.ok()) {
    client_ = std::move(client);
    return s;
  }
  if (s.code() != StatusCode::kUnavailable || options_.retry_for.count() <= 0) return Fail(s);
  Log() << "gradctl: " << s.message() << "; retrying for up to "
        << FormatDuration(options_.retry_for) << std::endl;
  s = ConnectUntil(start + options_.retry_for);
  if (!s.ok()) {
    if (s.code() != StatusCode::kUnavailable) return Fail(s);
    return Fail(Status::Unavailable("gave up after " + FormatDuration(options_.retry_for) + ": " +
                                    s.message()));
  }
  Log() << "gradctl: connected to " << options_.server << " after "
        << FormatDuration(Clock::now() - start) << std::endl;
  return s;
}

Status Producer::Reconnect(const Status& reason) {
  client_.reset();
  if (!lost_since_) {
    lost_since_ = Clock::now();
    Log() << "gradctl: " << reason.message() << "; reconnecting";
    if (options_.retry_for.count() > 0) {
      log_ << " (for up to " << FormatDuration(options_.retry_for) << ")";
    }
    log_ << std::endl;
  }
  const auto deadline = *lost_since_ + options_.retry_for;
  while (true) {
    for (const Pending& p : pending_) {
      if (!p.batch) ++counters_.queries_lost;
    }
    pending_.clear();
    if (Status s = ConnectUntil(deadline); !s.ok()) {
      if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
        return Fail(Status(s.code(), "lost the connection to " + options_.server + " (" +
                                         reason.message() + "); on reconnecting, " + s.message()));
      }
      std::string message = "lost the connection to " + options_.server + " (" + reason.message() +
                            ") and could not reconnect within " +
                            FormatDuration(options_.retry_for) + ": " + s.message();
      return Fail(Status::Unavailable(std::move(message)));
    }
    ++counters_.reconnects;
    Log() << "gradctl: reconnected to " << options_.server << " after "
          << FormatDuration(Clock::now() - *lost_since_);
    if (!unacked_.empty()) {
      log_ << "; resending " << Plural(unacked_.size(), "unacknowledged batch") << " (sequence "
           << SequenceRange(unacked_.front().sequence, unacked_.back().sequence) << ")";
    }
    log_ << std::endl;
    Status sent;
    for (Outstanding& o : unacked_) {
      sent = client_->Send(o.request);
      if (!sent.ok()) break;
      pending_.push_back({true, nullptr});
      ++counters_.batches_resent;
    }
    if (sent.ok()) return sent;
    if (sent.code() != StatusCode::kUnavailable) return Fail(sent);
    client_.reset();
    Log() << "gradctl: " << sent.message() << "; reconnecting" << std::endl;
  }
}

Status Producer::HandleReply(const v1::Response& response) {
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  if (!p.batch) {
    if (p.handler) p.handler(response);
    return Status::Ok();
  }
  Outstanding o = std::move(unacked_.front());
  unacked_.pop_front();
  if (response.has_error()) {
    if (!rejection_) {
      rejection_ = response;
      rejected_sequence_ = o.sequence;
    }
    return client::ResponseStatus(response);
  }
  if (!response.has_ack()) {
    return Status::Internal("unexpected reply to a point batch: " + ToJson(response));
  }
  const v1::IngestAck& ack = response.ack();
  ++counters_.batches_acked;
  counters_.points_acked += o.points;
  counters_.points_applied += ack.accepted();
  if (ack.duplicate()) {
    ++counters_.duplicate_batches;
    counters_.duplicate_points += o.points;
  }
  series_totals_[ack.series()] = ack.total();
  if (!ack.descent_error().empty() && counters_.descent_errors++ == 0) {
    Log() << "gradctl: warning: batch " << o.sequence
          << ": the points were applied but the descent steps were refused: " << ack.descent_error()
          << '\n';
  }
  if (on_ack_) on_ack_(ack, o.sequence, o.points);
  return Status::Ok();
}

void Producer::Drain() {
  v1::Response response;
  while (client_ && !pending_.empty()) {
    response.Clear();
    if (!client_->Receive(&response).ok()) break;
    if (!HandleReply(response).ok() && !rejection_) break;
  }
}

Status Producer::ReceiveOne() {
  if (!failure_.ok()) return failure_;
  if (!client_) return Fail(Status::Internal("not connected"));
  v1::Response response;
  const Status t = client_->Receive(&response);
  if (!t.ok()) {
    if (t.code() == StatusCode::kUnavailable) return Reconnect(t);
    return Fail(t);
  }
  lost_since_.reset();
  const Status s = HandleReply(response);
  if (!s.ok()) {
    // A rejected batch: send no more, but collect the replies in flight
    // (their batches may have been applied). Anything else: the replies
    // cannot be matched to the requests any more.
    if (rejection_) Drain();
    return Fail(s);
  }
  return s;
}

Status Producer::Send(std::string_view series, std::span<const double> x,
                      std::span<const double> y) {
  if (!failure_.ok()) return failure_;
  while (unacked_.size() >= options_.window) {
    if (Status s = ReceiveOne(); !s.ok()) return s;
  }
  Outstanding o;
  o.sequence = next_sequence_++;
  o.points = x.size();
  v1::PointBatch* batch = o.request.mutable_ingest();
  batch->set_series(std::string(series));
  batch->mutable_x()->Assign(x.begin(), x.end());
  batch->mutable_y()->Assign(y.begin(), y.end());
  batch->set_producer_id(options_.producer_id);
  batch->set_sequence(o.sequence);
  if (options_.save != nullptr) {
    v1::RecordedBatch record;
    record.set_series(batch->series());
    *record.mutable_x() = batch->x();
    *record.mutable_y() = batch->y();
    record.set_producer_id(options_.producer_id);
    record.set_sequence(o.sequence);
    record.set_time_unix_nanos(UnixNanosNow());
    // Written at once: a recording cut short by a crash of gradctl still has
    // every batch sent before it (Append alone buffers up to 1 MiB).
    Status s = options_.save->Append(record);
    if (s.ok()) s = options_.save->Flush();
    if (!s.ok()) return Fail(s);
  }
  ++counters_.batches_sent;
  counters_.points_sent += o.points;
  unacked_.push_back(std::move(o));
  if (!client_) return Reconnect(Status::Unavailable("not connected to " + options_.server));
  const Status t = client_->Send(unacked_.back().request);
  if (!t.ok()) {
    // Reconnecting resends this batch with the others.
    if (t.code() == StatusCode::kUnavailable) return Reconnect(t);
    return Fail(t);
  }
  pending_.push_back({true, nullptr});
  return t;
}

Status Producer::SendQuery(v1::Request& request, ReplyHandler on_reply) {
  if (!failure_.ok()) return failure_;
  if (!client_) return Reconnect(Status::Unavailable("not connected to " + options_.server));
  const Status t = client_->Send(request);
  if (!t.ok()) {
    if (t.code() == StatusCode::kUnavailable) {
      ++counters_.queries_lost;
      return Reconnect(t);
    }
    return Fail(t);
  }
  pending_.push_back({false, std::move(on_reply)});
  return t;
}

Status Producer::Finish() {
  while (!pending_.empty() || !unacked_.empty()) {
    if (Status s = ReceiveOne(); !s.ok()) return s;
  }
  return failure_;
}

Status Producer::Call(v1::Request& request, v1::Response* response) {
  if (Status s = Finish(); !s.ok()) return s;
  while (true) {
    if (!client_) {
      if (Status s = Reconnect(Status::Unavailable("not connected to " + options_.server));
          !s.ok()) {
        return s;
      }
    }
    const Status t = client_->Call(request, response);
    if (t.ok()) {
      lost_since_.reset();
      return t;
    }
    if (t.code() != StatusCode::kUnavailable) return Fail(t);
    if (Status s = Reconnect(t); !s.ok()) return s;
  }
}

std::string AcknowledgedText(const ProducerCounters& c) {
  return Plural(c.points_acked, "point") + " in " + Plural(c.batches_acked, "batch") +
         (c.points_acked == 1 ? " was" : " were") + " sent and acknowledged";
}

int StartProducer(Producer& producer, const std::string& server, std::ostream& err) {
  const Status s = producer.Start();
  if (s.ok()) return 0;
  if (s.code() == StatusCode::kInvalidArgument) {
    err << "gradctl: --server " << server << ": " << s.message() << '\n';
    return 2;
  }
  err << "gradctl: " << s.message() << '\n';
  return 1;
}

void NoteDuplicates(const ProducerCounters& c, const std::string& producer_id, std::ostream& err) {
  if (c.duplicate_batches == 0) return;
  err << "gradctl: note: " << Plural(c.duplicate_batches, "batch") << " ("
      << Plural(c.duplicate_points, "point")
      << ") were acknowledged as duplicates: the server had applied them before (producer id "
      << producer_id << "), so they were not counted again\n";
}

void AddCounterFields(const ProducerOptions& options, const ProducerCounters& c,
                      uint64_t last_sequence, google::protobuf::Struct* summary) {
  auto& fields = *summary->mutable_fields();
  fields["producer_id"].set_string_value(options.producer_id);
  fields["first_sequence"].set_number_value(static_cast<double>(options.first_sequence));
  fields["last_sequence"].set_number_value(static_cast<double>(last_sequence));
  fields["points_sent"].set_number_value(static_cast<double>(c.points_acked));
  fields["batches"].set_number_value(static_cast<double>(c.batches_acked));
  fields["duplicate_batches"].set_number_value(static_cast<double>(c.duplicate_batches));
  fields["duplicate_points"].set_number_value(static_cast<double>(c.duplicate_points));
  fields["reconnects"].set_number_value(static_cast<double>(c.reconnects));
  fields["batches_resent"].set_number_value(static_cast<double>(c.batches_resent));
}

void AddCounterLines(const ProducerOptions& options, const ProducerCounters& c,
                     uint64_t last_sequence, KeyValueBlock* block) {
  block->Add("producer id", options.producer_id);
  block->Add("sequences", c.batches_sent == 0
                              ? std::string("none")
                              : SequenceRange(options.first_sequence, last_sequence));
  block->Add("points sent", std::to_string(c.points_acked));
  block->Add("batches", std::to_string(c.batches_acked));
  block->Add("duplicates", Plural(c.duplicate_batches, "batch") + " (" +
                               Plural(c.duplicate_points, "point") + ") applied before");
  block->Add("reconnects", std::to_string(c.reconnects));
  if (c.reconnects > 0) block->Add("batches resent", std::to_string(c.batches_resent));
}

int ReportProducerFailure(const Producer& producer, const Status& status, bool json,
                          std::string_view resume, std::ostream& out, std::ostream& err) {
  const std::string acknowledged = AcknowledgedText(producer.counters());
  if (producer.rejection()) {
    const v1::Response& rejection = *producer.rejection();
    if (json) out << ToJson(rejection) << std::endl;
    err << "gradctl: server error " << protocol::ErrorCodeName(rejection.error()) << ": "
        << rejection.error().message() << '\n';
    err << "gradctl: batch " << producer.rejected_sequence() << " was rejected; " << acknowledged
        << '\n';
    return 1;
  }
  err << "gradctl: " << status.message() << '\n';
  err << "gradctl: " << acknowledged << " before that\n";
  if (producer.unacknowledged() > 0) {
    err << "gradctl: " << Plural(producer.unacknowledged(), "batch") << " (sequence "
        << SequenceRange(producer.first_unacknowledged(), producer.next_sequence() - 1)
        << (producer.unacknowledged() == 1 ? ") was" : ") were")
        << " not acknowledged (the server may have applied some of them)\n";
  }
  if (status.code() == StatusCode::kUnavailable) {
    err << "gradctl: to resume, send " << resume << " again with --producer-id "
        << producer.options().producer_id
        << ": the batches the server has applied are acknowledged as duplicates and not "
           "counted twice\n";
  }
  return 1;
}

// ---------------------------------------------------------------------------
// gradctl produce.

int RunProduce(const ProduceConfig& config, PointSource& source, std::ostream& out,
               std::ostream& err) {
  const auto fail = [&](const Status& status) {
    err << "gradctl: " << status.message() << '\n';
    return 1;
  };
  ProducerOptions options;
  options.server = config.server;
  options.connect = config.connect;
  options.window = config.window;
  options.first_sequence = config.exactly_once.first_sequence;
  options.retry_for = config.exactly_once.retry_for;
  options.producer_id = config.exactly_once.producer_id;
  const bool generated_id = options.producer_id.empty();
  if (generated_id) options.producer_id = GenerateProducerId("gradctl");

  std::unique_ptr<storage::RecordingWriter> save;
  if (!config.save_path.empty()) {
    if (Status s = storage::RecordingWriter::Create(config.save_path, &save); !s.ok()) {
      return fail(s);
    }
    options.save = save.get();
  }
  if (generated_id) {
    err << "gradctl: producer id " << options.producer_id << " (sequences from "
        << options.first_sequence << ")" << std::endl;
  }
  Producer producer(options, err);
  if (int rc = StartProducer(producer, config.server, err); rc != 0) return rc;
  const auto start = Clock::now();

  v1::Request gradient_query;
  gradient_query.mutable_gradient()->set_series(config.series);
  v1::Request fit_query;
  fit_query.mutable_fit()->set_series(config.series);
  v1::GradientReply progress_gradient;
  bool have_progress_gradient = false;
  const auto warn_progress_failed = [&](uint64_t sequence, const v1::Response& response) {
    err << "gradctl: warning: progress query after batch " << sequence
        << " failed: " << protocol::ErrorCodeName(response.error()) << ": "
        << response.error().message() << '\n';
  };
  const auto on_gradient = [&](uint64_t sequence) {
    return [&, sequence](const v1::Response& response) {
      if (config.json) {
        out << ToJson(response) << std::endl;
        return;
      }
      if (response.has_error()) {
        warn_progress_failed(sequence, response);
        have_progress_gradient = false;
        return;
      }
      progress_gradient = response.gradient();
      have_progress_gradient = response.has_gradient();
    };
  };
  const auto on_fit = [&](uint64_t sequence) {
    return [&, sequence](const v1::Response& response) {
      if (config.json) {
        out << ToJson(response) << std::endl;
        return;
      }
      if (response.has_error()) {
        warn_progress_failed(sequence, response);
      } else if (response.has_fit()) {
        const v1::FitReply& fit = response.fit();
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        out << "batch " << sequence << ": " << producer.counters().points_acked
            << " points acknowledged, " << FormatSeconds(seconds) << " s; n " << fit.n()
            << "; descent m " << FormatNumber(fit.descent().m()) << " b "
            << FormatNumber(fit.descent().b());
        if (have_progress_gradient) {
          out << " loss " << FormatNumber(progress_gradient.loss()) << " dL/dm "
              << FormatNumber(progress_gradient.slope_gradient()) << " dL/db "
              << FormatNumber(progress_gradient.intercept_gradient());
        }
        if (fit.has_least_squares()) {
          out << "; least squares m " << FormatNumber(fit.least_squares().m()) << " b "
              << FormatNumber(fit.least_squares().b());
        }
        out << std::endl;
      }
      have_progress_gradient = false;
    };
  };

  Status input_error;
  Status send_error;
  std::vector<double> x;
  std::vector<double> y;
  uint64_t batches = 0;
  while (send_error.ok()) {
    const Status s = source.Next(&x, &y, config.batch);
    if (!s.ok()) input_error = s;
    if (x.empty()) break;
    // The valid points before a bad CSV line are sent too.
    send_error = producer.Send(config.series, x, y);
    ++batches;
    if (send_error.ok() && config.progress_every > 0 && batches % config.progress_every == 0) {
      const uint64_t sequence = producer.next_sequence() - 1;
      send_error = producer.SendQuery(gradient_query, on_gradient(sequence));
      if (send_error.ok()) send_error = producer.SendQuery(fit_query, on_fit(sequence));
    }
    if (!input_error.ok()) break;
  }
  if (send_error.ok()) send_error = producer.Finish();
  Status save_error;
  if (save) save_error = save->Close();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const ProducerCounters& c = producer.counters();
  const auto totals = producer.series_totals();
  const auto total_it = totals.find(protocol::SeriesOrDefault(config.series));
  const uint64_t series_total = total_it == totals.end() ? 0 : total_it->second;
  const std::string acknowledged = AcknowledgedText(c);
  if (c.descent_errors > 1) {
    err << "gradctl: warning: the descent steps were refused after " << c.descent_errors
        << " batches\n";
  }
  NoteDuplicates(c, options.producer_id, err);
  if (!send_error.ok()) {
    const int rc = ReportProducerFailure(producer, send_error, config.json,
                                         "the same input (same --batch)", out, err);
    if (!producer.rejection()) err << "gradctl: source: " << config.source_description << '\n';
    return rc;
  }
  if (!save_error.ok()) return fail(save_error);
  if (!input_error.ok()) {
    fail(input_error);
    err << "gradctl: stopped at that line: " << acknowledged << " before it (series '"
        << config.series << "' has " << series_total << " points)\n";
    return 1;
  }

  // The final fit, for the summary (there is no series without points).
  v1::Response fit;
  if (c.batches_acked == 0) {
    err << "gradctl: warning: the input has no points; nothing was sent\n";
  } else {
    if (Status s = producer.Call(fit_query, &fit); !s.ok()) return fail(s);
    if (fit.has_error() && fit.error().code() == v1::Error::PERMISSION_DENIED) {
      // A token with only the produce role: the points are in, the
      // summary just has no fit.
      err << "gradctl: note: no fit in the summary: " << fit.error().message() << '\n';
      fit.Clear();
    } else if (fit.has_error()) {
      if (config.json) out << ToJson(fit) << std::endl;
      err << "gradctl: " << protocol::ErrorCodeName(fit.error()) << ": " << fit.error().message()
          << '\n';
      return 1;
    }
  }
  const double rate = seconds > 0 ? static_cast<double>(c.points_acked) / seconds : 0.0;
  const uint64_t last_sequence = producer.next_sequence() - 1;
  if (config.json) {
    google::protobuf::Struct summary;
    auto& fields = *summary.mutable_fields();
    google::protobuf::Struct* summary_struct = fields["summary"].mutable_struct_value();
    auto& inner = *summary_struct->mutable_fields();
    inner["series"].set_string_value(config.series);
    inner["source"].set_string_value(config.source_description);
    AddCounterFields(options, c, last_sequence, summary_struct);
    inner["series_total"].set_number_value(static_cast<double>(series_total));
    inner["elapsed_seconds"].set_number_value(seconds);
    inner["points_per_second"].set_number_value(rate);
    if (save) inner["saved_to"].set_string_value(config.save_path);
    if (fit.has_fit()) out << ToJson(fit) << '\n';
    out << ToJson(summary) << std::endl;
    return 0;
  }
  KeyValueBlock block;
  block.Add("source", config.source_description);
  AddCounterLines(options, c, last_sequence, &block);
  if (save) block.Add("saved to", config.save_path + " (" + Plural(c.batches_sent, "batch") + ")");
  block.Add("series total", std::to_string(series_total));
  block.Add("elapsed", FormatSeconds(seconds) + " s");
  block.Add("throughput", FormatRate(rate) + " points/s");
  if (fit.has_fit()) AddFit(fit.fit(), &block);
  block.Print(out);
  out.flush();
  return 0;
}

}  // namespace gradientd::cli
