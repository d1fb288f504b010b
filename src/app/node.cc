#include "app/node.h"

#include <chrono>
#include <filesystem>
#include <ostream>
#include <utility>

namespace gradientd::app {

Node::Node(NodeOptions options, std::ostream& log)
    : options_(std::move(options)),
      log_(log),
      service_(store_, options_.limits),
      dashboard_(service_, live_points_) {
  // Set before recovery, which does not call it: the samples are of live
  // traffic only.
  service_.SetBatchObserver([this](const std::string& series, const v1::PointBatch& batch,
                                   int64_t event_time, int64_t received) {
    ObserveBatch(series, batch, event_time, received);
  });
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
  return Status::Ok();
}

Status Node::CreateRecording() {
  if (options_.record_path.empty()) return Status::Ok();
  if (Status s = storage::RecordingWriter::Create(options_.record_path, &recording_); !s.ok()) {
    return Status(s.code(), "--record: " + s.message());
  }
  return Status::Ok();
}

void Node::ObserveBatch(const std::string& series, const v1::PointBatch& batch,
                        int64_t event_time, int64_t received) {
  live_points_.Observe(series, batch);
  if (recording_) Record(storage::RecordAcceptedBatch(series, batch, received, event_time));
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
