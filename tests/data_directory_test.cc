// The data directory end to end, in-process: restarts, snapshots, torn
// tails, corruption, duplicates across restarts, a full disk, the lock.
#include "durable/data_directory.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include "durable_call.h"
#include "storage/record_format.h"
#include "storage/snapshot.h"
#include "temp_dir.h"

namespace gradientd::durable {
namespace {

using namespace storage;  // the files and formats recovery reads

namespace fs = std::filesystem;

// A Service over its own store, with its data directory.
struct Instance {
  service::SeriesStore store;
  service::Service service{store};
  std::unique_ptr<DataDirectory> data;
  RecoveryReport report;

  // Handles a request and waits until its response may be sent; returns
  // the response, or the log's error in its place.
  v1::Response Call(const v1::Request& request) {
    return gradientd::testing::CallDurably(service, data.get(), request);
  }

  std::string State() {
    v1::Request r;
    r.mutable_list();
    v1::Response response;
    service.Handle(r, &response);
    return response.SerializeAsString();
  }
};

v1::Request Ingest(const std::string& series, int seed, const std::string& producer = "",
                   uint64_t sequence = 0) {
  v1::Request r;
  v1::PointBatch* b = r.mutable_ingest();
  b->set_series(series);
  for (int i = 0; i < 100; ++i) {
    const double x = 1.7e9 + seed * 100 + i;
    b->add_x(x);
    b->add_y(0.25 * (x - 1.7e9) + std::sin(seed * 7.0 + i));
  }
  b->set_producer_id(producer);
  b->set_sequence(sequence);
  return r;
}

class DataDirectoryTest : public ::testing::Test {
 protected:
  DataDirectoryOptions Options(FileSystem* fs = nullptr) {
    DataDirectoryOptions o;
    o.path = dir_.string();
    o.fs = fs;
    return o;
  }

  std::unique_ptr<Instance> Open(FileSystem* fs = nullptr) {
    auto instance = std::make_unique<Instance>();
    const Status s =
        DataDirectory::Open(Options(fs), instance->service, &instance->data, &instance->report);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? std::move(instance) : nullptr;
  }

  Status OpenError() {
    Instance instance;
    return DataDirectory::Open(Options(), instance.service, &instance.data, &instance.report);
  }

  // Every kind of change, against two series.
  static void MakeHistory(Instance& db) {
    v1::Request configure;
    configure.mutable_configure()->set_series("a");
    configure.mutable_configure()->set_learning_rate(1e-20);
    configure.mutable_configure()->set_steps_per_batch(3);
    ASSERT_TRUE(db.Call(configure).has_fit());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(db.Call(Ingest("a", i)).has_ack());
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(db.Call(Ingest("b", i, "p1", static_cast<uint64_t>(i) + 1)).has_ack());
    v1::Request step;
    step.mutable_step()->set_series("b");
    step.mutable_step()->set_iterations(1000);
    ASSERT_TRUE(db.Call(step).has_step());
    v1::Request reset;
    reset.mutable_reset()->set_series("b");
    ASSERT_TRUE(db.Call(reset).has_fit());
    ASSERT_TRUE(db.Call(Ingest("b", 9, "p1", 4)).has_ack());
  }

  std::vector<fs::path> Files(const std::string& prefix) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().filename().string().starts_with(prefix)) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  // Writes three chained journal files and no snapshot; returns the state.
  std::string WriteJournalChain();

  // Runs damage_and_check() on the directory, then puts it back as it was.
  void ThenRestore(const std::function<void()>& damage_and_check) {
    const fs::path saved = dir_.string() + ".saved";
    fs::remove_all(saved);
    fs::copy(dir_, saved);
    damage_and_check();
    fs::remove_all(dir_);
    fs::rename(saved, dir_);
  }

  // The data directory: not there until Open makes it.
  const gradientd::testing::TestDirectory temp_{"data_directory_test"};
  const fs::path dir_ = temp_.path() / "data";
};

TEST_F(DataDirectoryTest, RestartAfterCrashRebuildsTheSameStateBitForBit) {
  std::string before;
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
    before = db->State();
    // No Close(): as after kill -9, only the journal is there.
  }
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->State(), before);
  EXPECT_EQ(db->report.records_replayed, 12u);
  EXPECT_EQ(db->report.series, 2u);
  EXPECT_EQ(db->report.points, 600u);
}

