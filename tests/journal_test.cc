// The journal: group commit, fsync failures, torn tails and corruption.
#include "storage/journal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "storage/record_format.h"
#include "temp_dir.h"

namespace gradientd::storage {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  static v1::JournalRecord Batch(int i) {
    v1::JournalRecord r;
    r.set_series("s" + std::to_string(i % 3));
    r.mutable_batch()->set_n(static_cast<uint64_t>(i) + 1);
    r.mutable_batch()->set_pivot_x(i * 0.5);
    r.set_producer_id("p");
    r.set_sequence(static_cast<uint64_t>(i) + 1);
    return r;
  }

  // Appends `count` records and waits until they are durable.
  void Write(Journal& journal, int count) {
    uint64_t token = 0;
    for (int i = 0; i < count; ++i) ASSERT_TRUE(journal.Append(Batch(i), &token).ok());
    std::promise<Status> done;
    journal.OnDurable(token, [&](const Status& s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }

  std::string Path(uint64_t position = 0) const {
    return (dir_ / JournalFileName(position)).string();
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void Spit(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }

  // Where each record of a journal file starts.
  std::vector<std::size_t> RecordStarts(const std::string& data) {
    JournalFileContents contents;
    EXPECT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
    std::vector<std::size_t> starts;
    for (std::size_t offset = kJournalMagic.size() + kSaltBytes; offset < data.size();) {
      starts.push_back(offset);
      offset = ReadRecord(data, offset, contents.salt, kMaxJournalRecordBytes).next;
      if (offset == 0) break;
    }
    return starts;
  }

  const gradientd::testing::TestDirectory temp_{"journal_test"};
  const std::filesystem::path dir_ = temp_.path();
};

TEST_F(JournalTest, RecordsReadBackInOrder) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
    Write(*journal, 50);
  }
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
  ASSERT_EQ(contents.records.size(), 50u);
  EXPECT_EQ(contents.damaged_bytes, 0u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(contents.records[static_cast<std::size_t>(i)].SerializeAsString(),
              Batch(i).SerializeAsString());
  }
}

TEST_F(JournalTest, ConcurrentAppendersAllBecomeDurable) {
  for (FsyncMode mode : {FsyncMode::kAlways, FsyncMode::kInterval, FsyncMode::kNever}) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {},
                              {.fsync = mode, .fsync_interval = std::chrono::milliseconds(5)},
                              &journal)
                    .ok());
    std::atomic<int> acknowledged{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          uint64_t token = 0;
          ASSERT_TRUE(journal->Append(Batch(i), &token).ok());
          std::promise<Status> done;
          journal->OnDurable(token, [&](const Status& s) { done.set_value(s); });
          if (done.get_future().get().ok()) ++acknowledged;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(acknowledged.load(), 800);
    journal.reset();
    JournalFileContents contents;
    ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
    EXPECT_EQ(contents.records.size(), 800u);
  }
}

TEST_F(JournalTest, RotateStartsANewFileAtThePosition) {
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
  Write(*journal, 7);
  EXPECT_EQ(journal->Rotate(), 7u);
  Write(*journal, 3);
  journal.reset();
  JournalFileContents first, second;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(0), 0, &first).ok());
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(7), 7, &second).ok());
  EXPECT_EQ(first.records.size(), 7u);
  EXPECT_EQ(first.next_file, 7u);  // the old file names the new one
  EXPECT_EQ(second.records.size(), 3u);
  EXPECT_FALSE(second.next_file);
}

TEST_F(JournalTest, TornTailAtEveryByteOffsetKeepsTheWholeRecordsBeforeIt) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
    Write(*journal, 5);
  }
  const std::string full = Slurp(Path());
  const std::vector<std::size_t> starts = RecordStarts(full);
  ASSERT_EQ(starts.size(), 5u);
  for (std::size_t cut = starts[3]; cut <= full.size(); ++cut) {
    Spit(Path(), full.substr(0, cut));
    JournalFileContents contents;
    ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok()) << cut;
    const std::size_t whole = cut == full.size() ? 5 : (cut >= starts[4] ? 4 : 3);
    EXPECT_EQ(contents.records.size(), whole) << "cut at " << cut;
    EXPECT_EQ(contents.valid_bytes, whole == 5 ? full.size() : starts[whole]);
    EXPECT_EQ(contents.valid_bytes + contents.damaged_bytes, cut);
    EXPECT_FALSE(contents.valid_after) << "cut at " << cut;
  }
}

TEST_F(JournalTest, GarbageAfterTheLastRecordIsATornTail) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
    Write(*journal, 3);
  }
  Spit(Path(), Slurp(Path()) + std::string(100, '\0'));
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
  EXPECT_EQ(contents.records.size(), 3u);
  EXPECT_EQ(contents.damaged_bytes, 100u);
  EXPECT_FALSE(contents.valid_after);
}

