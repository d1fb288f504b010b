#include "app/node.h"

#include <google/protobuf/stubs/common.h>

#include <boost/version.hpp>
#include <chrono>
#include <filesystem>
#include <ostream>
#include <utility>

#include "auth/session.h"
#include "metrics/process.h"

#ifndef GRADIENTD_VERSION
#define GRADIENTD_VERSION "unknown"
#endif
#ifndef GRADIENTD_GIT_COMMIT
#define GRADIENTD_GIT_COMMIT ""
#endif

namespace gradientd::app {

namespace {

// "3.21.12" from 3021012.
std::string ProtobufVersion() {
  const int v = GOOGLE_PROTOBUF_VERSION;
  return std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." +
         std::to_string(v % 1000);
}

// "1.81.0" from 108100.
std::string BoostVersion() {
  const int v = BOOST_VERSION;
  return std::to_string(v / 100000) + "." + std::to_string(v / 100 % 1000) + "." +
         std::to_string(v % 100);
}

}  // namespace

Node::Node(NodeOptions options, std::ostream& log)
    : auth_failures_(registry_.AddCounterFamily("gradientd_auth_failures_total",
                                                "Requests refused by access control, by reason.",
                                                auth::AuthFailureLabels())),
      recovery_seconds_(registry_.AddGauge(
          "gradientd_recovery_duration_seconds",
          "How long recovering the data directory took at start (0 in memory).")),
      options_(WithMetrics(std::move(options))),
      log_(log),
      service_(store_, options_.limits) {
  service_.SetMetrics(&service_metrics_);
  AddStateMetrics();
}

NodeOptions Node::WithMetrics(NodeOptions options) {
  options.server.metrics = &server_metrics_;
  server_metrics_.auth_failures = &auth_failures_;
  server_metrics_.max_connections_refusals =
      &service_metrics_.refusals.at(static_cast<std::size_t>(service::Limit::kMaxConnections));
  options.data.journal.metrics = &journal_metrics_;
  options.data.metrics = &checkpoint_metrics_;
  return options;
}

void Node::AddStateMetrics() {
  registry_
      .AddGauge("gradientd_build_info", "gradientd's build: version, git commit, libraries.",
                {{"version", GRADIENTD_VERSION},
                 {"git_commit", GRADIENTD_GIT_COMMIT},
                 {"protobuf_version", ProtobufVersion()},
                 {"boost_version", BoostVersion()}})
      .Set(1);
  registry_.AddGaugeCallback("gradientd_series", "Series held.",
                             [this] { return static_cast<double>(store_.size()); });
  registry_.AddGaugeCallback("gradientd_producers",
                             "Exactly-once producers the producer table holds.",
                             [this] { return static_cast<double>(service_.producers()); });
  registry_.AddCallback(
      "gradientd_connections", "Client connections by state.", "gauge",
      metrics::LabelProduct({{"state", {"handshaking", "established", "refusing"}}}),
      [this](std::vector<double>* values) {
        if (!server_) return;
        const server::ConnectionCounts counts = server_->Connections();
        *values = {static_cast<double>(counts.handshaking), static_cast<double>(counts.established),
                   static_cast<double>(counts.refusing)};
      });
  metrics::AddProcessMetrics(registry_);
}

Node::~Node() = default;

Status Node::Start() {
  if (Status s = LoadAuthFile(); !s.ok()) return s;
  if (Status s = Recover(); !s.ok()) return s;
  if (Status s = CreateRecording(); !s.ok()) return s;
  server_ = std::make_unique<server::Server>(
      options_.server, service_, data_ ? data_->change_log() : nullptr, authenticator_.get());
  if (Status s = server_->Start(); !s.ok()) return s;
  if (!authenticator_ && !endpoint().address().is_loopback()) {
    log_ << "gradientd: warning: listening on " << server::FormatEndpoint(endpoint())
         << " without --auth-file: anyone who can reach it may read and change every series\n";
  }
  return Status::Ok();
}

Status Node::LoadAuthFile() {
  const std::string& path = options_.auth_file;
  if (path.empty()) return Status::Ok();
  if (Status s = auth::Authenticator::Load(path, &authenticator_); !s.ok()) {
    return Status(s.code(), "--auth-file: " + s.message());
  }
  log_ << "gradientd: access control: " << authenticator_->size() << " token(s) from " << path
       << "\n";
  std::error_code ec;
  const auto permissions = std::filesystem::status(path, ec).permissions();
  if (!ec &&
      (permissions & (std::filesystem::perms::group_read | std::filesystem::perms::others_read)) !=
          std::filesystem::perms::none) {
    log_ << "gradientd: warning: " << path << " is readable by other users (chmod 600 it)\n";
  }
  if (authenticator_->size() == 0) {
    log_ << "gradientd: warning: " << path
         << " holds no tokens: every request will be refused until a reload adds one\n";
  }
  return Status::Ok();
}

Status Node::Recover() {
  if (options_.in_memory) return Status::Ok();
  durable::RecoveryReport report;
  if (Status s = durable::DataDirectory::Open(options_.data, service_, &data_, &report); !s.ok()) {
    return Status(s.code(), "cannot use data directory " + options_.data.path + ": " + s.message());
  }
  log_ << "gradientd: " << report.ToString(options_.data.path) << "\n";
  recovery_seconds_.Set(report.seconds);
  return Status::Ok();
}

Status Node::CreateRecording() {
  if (options_.record_path.empty()) return Status::Ok();
  if (Status s = storage::RecordingWriter::Create(options_.record_path, &recording_); !s.ok()) {
    return Status(s.code(), "--record: " + s.message());
  }
  service_.SetBatchObserver([this](const std::string& series, const v1::PointBatch& batch,
                                   int64_t event_time, int64_t received) {
    Record(storage::RecordAcceptedBatch(series, batch, received, event_time));
  });
  return Status::Ok();
}

void Node::Record(const v1::RecordedBatch& record) {
  // Flushed per batch, so a crash of gradientd loses at most the record
  // being written (the reader stops cleanly at a cut record).
  Status s = recording_->Append(record);
  if (s.ok()) s = recording_->Flush();
  if (!s.ok() && !recording_error_logged_.exchange(true)) {
    log_ << "gradientd: --record: " << s.message() << "\n";
  }
}

boost::asio::ip::tcp::endpoint Node::endpoint() const { return server_->local_endpoint(); }

void Node::HandleSignals() {
  server_->StopOnSignals();
  if (authenticator_) server_->ReloadOnSighup();
}

void Node::Run() { server_->Run(); }

void Node::Stop() { server_->Stop(); }

Status Node::Finish() {
  if (recording_) {
    if (Status s = recording_->Close(); !s.ok()) {
      log_ << "gradientd: --record: " << s.message() << "\n";
    }
  }
  if (data_) {
    if (Status s = data_->Close(); !s.ok()) {
      return Status(s.code(), "final checkpoint failed: " + s.message());
    }
  }
  return Status::Ok();
}

}  // namespace gradientd::app
