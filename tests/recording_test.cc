// The recording file format: RecordingWriter and RecordingReader.
#include "recording/recording.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "protocol/frame_codec.h"
#include "temp_dir.h"

namespace gradientd::storage {
namespace {

using Result = RecordingReader::Result;

class RecordingTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void WriteAll(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  static v1::RecordedBatch Batch(uint64_t sequence, int points, std::string series = "s") {
    v1::RecordedBatch b;
    b.set_series(std::move(series));
    for (int i = 0; i < points; ++i) {
      b.add_x(static_cast<double>(i) + 0.5 * static_cast<double>(sequence));
      b.add_y(-static_cast<double>(i) * 1e-3);
    }
    b.set_producer_id("p-1");
    b.set_sequence(sequence);
    b.set_time_unix_nanos(1'700'000'000'000'000'000 + static_cast<int64_t>(sequence) * 1000);
    return b;
  }

  // Writes `batches` to `name` and returns the path.
  std::string WriteRecording(const std::string& name,
                             const std::vector<v1::RecordedBatch>& batches) {
    std::unique_ptr<RecordingWriter> writer;
    const std::string path = Path(name);
    EXPECT_TRUE(RecordingWriter::Create(path, &writer).ok());
    for (const auto& b : batches) EXPECT_TRUE(writer->Append(b).ok());
    EXPECT_TRUE(writer->Close().ok());
    return path;
  }

  // Reads every record; returns the final result.
  static Result ReadAllRecords(RecordingReader* reader, std::vector<v1::RecordedBatch>* out) {
    while (true) {
      v1::RecordedBatch b;
      const Result r = reader->Next(&b);
      if (r != Result::kRecord) return r;
      out->push_back(b);
    }
  }

  const gradientd::testing::TestDirectory temp_{"recording_test"};
  const std::filesystem::path dir_ = temp_.path();
};

bool Same(const v1::RecordedBatch& a, const v1::RecordedBatch& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

TEST_F(RecordingTest, RoundTrip) {
  std::vector<v1::RecordedBatch> batches;
  batches.push_back(Batch(1, 3));
  batches.push_back(Batch(2, 0));                        // an empty batch is a record too
  batches.push_back(v1::RecordedBatch());                // all defaults: a zero-length record
  batches.push_back(Batch(4, 100000, "größe/ünïcode"));  // larger than the read chunk
  batches.push_back(Batch(5, 1));
  const std::string path = WriteRecording("r.grd", batches);

  const std::string bytes = ReadAll(path);
  ASSERT_GE(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 8), "GRDREC01");

  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  EXPECT_EQ(reader->file_size(), bytes.size());
  std::vector<v1::RecordedBatch> read;
  EXPECT_EQ(ReadAllRecords(reader.get(), &read), Result::kEnd);
  ASSERT_EQ(read.size(), batches.size());
  for (std::size_t i = 0; i < batches.size(); ++i) {
    EXPECT_TRUE(Same(read[i], batches[i])) << "record " << i;
  }
  EXPECT_EQ(reader->records(), batches.size());
  EXPECT_EQ(reader->offset(), bytes.size());
  // The end is final.
  v1::RecordedBatch b;
  EXPECT_EQ(reader->Next(&b), Result::kEnd);
}

// gradientd --record keeps each batch's event time as applied (0 and a
// negative time included: present, not defaulted); a record written without
// one reads back without one.
TEST_F(RecordingTest, EventTimesAsAppliedReadBackExactly) {
  v1::PointBatch sent;
  sent.add_x(1);
  sent.add_y(2);
  sent.set_producer_id("p");
  sent.set_sequence(3);
  const std::vector<int64_t> times = {1'700'000'000'123'456'789, 0, -5, INT64_MAX};
  std::vector<v1::RecordedBatch> batches;
  for (const int64_t t : times) batches.push_back(RecordAcceptedBatch("s", sent, 42, t));
  batches.push_back(Batch(9, 1));  // as gradctl produce --save writes one without
  const std::string path = WriteRecording("e.grd", batches);
  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  std::vector<v1::RecordedBatch> read;
  EXPECT_EQ(ReadAllRecords(reader.get(), &read), Result::kEnd);
  ASSERT_EQ(read.size(), times.size() + 1);
  for (std::size_t i = 0; i < times.size(); ++i) {
    ASSERT_TRUE(read[i].has_event_time_unix_nanos()) << i;
    EXPECT_EQ(read[i].event_time_unix_nanos(), times[i]);
    EXPECT_EQ(read[i].time_unix_nanos(), 42);
    EXPECT_EQ(read[i].series(), "s");
    EXPECT_EQ(read[i].sequence(), 3u);
  }
  EXPECT_FALSE(read.back().has_event_time_unix_nanos());
}

TEST_F(RecordingTest, FramingIsTheWireProtocols) {
  const v1::RecordedBatch batch = Batch(7, 2);
  const std::string path = WriteRecording("f.grd", {batch});
  std::string expected = "GRDREC01";
  protocol::AppendFrame(batch, &expected);
  EXPECT_EQ(ReadAll(path), expected);
}

TEST_F(RecordingTest, EmptyRecordingHasOnlyTheHeader) {
  const std::string path = WriteRecording("e.grd", {});
  EXPECT_EQ(ReadAll(path), "GRDREC01");
  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  v1::RecordedBatch b;
  EXPECT_EQ(reader->Next(&b), Result::kEnd);
  EXPECT_EQ(reader->records(), 0u);
}

TEST_F(RecordingTest, CreateTruncatesAnExistingFile) {
  const std::string path = Path("t.grd");
  WriteAll(path, std::string(10000, 'x'));
  std::unique_ptr<RecordingWriter> writer;
  ASSERT_TRUE(RecordingWriter::Create(path, &writer).ok());
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_EQ(ReadAll(path), "GRDREC01");
}

TEST_F(RecordingTest, FlushMakesRecordsReadableWhileWriting) {
  std::unique_ptr<RecordingWriter> writer;
  const std::string path = Path("w.grd");
  ASSERT_TRUE(RecordingWriter::Create(path, &writer).ok());
  ASSERT_TRUE(writer->Append(Batch(1, 10)).ok());
  ASSERT_TRUE(writer->Sync().ok());
  EXPECT_EQ(writer->records(), 1u);
  EXPECT_EQ(writer->bytes(), ReadAll(path).size());
  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  std::vector<v1::RecordedBatch> read;
  EXPECT_EQ(ReadAllRecords(reader.get(), &read), Result::kEnd);
  EXPECT_EQ(read.size(), 1u);
}

TEST_F(RecordingTest, ConcurrentAppendsKeepEveryRecordWhole) {
  std::unique_ptr<RecordingWriter> writer;
  const std::string path = Path("c.grd");
  ASSERT_TRUE(RecordingWriter::Create(path, &writer).ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        v1::RecordedBatch b = Batch(static_cast<uint64_t>(i + 1), 1 + i % 50);
        b.set_producer_id("thread-" + std::to_string(t));
        EXPECT_TRUE(writer->Append(b).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(writer->Close().ok());

  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  std::vector<v1::RecordedBatch> read;
  ASSERT_EQ(ReadAllRecords(reader.get(), &read), Result::kEnd);
  ASSERT_EQ(read.size(), static_cast<std::size_t>(kThreads * kPerThread));
  // Per producer, the sequences arrive in order and each batch is intact.
  std::vector<uint64_t> next(kThreads, 1);
  for (const auto& b : read) {
    const int t = std::stoi(b.producer_id().substr(7));
    ASSERT_EQ(b.sequence(), next[static_cast<std::size_t>(t)]++);
    v1::RecordedBatch expected = Batch(b.sequence(), 1 + static_cast<int>(b.sequence() - 1) % 50);
    expected.set_producer_id(b.producer_id());
    EXPECT_TRUE(Same(b, expected));
  }
}

TEST_F(RecordingTest, HeaderErrors) {
  struct Case {
    std::string name;
    std::string bytes;
    std::string message;  // a substring of the error
  };
  const std::vector<Case> cases = {
      {"empty", "", "is not a gradientd recording: the file is empty"},
      {"csv", "x,y\n1,2\n", "is not a gradientd recording: it starts with \"x,y\\x0a1,2\\x0a\""},
      {"other", "GRDXXX01rest", "is not a gradientd recording"},
      {"short", "GRDRE", "truncated recording header: 5 bytes of the 8"},
      {"version", "GRDREC02", "unsupported recording version '02'"},
      {"version-garbage", std::string("GRDREC\xff\x01", 8),
       "unsupported recording version '\\xff\\x01'"},
  };
  for (const Case& c : cases) {
    const std::string path = Path(c.name);
    WriteAll(path, c.bytes);
    std::unique_ptr<RecordingReader> reader;
    const Status s = RecordingReader::Open(path, &reader);
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_NE(s.message().find(path), std::string::npos) << c.name << ": " << s.message();
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.name << ": " << s.message();
    EXPECT_EQ(reader, nullptr);
  }
}

TEST_F(RecordingTest, MissingFileAndDirectory) {
  std::unique_ptr<RecordingReader> reader;
  Status s = RecordingReader::Open(Path("missing.grd"), &reader);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot open " + Path("missing.grd") + ": No such file or directory"),
            std::string::npos)
      << s.message();
  s = RecordingReader::Open(dir_.string(), &reader);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is a directory"), std::string::npos) << s.message();

  std::unique_ptr<RecordingWriter> writer;
  s = RecordingWriter::Create(Path("no/such/dir/r.grd"), &writer);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no/such/dir/r.grd: No such file or directory"), std::string::npos)
      << s.message();
}

TEST_F(RecordingTest, WriteErrorNamesTheFileAndIsSticky) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::unique_ptr<RecordingWriter> writer;
  const Status s = RecordingWriter::Create("/dev/full", &writer);
  // The header is written at once: the full device refuses it.
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("/dev/full: No space left on device"), std::string::npos)
      << s.message();
}

TEST_F(RecordingTest, Sniff) {
  EXPECT_TRUE(LooksLikeRecording("GRDREC01"));
  EXPECT_TRUE(LooksLikeRecording("GRDREC99"));  // a recording, of another version
  EXPECT_TRUE(LooksLikeRecording("GRD"));       // a truncated header
  EXPECT_FALSE(LooksLikeRecording(""));
  EXPECT_FALSE(LooksLikeRecording("x,y\n"));
  EXPECT_FALSE(LooksLikeRecording("GRDX"));
  const std::string path = WriteRecording("s.grd", {Batch(1, 1)});
  bool is_recording = false;
  ASSERT_TRUE(SniffRecording(path, &is_recording).ok());
  EXPECT_TRUE(is_recording);
  WriteAll(Path("s.csv"), "1,2\n");
  ASSERT_TRUE(SniffRecording(Path("s.csv"), &is_recording).ok());
  EXPECT_FALSE(is_recording);
  EXPECT_FALSE(SniffRecording(Path("nope"), &is_recording).ok());
}

// A file cut at every byte offset inside its last record: every earlier record
// is read, then the truncation is reported with where the last whole record
// ends and how many whole records there were.
TEST_F(RecordingTest, TruncatedAtEveryOffsetOfTheLastRecord) {
  std::vector<v1::RecordedBatch> batches = {Batch(1, 2), Batch(2, 5), Batch(3, 40)};
  const std::string full = ReadAll(WriteRecording("full.grd", batches));
  std::string prefix = "GRDREC01";
  protocol::AppendFrame(batches[0], &prefix);
  protocol::AppendFrame(batches[1], &prefix);
  ASSERT_GT(full.size(), prefix.size() + 2);  // the last record has a 2-byte size varint
  ASSERT_EQ(full.compare(0, prefix.size(), prefix), 0);

  const std::string path = Path("cut.grd");
  for (std::size_t cut = prefix.size(); cut <= full.size(); ++cut) {
    WriteAll(path, full.substr(0, cut));
    std::unique_ptr<RecordingReader> reader;
    ASSERT_TRUE(RecordingReader::Open(path, &reader).ok()) << cut;
    std::vector<v1::RecordedBatch> read;
    const Result r = ReadAllRecords(reader.get(), &read);
    if (cut == prefix.size() || cut == full.size()) {
      // At a record boundary: a clean end.
      EXPECT_EQ(r, Result::kEnd) << cut;
      EXPECT_EQ(read.size(), cut == full.size() ? 3u : 2u) << cut;
      continue;
    }
    ASSERT_EQ(r, Result::kTruncated) << "cut at " << cut;
    ASSERT_EQ(read.size(), 2u) << cut;
    EXPECT_TRUE(Same(read[0], batches[0]));
    EXPECT_TRUE(Same(read[1], batches[1]));
    EXPECT_EQ(reader->records(), 2u);
    EXPECT_EQ(reader->offset(), prefix.size());
    EXPECT_EQ(reader->truncated_bytes(), cut - prefix.size());
    EXPECT_EQ(reader->TruncationMessage(),
              path + ": truncated at byte offset " + std::to_string(prefix.size()) +
                  " after 2 whole records (the last " + std::to_string(cut - prefix.size()) +
                  (cut - prefix.size() == 1 ? " byte is" : " bytes are") +
                  " an incomplete record)");
    v1::RecordedBatch b;
    EXPECT_EQ(reader->Next(&b), Result::kTruncated);  // final
  }
}

TEST_F(RecordingTest, TruncatedInsideTheFirstRecord) {
  const std::string full = ReadAll(WriteRecording("one.grd", {Batch(1, 10)}));
  for (std::size_t cut = 9; cut < full.size(); ++cut) {
    const std::string path = Path("cut1.grd");
    WriteAll(path, full.substr(0, cut));
    std::unique_ptr<RecordingReader> reader;
    ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
    v1::RecordedBatch b;
    EXPECT_EQ(reader->Next(&b), Result::kTruncated) << cut;
    EXPECT_EQ(reader->records(), 0u);
    EXPECT_EQ(reader->offset(), 8u);
    EXPECT_NE(reader->TruncationMessage().find("after 0 whole records"), std::string::npos);
  }
}

TEST_F(RecordingTest, GarbageRecordIsAnError) {
  const std::vector<v1::RecordedBatch> batches = {Batch(1, 3)};
  const std::string good = ReadAll(WriteRecording("g.grd", batches));
  // A whole frame whose body is not a RecordedBatch: field 1 with wire type
  // 7, which does not exist.
  const std::string garbage = good + std::string("\x03\x0f\xff\xff", 4) + good.substr(8);
  const std::string path = Path("garbage.grd");
  WriteAll(path, garbage);
  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  std::vector<v1::RecordedBatch> read;
  EXPECT_EQ(ReadAllRecords(reader.get(), &read), Result::kError);
  EXPECT_EQ(read.size(), 1u);  // the record before it was read
  EXPECT_FALSE(reader->error().ok());
  EXPECT_EQ(reader->error().message(), path + ": record 2 at byte offset " +
                                           std::to_string(good.size()) +
                                           " (3 bytes) is corrupt: it is not a RecordedBatch");
  v1::RecordedBatch b;
  EXPECT_EQ(reader->Next(&b), Result::kError);  // final, and nothing after it is read
}

TEST_F(RecordingTest, OversizeOrMalformedLengthIsAnError) {
  // A declared size over the limit (2^40), even though the file ends first:
  // corruption, not truncation.
  const std::string path = Path("big.grd");
  WriteAll(path, std::string("GRDREC01") + std::string("\x80\x80\x80\x80\x80\x20", 6));
  std::unique_ptr<RecordingReader> reader;
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  v1::RecordedBatch b;
  EXPECT_EQ(reader->Next(&b), Result::kError);
  EXPECT_NE(reader->error().message().find("record 1 at byte offset 8 is corrupt"),
            std::string::npos)
      << reader->error().message();

  // A varint longer than 64 bits.
  WriteAll(path, std::string("GRDREC01") + std::string(11, '\x80'));
  ASSERT_TRUE(RecordingReader::Open(path, &reader).ok());
  EXPECT_EQ(reader->Next(&b), Result::kError);
}

}  // namespace
}  // namespace gradientd::storage