TEST_F(JournalTest, CorruptionInTheMiddleIsReportedWithTheValidRecordAfterIt) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
    Write(*journal, 5);
  }
  std::string data = Slurp(Path());
  const std::vector<std::size_t> starts = RecordStarts(data);
  data[starts[1] + kRecordHeaderBytes + 2] ^= 0x40;  // a payload byte of record 1
  Spit(Path(), data);
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
  EXPECT_EQ(contents.records.size(), 1u);
  EXPECT_EQ(contents.valid_bytes, starts[1]);
  EXPECT_EQ(contents.valid_after, starts[2]);
  EXPECT_EQ(contents.damage, "a checksum mismatch");
}

// A client chooses producer ids and series names, which end up inside
// journal records. Bytes that look like a whole record (framed with any
// salt the client could know) must never make a torn tail look like
// damage in the middle of the file, which would stop restarts.
TEST_F(JournalTest, PayloadBytesThatImitateARecordCannotFoolTheTornTailCheck) {
  // Whole records as a client could frame them: with a salt it might guess,
  // and made of ASCII (a string field must be valid UTF-8), found by trying
  // sequence numbers until the checksum's bytes are ASCII too.
  std::string forged;
  for (const std::string& salt : {std::string(kSaltBytes, '\0'), std::string(kSaltBytes, 'A')}) {
    for (uint64_t index = 0; index < 4; ++index) {
      for (uint64_t sequence = 1; sequence < 100000; ++sequence) {
        v1::JournalRecord inner;
        inner.set_series("s");
        inner.set_sequence(sequence % 128);
        inner.set_producer_id(std::to_string(sequence));
        std::string framed;
        AppendRecord(salt, index, 1, inner.SerializeAsString(), &framed);
        if (std::all_of(framed.begin(), framed.end(),
                        [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
          forged += framed;
          break;
        }
      }
    }
  }
  ASSERT_GT(forged.size(), 4 * kRecordHeaderBytes);
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
    Write(*journal, 1);
    v1::JournalRecord crafted = Batch(1);
    crafted.set_producer_id(forged);
    crafted.set_series(forged);
    uint64_t token = 0;
    ASSERT_TRUE(journal->Append(crafted, &token).ok());
    std::promise<Status> done;
    journal->OnDurable(token, [&](const Status& s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }
  const std::string full = Slurp(Path());
  const std::vector<std::size_t> starts = RecordStarts(full);
  ASSERT_EQ(starts.size(), 2u);
  // Torn anywhere inside the crafted record: a torn tail, every time.
  for (std::size_t cut = starts[1]; cut < full.size(); ++cut) {
    Spit(Path(), full.substr(0, cut));
    JournalFileContents contents;
    ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
    ASSERT_EQ(contents.records.size(), 1u) << "cut at " << cut;
    ASSERT_FALSE(contents.valid_after) << "cut at " << cut << ": payload bytes taken for a record";
  }
}

TEST_F(JournalTest, FailedWriteFailsTheWaitersAndEveryLaterAppend) {
  FaultInjectingFileSystem fs(PosixFileSystem());
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, {}, &journal).ok());
  Write(*journal, 2);
  EXPECT_TRUE(journal->health().ok());
  fs.FailWritesAfter(10);  // the next record is cut short, as on a full disk
  uint64_t token = 0;
  ASSERT_TRUE(journal->Append(Batch(2), &token).ok());
  std::promise<Status> done;
  journal->OnDurable(token, [&](const Status& s) { done.set_value(s); });
  const Status s = done.get_future().get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
  EXPECT_FALSE(journal->Append(Batch(3), &token).ok());
  // What /readyz reports from now on.
  EXPECT_EQ(journal->health().code(), s.code());
  EXPECT_EQ(journal->health().message(), s.message());
  journal.reset();
  // What is on disk: the two durable records, and nothing of the failed
  // write: it was cut back.
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
  EXPECT_EQ(contents.records.size(), 2u);
  EXPECT_EQ(contents.damaged_bytes, 0u);
}

// A group commit that fails part-way leaves whole records in the file; a
// restart must not apply a change that was answered with an error, or a
// producer that retries it counts it twice.
TEST_F(JournalTest, GroupCommitFailingPartWayLeavesOnlyAcknowledgedRecords) {
  for (FsyncMode mode : {FsyncMode::kAlways, FsyncMode::kInterval, FsyncMode::kNever}) {
    for (uint64_t budget : {0u, 1u, 200u, 1000u, 5000u}) {
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
      FaultInjectingFileSystem fs(PosixFileSystem());
      std::unique_ptr<Journal> journal;
      ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, {.fsync = mode}, &journal).ok());
      Write(*journal, 3);
      fs.FailWritesAfter(budget);
      std::vector<uint64_t> tokens(100);
      for (int i = 0; i < 100; ++i) {
        if (!journal->Append(Batch(i + 3), &tokens[static_cast<std::size_t>(i)]).ok()) {
          tokens.resize(static_cast<std::size_t>(i));
          break;
        }
      }
      ASSERT_FALSE(tokens.empty());
      std::promise<Status> done;
      journal->OnDurable(tokens.back(), [&](const Status& s) { done.set_value(s); });
      (void)done.get_future().get();
      // Every change by its own fate; the acknowledged ones are a prefix.
      std::size_t acknowledged = 0;
      for (uint64_t token : tokens) {
        const bool ok = journal->Outcome(token).ok();
        if (ok) {
          EXPECT_EQ(acknowledged, token - 4) << "a hole in what was acknowledged";
          ++acknowledged;
        }
      }
      journal.reset();
      fs.StopFailingWrites();
      JournalFileContents contents;
      ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
      EXPECT_EQ(contents.records.size(), 3 + acknowledged)
          << "mode " << static_cast<int>(mode) << ", budget " << budget;
      EXPECT_EQ(contents.damaged_bytes, 0u);
    }
  }
}

