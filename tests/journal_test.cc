// The journal: group commit, fsync failures, torn tails and corruption.
#include "storage/journal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "storage/record_format.h"

namespace gradientd::storage {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("journal_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

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

  std::filesystem::path dir_;
};

TEST_F(JournalTest, RecordsReadBackInOrder) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, &journal).ok());
    Write(*journal, 50);
  }
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), &contents).ok());
  ASSERT_EQ(contents.records.size(), 50u);
  EXPECT_EQ(contents.torn_bytes, 0u);
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
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0,
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
    ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), &contents).ok());
    EXPECT_EQ(contents.records.size(), 800u);
  }
}

TEST_F(JournalTest, RotateStartsANewFileAtThePosition) {
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, &journal).ok());
  Write(*journal, 7);
  EXPECT_EQ(journal->Rotate(), 7u);
  Write(*journal, 3);
  journal.reset();
  JournalFileContents first, second;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(0), &first).ok());
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(7), &second).ok());
  EXPECT_EQ(first.records.size(), 7u);
  EXPECT_EQ(second.records.size(), 3u);
}

TEST_F(JournalTest, TornTailAtEveryByteOffsetKeepsTheWholeRecordsBeforeIt) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, &journal).ok());
    Write(*journal, 5);
  }
  const std::string full = Slurp(Path());
  // Where each record starts.
  std::vector<std::size_t> starts;
  for (std::size_t offset = kJournalMagic.size(); offset < full.size();) {
    starts.push_back(offset);
    offset = ReadRecord(full, offset).next;
  }
  ASSERT_EQ(starts.size(), 5u);
  for (std::size_t cut = starts[3]; cut <= full.size(); ++cut) {
    Spit(Path(), full.substr(0, cut));
    JournalFileContents contents;
    ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), &contents).ok()) << cut;
    const std::size_t whole = cut == full.size() ? 5 : (cut >= starts[4] ? 4 : 3);
    EXPECT_EQ(contents.records.size(), whole) << "cut at " << cut;
    EXPECT_EQ(contents.valid_bytes, whole == 5 ? full.size() : starts[whole]);
    EXPECT_EQ(contents.valid_bytes + contents.torn_bytes, cut);
  }
}

TEST_F(JournalTest, GarbageAfterTheLastRecordIsATornTail) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, &journal).ok());
    Write(*journal, 3);
  }
  Spit(Path(), Slurp(Path()) + std::string(100, '\0'));
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), &contents).ok());
  EXPECT_EQ(contents.records.size(), 3u);
  EXPECT_EQ(contents.torn_bytes, 100u);
}

TEST_F(JournalTest, CorruptionInTheMiddleIsAnErrorNamingFileAndOffset) {
  {
    std::unique_ptr<Journal> journal;
    ASSERT_TRUE(Journal::Open(PosixFileSystem(), dir_, 0, {}, &journal).ok());
    Write(*journal, 5);
  }
  std::string data = Slurp(Path());
  const std::size_t second = ReadRecord(data, kJournalMagic.size()).next;
  data[second + kRecordHeaderBytes + 2] ^= 0x40;  // a payload byte of record 1
  Spit(Path(), data);
  JournalFileContents contents;
  const Status s = ReadJournalFile(PosixFileSystem(), Path(), &contents);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(Path()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset " + std::to_string(second)), std::string::npos) << s.message();
}

TEST_F(JournalTest, FailedWriteFailsTheWaitersAndEveryLaterAppend) {
  FaultInjectingFileSystem fs(PosixFileSystem());
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, &journal).ok());
  Write(*journal, 2);
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
  journal.reset();
  // What is on disk: the two durable records and a torn tail.
  JournalFileContents contents;
  ASSERT_TRUE(ReadJournalFile(PosixFileSystem(), Path(), &contents).ok());
  EXPECT_EQ(contents.records.size(), 2u);
  EXPECT_EQ(contents.torn_bytes, 10u);
}

TEST_F(JournalTest, FailedFsyncIsNeverAcknowledged) {
  FaultInjectingFileSystem fs(PosixFileSystem());
  std::unique_ptr<Journal> journal;
  ASSERT_TRUE(Journal::Open(fs, dir_, 0, {}, &journal).ok());
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