TEST_F(DataDirectoryTest, RestartFromSnapshotPlusJournalTail) {
  std::string before;
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
    ASSERT_TRUE(db->data->Checkpoint().ok());
    ASSERT_TRUE(db->Call(Ingest("a", 42)).has_ack());
    ASSERT_TRUE(db->Call(Ingest("c", 43)).has_ack());
    before = db->State();
  }
  EXPECT_EQ(Files("snapshot-").size(), 1u);
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->State(), before);
  EXPECT_TRUE(db->report.snapshot);
  EXPECT_EQ(db->report.snapshot_position, 12u);
  EXPECT_EQ(db->report.records_replayed, 2u);
}

TEST_F(DataDirectoryTest, CloseCheckpointsAndDropsTheJournalItCovers) {
  std::string before;
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
    before = db->State();
    ASSERT_TRUE(db->data->Close().ok());
  }
  EXPECT_EQ(Files("snapshot-").size(), 1u);
  ASSERT_EQ(Files("journal-").size(), 1u);
  EXPECT_EQ(fs::file_size(Files("journal-")[0]), kJournalMagic.size() + kSaltBytes);  // empty
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->State(), before);
  EXPECT_EQ(db->report.records_replayed, 0u);
}

TEST_F(DataDirectoryTest, DuplicateSequenceAcrossRestartIsAcknowledgedNotApplied) {
  {
    auto db = Open();
    ASSERT_TRUE(db);
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      ASSERT_EQ(db->Call(Ingest("s", static_cast<int>(seq), "producer", seq)).ack().accepted(),
                100u);
    }
  }
  for (bool checkpoint : {false, true}) {
    auto db = Open();
    ASSERT_TRUE(db);
    const std::string before = db->State();
    const v1::Response again = db->Call(Ingest("s", 2, "producer", 2));
    ASSERT_TRUE(again.has_ack());
    EXPECT_TRUE(again.ack().duplicate());
    EXPECT_EQ(again.ack().accepted(), 0u);
    EXPECT_EQ(again.ack().total(), 300u);
    EXPECT_EQ(db->State(), before);
    if (checkpoint) {
      // A gap is fine; the next sequence counts.
      const v1::Response next = db->Call(Ingest("s", 9, "producer", 9));
      EXPECT_FALSE(next.ack().duplicate());
      EXPECT_EQ(next.ack().total(), 400u);
    }
    ASSERT_TRUE(db->data->Close().ok());  // the second round starts from the snapshot
  }
}

TEST_F(DataDirectoryTest, TornJournalTailAtEveryOffsetRecoversTheWholeRecords) {
  std::string with_last, without_last;
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
    without_last = db->State();
    ASSERT_TRUE(db->Call(Ingest("a", 77)).has_ack());
    with_last = db->State();
  }
  const fs::path journal = Files("journal-").back();
  std::ifstream in(journal, std::ios::binary);
  const std::string full{std::istreambuf_iterator<char>(in), {}};
  const std::string salt = full.substr(kJournalMagic.size(), kSaltBytes);
  // The last record starts after the second-to-last.
  std::size_t last_start = kJournalMagic.size() + kSaltBytes;
  for (std::size_t offset = last_start; offset < full.size();) {
    last_start = offset;
    offset = ReadRecord(full, offset, salt, kMaxJournalRecordBytes).next;
  }
  const fs::path saved = dir_.string() + ".saved";
  fs::remove_all(saved);
  fs::copy(dir_, saved);
  for (std::size_t cut = last_start; cut <= full.size(); ++cut) {
    fs::remove_all(dir_);
    fs::copy(saved, dir_);
    fs::resize_file(dir_ / journal.filename(), cut);
    auto db = Open();
    ASSERT_TRUE(db) << "cut at " << cut;
    EXPECT_EQ(db->State(), cut == full.size() ? with_last : without_last) << "cut at " << cut;
    EXPECT_EQ(db->report.torn_bytes, cut - (cut == full.size() ? full.size() : last_start));
    // The torn tail is gone for good: a second restart sees the same.
    const std::string recovered = db->State();
    db.reset();
    db = Open();
    ASSERT_TRUE(db);
    EXPECT_EQ(db->State(), recovered);
    EXPECT_EQ(db->report.torn_bytes, 0u);
  }
  fs::remove_all(saved);
}