TEST_F(JournalTest, ChangesDurableBeforeAFailureAreStillAcknowledged) {
  FaultInjectingFileSystem fs(PosixFileSystem());
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, {}, &journal).ok());
  Write(*journal, 2);  // tokens 1 and 2 are durable
  fs.FailWritesAfter(0);
  uint64_t token = 0;
  ASSERT_TRUE(journal->Append(Batch(2), &token).ok());
  std::promise<Status> failed;
  journal->OnDurable(token, [&](const Status& s) { failed.set_value(s); });
  ASSERT_FALSE(failed.get_future().get().ok());
  EXPECT_TRUE(journal->Outcome(1).ok());
  EXPECT_TRUE(journal->Outcome(2).ok());
  EXPECT_FALSE(journal->Outcome(3).ok());
  std::promise<Status> earlier;
  journal->OnDurable(2, [&](const Status& s) { earlier.set_value(s); });
  EXPECT_TRUE(earlier.get_future().get().ok());
}

// Out of descriptors at a checkpoint must not stop every later write.
TEST_F(JournalTest, RotationThatCannotOpenItsFileStaysInTheCurrentFileAndRetries) {
  FaultInjectingFileSystem fs(PosixFileSystem());
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, {}, &journal).ok());
  Write(*journal, 4);
  fs.FailOpens(true);
  EXPECT_EQ(journal->Rotate(), 4u);
  ASSERT_TRUE(journal->Sync().ok());
  EXPECT_EQ(journal->file_start(), 0u);
  EXPECT_NE(journal->rotation_error().find("Too many open files"), std::string::npos)
      << journal->rotation_error();
  Write(*journal, 3);  // still accepted and durable
  fs.FailOpens(false);
  EXPECT_EQ(journal->Rotate(), 7u);
  ASSERT_TRUE(journal->Sync().ok());
  EXPECT_EQ(journal->file_start(), 7u);
  EXPECT_EQ(journal->rotation_error(), "");
  Write(*journal, 2);
  journal.reset();
  JournalFileContents first, second;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(0), 0, &first).ok());
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(7), 7, &second).ok());
  EXPECT_EQ(first.records.size(), 7u);
  EXPECT_EQ(first.next_file, 7u);
  EXPECT_EQ(second.records.size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(Path(4)));  // the failed file left nothing behind
}

// A journal record is bounded by construction (names and producer ids are
// bounded); one over the limit is refused and the journal goes on.
TEST_F(JournalTest, RecordOverTheLimitIsRefusedAndTheJournalGoesOn) {
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, {}, &journal).ok());
  v1::JournalRecord huge = Batch(0);
  huge.set_series(std::string(kMaxJournalRecordBytes, 's'));
  uint64_t token = 0;
  const Status s = journal->Append(huge, &token);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  Write(*journal, 2);
  journal.reset();
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), 0, &contents).ok());
  EXPECT_EQ(contents.records.size(), 2u);
}

TEST_F(JournalTest, FailedFsyncIsNeverAcknowledged) {
  FaultInjectingFileSystem fs(PosixFileSystem());
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, {}, &journal).ok());
  fs.FailSyncs(true);
  uint64_t token = 0;
  ASSERT_TRUE(journal->Append(Batch(0), &token).ok());
  std::promise<Status> done;
  journal->OnDurable(token, [&](const Status& s) { done.set_value(s); });
  const Status s = done.get_future().get();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("fsync"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace gradientd::storage
