// gradientd: the streaming gradient server. Parses flags, recovers the data
// directory, loads the auth file, serves until SIGINT/SIGTERM (reloading the
// auth file on SIGHUP), then checkpoints.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>

#include "auth/authenticator.h"
#include "durable/data_directory.h"
#include "server/server.h"
#include "server/server_options.h"
#include "service/series_store.h"
#include "service/service.h"
#include "storage/recording.h"

int main(int argc, char** argv) {
  using namespace gradientd;
  server::CommandLine command_line;
  if (Status s = server::ParseCommandLine(argc, argv, &command_line); !s.ok()) {
    std::cerr << "gradientd: " << s.message() << "\nTry 'gradientd --help'.\n";
    return 2;
  }
  if (command_line.help) {
    std::cout << command_line.usage;
    return 0;
  }
  if (command_line.version) {
    std::cout << "gradientd " GRADIENTD_VERSION "\n";
    return 0;
  }
  // Idle connections must not take the descriptors the journal and
  // snapshots need: checked before anything is opened.
  uint64_t open_files = 0;
  Status files = server::RaiseOpenFileLimit(&open_files);
  if (files.ok())
    files = server::CheckOpenFileLimit(command_line.server.max_connections, open_files);
  if (!files.ok()) {
    std::cerr << "gradientd: " << files.message() << "\n";
    return 2;
  }
  std::unique_ptr<auth::Authenticator> authenticator;
  if (!command_line.auth_file.empty()) {
    if (Status s = auth::Authenticator::Load(command_line.auth_file, &authenticator); !s.ok()) {
      std::cerr << "gradientd: --auth-file: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "gradientd: access control: " << authenticator->size() << " token(s) from "
              << command_line.auth_file << "\n";
    std::error_code ec;
    const auto permissions = std::filesystem::status(command_line.auth_file, ec).permissions();
    if (!ec && (permissions &
                (std::filesystem::perms::group_read | std::filesystem::perms::others_read)) !=
                   std::filesystem::perms::none) {
      std::cerr << "gradientd: warning: " << command_line.auth_file
                << " is readable by other users (chmod 600 it)\n";
    }
    if (authenticator->size() == 0) {
      std::cerr << "gradientd: warning: " << command_line.auth_file
                << " holds no tokens: every request will be refused until a reload adds one\n";
    }
  }
  service::SeriesStore store;
  service::Service service(store, command_line.limits);
  std::unique_ptr<durable::DataDirectory> data;
  if (!command_line.in_memory) {
    durable::RecoveryReport report;
    if (Status s = durable::DataDirectory::Open(command_line.data, service, &data, &report);
        !s.ok()) {
      std::cerr << "gradientd: cannot use data directory " << command_line.data.path << ": "
                << s.message() << "\n";
      return 1;
    }
    std::cerr << "gradientd: " << report.ToString(command_line.data.path) << "\n";
  }
  std::unique_ptr<storage::RecordingWriter> recording;
  if (!command_line.record_path.empty()) {
    if (Status s = storage::RecordingWriter::Create(command_line.record_path, &recording);
        !s.ok()) {
      std::cerr << "gradientd: --record: " << s.message() << "\n";
      return 1;
    }
    service.SetBatchObserver([&recording](const std::string& series, const v1::PointBatch& b) {
      v1::RecordedBatch record;
      record.set_series(series);
      *record.mutable_x() = b.x();
      *record.mutable_y() = b.y();
      record.set_producer_id(b.producer_id());
      record.set_sequence(b.sequence());
      record.set_time_unix_nanos(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
      static std::once_flag reported;
      // Flushed per batch, so a crash of gradientd loses at most the record
      // being written (the reader stops cleanly at a cut record).
      Status s = recording->Append(record);
      if (s.ok()) s = recording->Flush();
      if (!s.ok()) {
        std::call_once(reported,
                       [&] { std::cerr << "gradientd: --record: " << s.message() << "\n"; });
      }
    });
  }
  server::Server server(command_line.server, service, data ? data->change_log() : nullptr,
                        authenticator.get());
  if (Status s = server.Start(); !s.ok()) {
    std::cerr << "gradientd: " << s.message() << "\n";
    return 1;
  }
  server.StopOnSignals();
  if (authenticator) {
    server.ReloadOnSighup();
  } else if (!server.local_endpoint().address().is_loopback()) {
    std::cerr << "gradientd: warning: listening on "
              << server::FormatEndpoint(server.local_endpoint())
              << " without --auth-file: anyone who can reach it may read and change every "
                 "series\n";
  }
  std::cout << "gradientd listening on " << server::FormatEndpoint(server.local_endpoint())
            << std::endl;
  server.Run();
  if (recording) {
    if (Status s = recording->Close(); !s.ok()) {
      std::cerr << "gradientd: --record: " << s.message() << "\n";
    }
  }
  if (data) {
    if (Status s = data->Close(); !s.ok()) {
      std::cerr << "gradientd: final checkpoint failed: " << s.message() << "\n";
      return 1;
    }
  }
  std::cerr << "gradientd: stopped\n";
  return 0;
}