TEST_F(DataDirectoryTest, CorruptJournalMiddleStopsStartupNamingFileAndOffset) {
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
  }
  const fs::path journal = Files("journal-").back();
  std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
  const std::size_t first = kJournalMagic.size() + kSaltBytes;
  f.seekp(static_cast<std::streamoff>(first + kRecordHeaderBytes + 3));
  f.put('\x7f');
  f.close();
  const auto size_before = fs::file_size(journal);
  const Status s = OpenError();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(journal.string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset " + std::to_string(first)), std::string::npos) << s.message();
  EXPECT_EQ(fs::file_size(journal), size_before);  // nothing was dropped
}

TEST_F(DataDirectoryTest, UnreadableSnapshotStopsStartup) {
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
    ASSERT_TRUE(db->data->Close().ok());
  }
  const fs::path snapshot = Files("snapshot-").back();
  fs::resize_file(snapshot, fs::file_size(snapshot) - 1);
  const Status s = OpenError();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(snapshot.string()), std::string::npos) << s.message();
}

TEST_F(DataDirectoryTest, SecondUserOfTheDirectoryIsRefused) {
  auto db = Open();
  ASSERT_TRUE(db);
  const Status s = OpenError();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("another gradientd"), std::string::npos) << s.message();
}

TEST_F(DataDirectoryTest, FullDiskTurnsIntoErrorsAndLosesNoAcknowledgedBatch) {
  FaultInjectingFileSystem faulty(PosixFileSystem());
  std::string acknowledged;
  {
    auto db = Open(&faulty);
    ASSERT_TRUE(db);
    ASSERT_EQ(db->Call(Ingest("s", 1, "p", 1)).ack().accepted(), 100u);
    acknowledged = db->State();
    faulty.FailWritesAfter(20);
    const v1::Response failed = db->Call(Ingest("s", 2, "p", 2));
    ASSERT_TRUE(failed.has_error());
    EXPECT_NE(failed.error().message().find("No space left on device"), std::string::npos)
        << failed.error().message();
    // The journal has stopped: later changes are refused at once.
    const v1::Response refused = db->Call(Ingest("s", 3, "p", 3));
    ASSERT_TRUE(refused.has_error());
    EXPECT_EQ(refused.error().code(), v1::Error::RESOURCE_EXHAUSTED);
    // No snapshot may capture the unacknowledged batch.
    EXPECT_FALSE(db->data->Close().ok());
  }
  faulty.StopFailingWrites();
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->State(), acknowledged);
  EXPECT_EQ(db->report.torn_bytes, 0u);  // the failed write was cut back at once
  // The producer's retry of the failed batch is applied now.
  const v1::Response retry = db->Call(Ingest("s", 2, "p", 2));
  EXPECT_FALSE(retry.ack().duplicate());
  EXPECT_EQ(retry.ack().total(), 200u);
}

// Many producers pipelining when the disk fills part-way through a group
// commit: after a restart each series holds exactly what was acknowledged,
// counted by the producers themselves, not by the server.
TEST_F(DataDirectoryTest, DiskFullingMidGroupCommitRecoversExactlyTheAcknowledgedBatches) {
  for (uint64_t budget : {3000u, 20000u, 60000u}) {
    fs::remove_all(dir_);
    FaultInjectingFileSystem faulty(PosixFileSystem());
    std::vector<uint64_t> acknowledged(4, 0);
    {
      auto db = Open(&faulty);
      ASSERT_TRUE(db);
      faulty.FailWritesAfter(budget);
      std::vector<std::thread> producers;
      for (std::size_t p = 0; p < acknowledged.size(); ++p) {
        producers.emplace_back([&, p] {
          const std::string id = "producer-" + std::to_string(p);
          for (uint64_t seq = 1; seq <= 200; ++seq) {
            const v1::Response r = db->Call(Ingest("s" + std::to_string(p), static_cast<int>(seq),
                                                   p % 2 ? id : "", p % 2 ? seq : 0));
            if (r.has_ack()) acknowledged[p] += r.ack().accepted();
          }
        });
      }
      for (auto& t : producers) t.join();
    }
    faulty.StopFailingWrites();
    auto db = Open();
    ASSERT_TRUE(db);
    for (std::size_t p = 0; p < acknowledged.size(); ++p) {
      v1::Request fit;
      fit.mutable_fit()->set_series("s" + std::to_string(p));
      const v1::Response r = db->Call(fit);
      const uint64_t n = r.has_fit() ? r.fit().n() : 0;
      EXPECT_EQ(n, acknowledged[p])
          << "series s" << p << ", budget " << budget << ": "
          << (n > acknowledged[p] ? "batches answered with an Error came back"
                                  : "acknowledged batches were lost");
    }
  }
}

// Snapshots never land (their rename fails): checkpoints still rotate the
// journal, so it grows a chain of files.
class NoSnapshotsFileSystem : public FaultInjectingFileSystem {
 public:
  NoSnapshotsFileSystem() : FaultInjectingFileSystem(PosixFileSystem()) {}
  Status Rename(const std::string& from, const std::string& to) override {
    if (from.ends_with(".tmp")) return Status::Internal("rename refused by the test");
    return FaultInjectingFileSystem::Rename(from, to);
  }
};

std::string DataDirectoryTest::WriteJournalChain() {
  NoSnapshotsFileSystem no_snapshots;
  auto db = Open(&no_snapshots);
  if (!db) return "";
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(db->Call(Ingest("c", round * 10 + i)).has_ack());
    if (round < 2) {
      EXPECT_FALSE(db->data->Checkpoint().ok());
    }
  }
  return db->State();
}

TEST_F(DataDirectoryTest, FailedSnapshotDeletesNoJournalAndRestartRecoversEverything) {
  const std::string state = WriteJournalChain();
  EXPECT_EQ(Files("journal-").size(), 3u);
  EXPECT_TRUE(Files("snapshot-").empty());
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->State(), state);
  EXPECT_EQ(db->report.records_replayed, 12u);
}

TEST_F(DataDirectoryTest, MissingJournalFileInTheChainStopsStartupNamingIt) {
  WriteJournalChain();
  const std::vector<fs::path> journals = Files("journal-");
  ASSERT_EQ(journals.size(), 3u);
  for (const fs::path& missing : journals) {
    ThenRestore([&] {
      fs::remove(missing);
      const Status s = OpenError();
      ASSERT_FALSE(s.ok()) << "started without " << missing;
      EXPECT_NE(s.message().find(missing.string()), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();
    });
  }
}

TEST_F(DataDirectoryTest, MissingJournalFileAfterTheNewestSnapshotStopsStartup) {
  {
    auto db = Open();
    ASSERT_TRUE(db);
    MakeHistory(*db);
    ASSERT_TRUE(db->data->Checkpoint().ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(db->Call(Ingest("after", i)).has_ack());
  }
  ASSERT_EQ(Files("snapshot-").size(), 1u);
  const std::vector<fs::path> journals = Files("journal-");
  ASSERT_EQ(journals.size(), 1u);
  fs::remove(journals[0]);
  const Status s = OpenError();
  ASSERT_FALSE(s.ok()) << "recovered the snapshot alone, dropping the journal after it";
  EXPECT_NE(s.message().find(journals[0].string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(Files("snapshot-")[0].string()), std::string::npos) << s.message();
}

TEST_F(DataDirectoryTest, DamageInANonLastJournalFileStopsStartupAndChangesNothing) {
  WriteJournalChain();
  const std::vector<fs::path> journals = Files("journal-");
  ASSERT_EQ(journals.size(), 3u);
  for (const std::size_t damaged : {std::size_t{0}, std::size_t{1}}) {
    ThenRestore([&] {
      // Cut the file short, as a torn tail would look in the last file.
      fs::resize_file(journals[damaged], fs::file_size(journals[damaged]) - 7);
      std::map<std::string, uintmax_t> sizes;
      for (const fs::path& p : Files("journal-")) sizes[p.string()] = fs::file_size(p);
      const Status s = OpenError();
      ASSERT_FALSE(s.ok()) << "cut " << journals[damaged] << " as if it were the last file";
      EXPECT_NE(s.message().find(journals[damaged].string()), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("byte offset"), std::string::npos) << s.message();
      for (const fs::path& p : Files("journal-")) EXPECT_EQ(fs::file_size(p), sizes[p.string()]);
    });
  }
}

TEST_F(DataDirectoryTest, CheckpointThatCannotOpenTheNextJournalFileKeepsWriting) {
  FaultInjectingFileSystem faulty(PosixFileSystem());
  std::string state;
  {
    auto db = Open(&faulty);
    ASSERT_TRUE(db);
    MakeHistory(*db);
    faulty.FailOpens(true);  // out of descriptors: neither journal nor snapshot opens
    EXPECT_FALSE(db->data->Checkpoint().ok());
    ASSERT_TRUE(db->Call(Ingest("later", 1)).has_ack());
    faulty.FailOpens(false);
    ASSERT_TRUE(db->Call(Ingest("later", 2)).has_ack());
    ASSERT_TRUE(db->data->Checkpoint().ok());  // the retry rotates
    ASSERT_TRUE(db->Call(Ingest("later", 3)).has_ack());
    state = db->State();
  }
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->State(), state);
}

TEST_F(DataDirectoryTest, SnapshotIsStreamedAsBoundedRecordsAndReadsBackWhole) {
  v1::Snapshot snapshot;
  snapshot.set_journal_position(42);
  snapshot.set_journal_file(40);
  for (int i = 0; i < 3000; ++i) {
    v1::SeriesState* s = snapshot.add_series();
    s->set_name(std::string(200, 'n') + std::to_string(i));
    s->mutable_stats()->set_n(static_cast<uint64_t>(i));
    v1::ProducerState* p = snapshot.add_producers();
    p->set_producer_id(std::string(250, 'p') + std::to_string(i));
    p->set_last_sequence(static_cast<uint64_t>(i) * 7);
  }
  fs::create_directories(dir_);
  ASSERT_TRUE(WriteSnapshot(PosixFileSystem(), dir_.string(), snapshot).ok());
  const fs::path path = dir_ / SnapshotFileName(42);
  std::ifstream in(path, std::ios::binary);
  const std::string data{std::istreambuf_iterator<char>(in), {}};
  const std::string salt = data.substr(kSnapshotMagic.size(), kSaltBytes);
  // No record grows with the number of series or producers.
  std::size_t records = 0, largest = 0;
  for (std::size_t offset = kSnapshotMagic.size() + kSaltBytes; offset < data.size(); ++records) {
    const RecordRead r = ReadRecord(data, offset, salt, data.size());
    ASSERT_EQ(r.kind, RecordRead::Kind::kRecord) << offset;
    largest = std::max(largest, r.payload.size());
    offset = r.next;
  }
  EXPECT_EQ(records, 1 + 3000 + 3 + 1);  // header, series, producer chunks, end
  EXPECT_LT(largest, 1024u * 300);
  v1::Snapshot back;
  ASSERT_TRUE(ReadSnapshot(PosixFileSystem(), path.string(), &back).ok());
  EXPECT_EQ(back.SerializeAsString(), snapshot.SerializeAsString());
  // Cut at any record boundary, it is incomplete, never a smaller state.
  for (std::size_t cut : {data.size() - 1, data.size() / 2, std::size_t{100}}) {
    fs::resize_file(path, cut);
    const Status s = ReadSnapshot(PosixFileSystem(), path.string(), &back);
    EXPECT_FALSE(s.ok()) << cut;
    EXPECT_NE(s.message().find(path.string()), std::string::npos) << s.message();
  }
}

// Past protobuf's 2 GiB limit for one message (the 134 k series of
// 16 KiB names): the snapshot is written, verified and recovered whole.
// Needs about 8 GiB of memory and a minute, so it runs only with
// GRADIENTD_LARGE_TESTS=1 (see README, Tests).
TEST_F(DataDirectoryTest, SnapshotPastTwoGibibytesIsWrittenAndRecovered) {
  if (std::getenv("GRADIENTD_LARGE_TESTS") == nullptr) {
    GTEST_SKIP() << "set GRADIENTD_LARGE_TESTS=1 to run (about 8 GiB of memory)";
  }
  constexpr int kSeries = 140'000;
  const std::string padding(16 * 1024, 'n');
  {
    auto db = Open();
    ASSERT_TRUE(db);
    v1::Snapshot state;
    for (int i = 0; i < kSeries; ++i) {
      v1::SeriesState* s = state.add_series();
      s->set_name(padding + std::to_string(i));
      s->mutable_stats()->set_n(static_cast<uint64_t>(i) + 1);
      s->mutable_stats()->set_mean_dx(0.5 * i);
    }
    db->service.Restore(state);
    ASSERT_TRUE(db->Call(Ingest("small", 1)).has_ack());
    ASSERT_TRUE(db->data->Close().ok());
  }
  const std::vector<fs::path> snapshots = Files("snapshot-");
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_GT(fs::file_size(snapshots[0]), uintmax_t{2} << 30);
  auto db = Open();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->report.series, static_cast<uint64_t>(kSeries) + 1);
  EXPECT_EQ(db->report.points, static_cast<uint64_t>(kSeries) * (kSeries + 1) / 2 + 100);
  uint64_t n = 0;
  EXPECT_TRUE(db->store.WithSeries(padding + std::to_string(kSeries - 1),
                                   [&](core::Series& s) { n = s.stats().count(); }));
  EXPECT_EQ(n, static_cast<uint64_t>(kSeries));
}

}  // namespace
}  // namespace gradientd::durable
