// The checks behind recovery_fuzz, shared with tests/fuzz_regression_test.cc:
// recovery (durable::DataDirectory::Open on a fresh service::Service) from a
// data directory made from the input must either refuse with a message that
// names what is wrong, or recover a state that is consistent; never crash,
// hang or leak. The directory lives under /dev/shm (or $TMPDIR), one per
// process, emptied for every input.
//
// Input format: byte 0's low bit picks the mode.
//
//  Files (bit 0 clear): arbitrary directory contents. Then up to 16 entries
//  [u8 name length][name][u16 LE data length][data]; a name that is not a
//  plain file name ([A-Za-z0-9._-], not "." or "..", at most 64 bytes) is
//  replaced by "f<index>". Checks: an error has a non-empty message and
//  deleted or changed no file (but cut a torn tail, or removed a *.tmp); a
//  recovered state is sane (finite means, the report's totals equal the
//  list), and Close then Open again recovers the same state bit for bit.
//  RecoverySeeds() encodes real data directories (journals, snapshots, from
//  a real run of the storage code) in this format: the seeds are made at
//  test time, so they follow the storage format as it changes.
//
//  History (bit 0 set): a history of changes made through a real
//  DataDirectory, then damage, then recovery. Byte 1: the number of changes
//  (at most 64), two bytes each (see ApplyChange): ingest (plain or
//  exactly-once, sometimes a duplicate), configure, step, reset, or an
//  explicit checkpoint. The DataDirectory is then dropped without Close (as
//  by kill -9), and every following 4 bytes damage the directory's files (at
//  most 4: truncate a file, flip a byte, delete a file, append garbage; see
//  Damage). Checks: an error has a non-empty message; a recovered state must
//  equal the state after some prefix of the changes (computed by replaying
//  them on an in-memory Service), the whole history when nothing was
//  damaged; and an exactly-once batch of that prefix resent now is a
//  duplicate.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <set>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "durable/data_directory.h"
#include "durable_call.h"
#include "fuzz/frame_decoder_checks.h"
#include "gradientd/v1/gradientd.pb.h"
#include "service/series_store.h"
#include "service/service.h"

namespace gradientd::fuzz {

namespace recovery {

namespace fs = std::filesystem;

inline constexpr size_t kMaxFiles = 16;
inline constexpr size_t kMaxChanges = 64;
inline constexpr size_t kMaxDamages = 4;

// This process's scratch directory, emptied for each input, under
// $GRADIENTD_FUZZ_SCRATCH (tools/fuzz.sh sets it and removes it: libFuzzer
// ends with _Exit, so atexit handlers do not run there), else /dev/shm, else
// the temporary directory.
inline fs::path MakeScratchPath() {
  std::error_code ec;
  const char* parent = std::getenv("GRADIENTD_FUZZ_SCRATCH");
  const fs::path base = parent != nullptr && *parent != '\0' ? fs::path(parent)
                        : fs::is_directory("/dev/shm", ec)   ? fs::path("/dev/shm")
                                                             : fs::temp_directory_path();
  return base / ("gradientd-recovery-fuzz-" + std::to_string(::getpid()));
}

inline const fs::path& ScratchDir();
inline void RemoveScratchDir() {
  std::error_code ignored;
  fs::remove_all(ScratchDir(), ignored);
}

inline const fs::path& ScratchDir() {
  static const fs::path dir = MakeScratchPath();
  // Registered once `dir` is constructed, so it runs before `dir` is destroyed.
  static const bool registered = (std::atexit(RemoveScratchDir), true);
  (void)registered;
  return dir;
}

inline fs::path FreshDataDir() {
  std::error_code ec;
  fs::remove_all(ScratchDir(), ec);
  fs::create_directories(ScratchDir() / "data", ec);
  GRADIENTD_FUZZ_CHECK(!ec, "cannot create " + (ScratchDir() / "data").string());
  return ScratchDir() / "data";
}

// A Service over its own store, opened on a data directory. Its clock is
// fixed, so that a batch without an event time is stamped the same in every
// instance (the reference and each recovery compare whole replies).
struct Instance {
  Instance() {
    service.SetClock([] { return int64_t{1'700'000'000'000'000'000}; });
  }
  service::SeriesStore store;
  service::Service service{store};
  std::unique_ptr<durable::DataDirectory> data;
  durable::RecoveryReport report;

  Status Open(const fs::path& dir) {
    durable::DataDirectoryOptions options;
    options.path = dir.string();
    options.journal.fsync = storage::FsyncMode::kNever;    // no OS crash here
    options.checkpoint_interval = std::chrono::hours(24);  // only explicit ones
    options.checkpoint_bytes = uint64_t{1} << 40;
    return durable::DataDirectory::Open(options, service, &data, &report);
  }

  // Handles a request and, with a data directory, waits until it is durable.
  v1::Response Call(const v1::Request& request) {
    return gradientd::testing::CallDurably(service, data.get(), request);
  }

  v1::SeriesList List() {
    v1::Request r;
    r.mutable_list();
    v1::Response response;
    service.Handle(r, &response);
    return response.series_list();
  }
  std::string State() { return List().SerializeAsString(); }
};

// A recovered state must be one a client could have made.
inline void CheckSane(Instance& db, const std::string& where) {
  const v1::SeriesList list = db.List();
  uint64_t points = 0;
  for (const v1::FitReply& fit : list.series()) {
    points += fit.n();
    GRADIENTD_FUZZ_CHECK(!fit.series().empty(), where + ": a series without a name");
    if (fit.n() > 0) {
      GRADIENTD_FUZZ_CHECK(std::isfinite(fit.mean_x()) && std::isfinite(fit.mean_y()),
                           where + ": series " + fit.series() + " has non-finite means");
    }
  }
  uint64_t series = 0, total = 0;
  db.service.Totals(&series, &total);
  GRADIENTD_FUZZ_CHECK(series == static_cast<uint64_t>(list.series_size()),
                       where + ": Totals says " + std::to_string(series) + " series, list shows " +
                           std::to_string(list.series_size()));
  GRADIENTD_FUZZ_CHECK(total == points, where + ": Totals says " + std::to_string(total) +
                                            " points, list shows " + std::to_string(points));
  GRADIENTD_FUZZ_CHECK(db.report.points == points && db.report.series == series,
                       where + ": the recovery report says " + std::to_string(db.report.series) +
                           " series, " + std::to_string(db.report.points) + " points; list " +
                           std::to_string(series) + ", " + std::to_string(points));
}

// ---------------------------------------------------------------------------
// Files mode.

inline bool PlainFileName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

inline void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  GRADIENTD_FUZZ_CHECK(static_cast<bool>(out), "cannot write " + path.string());
}

inline std::string ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every regular file of `dir` but LOCK, by name.
inline std::map<std::string, std::string> Contents(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name != "LOCK") files[name] = ReadWholeFile(entry.path());
  }
  return files;
}

// "Nothing is deleted or truncated when Open fails, except a torn journal
// tail" (durable/data_directory.h): every file is still there, the same or
// cut to a prefix of itself; only interrupted snapshots (*.tmp) may go.
inline void CheckNothingLostOnRefusal(const std::map<std::string, std::string>& before,
                                      const std::map<std::string, std::string>& after,
                                      const std::string& refusal) {
  for (const auto& [name, bytes] : before) {
    if (name.ends_with(".tmp")) continue;
    const auto it = after.find(name);
    GRADIENTD_FUZZ_CHECK(it != after.end(),
                         "recovery refused (" + refusal + ") but deleted " + name);
    GRADIENTD_FUZZ_CHECK(
        it->second.size() <= bytes.size() && bytes.compare(0, it->second.size(), it->second) == 0,
        "recovery refused (" + refusal + ") but changed " + name +
            " other than by cutting its tail");
  }
}

inline void CheckFiles(std::span<const uint8_t> data) {
  const fs::path dir = FreshDataDir();
  size_t at = 1;
  for (size_t index = 0; index < kMaxFiles && at < data.size(); ++index) {
    const size_t name_size = data[at++];
    std::string name(reinterpret_cast<const char*>(data.data()) + at,
                     std::min(name_size, data.size() - at));
    at += name.size();
    if (at + 2 > data.size()) break;
    const size_t size = data[at] | (size_t{data[at + 1]} << 8);
    at += 2;
    const std::string bytes(reinterpret_cast<const char*>(data.data()) + at,
                            std::min(size, data.size() - at));
    at += bytes.size();
    if (!PlainFileName(name)) name = "f" + std::to_string(index);
    WriteFile(dir / name, bytes);
  }

  const std::map<std::string, std::string> before = Contents(dir);
  std::string state;
  {
    Instance db;
    const Status s = db.Open(dir);
    if (!s.ok()) {
      GRADIENTD_FUZZ_CHECK(!s.message().empty(), "recovery refused without a message");
      CheckNothingLostOnRefusal(before, Contents(dir), s.message());
      return;
    }
    CheckSane(db, "recovered from arbitrary files");
    state = db.State();
    const Status closed = db.data->Close();
    if (!closed.ok()) {
      GRADIENTD_FUZZ_CHECK(!closed.message().empty(), "Close failed without a message");
      return;
    }
  }
  Instance again;
  const Status s = again.Open(dir);
  GRADIENTD_FUZZ_CHECK(s.ok(), "recovered once, closed, then refused: " + s.message());
  GRADIENTD_FUZZ_CHECK(again.State() == state,
                       "recovering again after Close gives a different state");
}

// ---------------------------------------------------------------------------
// History mode.

// What a history has done so far: the exactly-once producers' sequences.
struct History {
  std::map<int, std::set<uint64_t>> applied;  // producer index -> sequences applied
  int next_x = 0;
};

inline uint64_t Highest(const std::set<uint64_t>& applied) {
  return applied.empty() ? 0 : *applied.rbegin();
}

// The highest sequence below the highest applied that was not applied; 0
// when there is none.
inline uint64_t HighestHole(const std::set<uint64_t>& applied) {
  for (uint64_t s = Highest(applied); s > 1; --s) {
    if (!applied.count(s - 1)) return s - 1;
  }
  return 0;
}

inline v1::Request ChangeRequest(uint8_t kind_byte, uint8_t arg, History& h, bool* checkpoint) {
  v1::Request r;
  *checkpoint = false;
  const std::string series = "s" + std::to_string(arg % 3);
  switch (kind_byte % 8) {
    case 0:
    case 1:
    case 2:
    case 3: {  // ingest: 0-1 plain, 2-3 exactly-once
      v1::PointBatch* b = r.mutable_ingest();
      b->set_series(series);
      const int points = 1 + (arg >> 4) % 4;
      for (int i = 0; i < points; ++i, ++h.next_x) {
        b->add_x(h.next_x % 17);
        b->add_y(3 * (h.next_x % 17) - 5 + h.next_x % 3);
      }
      if (kind_byte % 8 >= 2) {
        const int producer = (arg >> 2) % 3;
        const std::set<uint64_t>& applied = h.applied[producer];
        const uint64_t last = Highest(applied);
        const uint64_t hole = HighestHole(applied);
        uint64_t sequence = last + 1;
        if ((arg & 0x80) != 0 && last > 0) {
          sequence = last;  // a duplicate
        } else if ((arg & 0x40) != 0) {
          sequence = hole > 0 ? hole : last + 2;  // fill a hole, or leave one
        }
        b->set_producer_id("p" + std::to_string(producer));
        b->set_sequence(sequence);
      }
      break;
    }
    case 4: {
      v1::ConfigureSeries* c = r.mutable_configure();
      c->set_series(series);
      c->set_learning_rate((arg >> 2) % 2 == 0 ? 0.0 : 1e-3);
      c->set_steps_per_batch((arg >> 3) % 3);
      break;
    }
    case 5:
      r.mutable_step()->set_series(series);
      r.mutable_step()->set_iterations(1 + (arg >> 2) % 8);
      break;
    case 6:
      r.mutable_reset()->set_series(series);
      break;
    default:
      *checkpoint = true;
      break;
  }
  return r;
}

// The producers' sequences once `request` is applied (if it is).
inline void NoteApplied(const v1::Request& request, const v1::Response& response, History& h) {
  if (!request.has_ingest() || request.ingest().producer_id().empty() || !response.has_ack()) {
    return;
  }
  const int producer = request.ingest().producer_id()[1] - '0';
  h.applied[producer].insert(request.ingest().sequence());
}

// The data files (LOCK aside), sorted.
inline std::vector<fs::path> DataFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().filename() != "LOCK") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Damage one file: [kind][file][offset lo][offset hi]. Returns a description.
inline std::string Damage(const fs::path& dir, std::span<const uint8_t, 4> m) {
  const std::vector<fs::path> files = DataFiles(dir);
  if (files.empty()) return "";
  const fs::path& file = files[m[1] % files.size()];
  std::string bytes = ReadWholeFile(file);
  const size_t offset = (m[2] | (size_t{m[3]} << 8)) % (bytes.size() + 1);
  const std::string name = file.filename().string();
  switch (m[0] % 4) {
    case 0:
      bytes.resize(offset);
      WriteFile(file, bytes);
      return "truncated " + name + " to " + std::to_string(offset);
    case 1:
      if (bytes.empty()) return "";
      bytes[offset % bytes.size()] ^= static_cast<char>(1 + (m[0] >> 2) % 255);
      WriteFile(file, bytes);
      return "flipped a byte of " + name + " at " + std::to_string(offset % bytes.size());
    case 2:
      fs::remove(file);
      return "deleted " + name;
    default:
      bytes.append(std::string(1 + m[3] % 40, static_cast<char>(m[2])));
      WriteFile(file, bytes);
      return "appended garbage to " + name;
  }
}

// The states after each prefix of a history of changes, and the producers'
// sequences then.
struct Prefixes {
  std::vector<std::string> states;
  std::vector<History> histories;
};

// Makes the history's `changes` (from data[*at], two bytes each) through a
// DataDirectory on `dir`, and the same on an in-memory Service, the
// reference; the directory is dropped without Close, as by kill -9.
inline Prefixes MakeHistory(const fs::path& dir, std::span<const uint8_t> data, size_t changes,
                            size_t* at) {
  Instance reference;
  Prefixes prefixes{{reference.State()}, {History{}}};
  Instance db;
  const Status s = db.Open(dir);
  GRADIENTD_FUZZ_CHECK(s.ok(), "opening an empty data directory failed: " + s.message());
  History h;
  for (size_t i = 0; i < changes && *at + 2 <= data.size(); ++i, *at += 2) {
    bool checkpoint = false;
    const v1::Request request = ChangeRequest(data[*at], data[*at + 1], h, &checkpoint);
    if (checkpoint) {
      const Status c = db.data->Checkpoint();
      GRADIENTD_FUZZ_CHECK(c.ok(), "a checkpoint failed: " + c.message());
      continue;
    }
    const v1::Response durable = db.Call(request);
    const v1::Response in_memory = reference.Call(request);
    GRADIENTD_FUZZ_CHECK(durable.SerializeAsString() == in_memory.SerializeAsString(),
                         "a durable service answered differently from an in-memory one");
    NoteApplied(request, durable, h);
    prefixes.states.push_back(reference.State());
    prefixes.histories.push_back(h);
  }
  return prefixes;
}

// Recovered `db` shows the state after prefixes first..last: resending a
// batch each producer had applied in the first is a duplicate; a hole left
// in the last is filled, and a batch after the last's is applied.
inline void CheckProducerSequences(Instance& db, const Prefixes& prefixes, size_t first,
                                   size_t last, const std::string& where) {
  auto probe = [&](int producer, uint64_t sequence) {
    v1::Request r;
    r.mutable_ingest()->set_series("probe");
    r.mutable_ingest()->add_x(1);
    r.mutable_ingest()->add_y(1);
    r.mutable_ingest()->set_producer_id("p" + std::to_string(producer));
    r.mutable_ingest()->set_sequence(sequence);
    return db.Call(r);
  };
  for (int producer = 0; producer < 3; ++producer) {
    auto applied_in = [&](size_t prefix) {
      const auto& applied = prefixes.histories[prefix].applied;
      const auto it = applied.find(producer);
      return it == applied.end() ? std::set<uint64_t>{} : it->second;
    };
    const std::set<uint64_t> low = applied_in(first);
    const std::set<uint64_t> high = applied_in(last);
    const std::string what = where + ": recovered the state after " + std::to_string(first) + ".." +
                             std::to_string(last) + " changes, but producer p" +
                             std::to_string(producer) + "'s sequence ";
    for (const uint64_t sequence : low) {
      const v1::Response r = probe(producer, sequence);
      GRADIENTD_FUZZ_CHECK(r.has_ack() && r.ack().duplicate(),
                           what + std::to_string(sequence) + " is not a duplicate");
    }
    if (const uint64_t hole = HighestHole(high); hole > 0) {
      const v1::Response r = probe(producer, hole);
      GRADIENTD_FUZZ_CHECK(r.has_ack() && !r.ack().duplicate(),
                           what + std::to_string(hole) + " (never applied) is a duplicate");
    }
    const uint64_t at_most = Highest(high);
    const v1::Response r = probe(producer, at_most + 1);
    GRADIENTD_FUZZ_CHECK(r.has_ack() && !r.ack().duplicate(),
                         what + std::to_string(at_most + 1) + " is not applied");
  }
}

inline void CheckHistory(std::span<const uint8_t> data) {
  const fs::path dir = FreshDataDir();
  const size_t changes = data.size() > 1 ? std::min<size_t>(data[1], kMaxChanges) : 0;
  size_t at = 2;
  const Prefixes prefixes = MakeHistory(dir, data, changes, &at);

  std::string damage;
  for (size_t i = 0; i < kMaxDamages && at + 4 <= data.size(); ++i, at += 4) {
    const std::string what = Damage(dir, data.subspan(at).first<4>());
    if (!what.empty()) damage += (damage.empty() ? "" : ", ") + what;
  }
  const std::string where = damage.empty() ? "undamaged" : "after damage (" + damage + ")";

  Instance db;
  const Status s = db.Open(dir);
  if (!s.ok()) {
    GRADIENTD_FUZZ_CHECK(!s.message().empty(), where + ": recovery refused without a message");
    GRADIENTD_FUZZ_CHECK(!damage.empty(),
                         "an undamaged data directory was refused: " + s.message());
    return;
  }
  CheckSane(db, where);
  const std::string state = db.State();
  if (damage.empty()) {
    GRADIENTD_FUZZ_CHECK(state == prefixes.states.back(),
                         "undamaged: the recovered state is not the state after every change");
  }
  // Several prefixes may show the same state (an ingest then a reset of
  // its series): the one recovered is among them, so its producers'
  // sequences lie between the first and the last matching prefix's.
  size_t first = prefixes.states.size(), last = 0;
  for (size_t k = 0; k < prefixes.states.size(); ++k) {
    if (prefixes.states[k] != state) continue;
    first = std::min(first, k);
    last = k;
  }
  GRADIENTD_FUZZ_CHECK(first < prefixes.states.size(),
                       where + ": the recovered state is not the state after any prefix of the " +
                           std::to_string(prefixes.states.size() - 1) + " changes");
  CheckProducerSequences(db, prefixes, first, last, where);
}

}  // namespace recovery

inline void CheckRecovery(std::span<const uint8_t> data) {
  if (!data.empty() && (data[0] & 1) != 0) {
    recovery::CheckHistory(data);
  } else {
    recovery::CheckFiles(data);
  }
}

// Seeds in files mode, from real data directories: several histories run
// through the real storage code, each directory's files encoded as an input
// (with and without snapshots, several journal files, a torn tail).
inline std::vector<std::vector<uint8_t>> RecoverySeeds() {
  const std::vector<std::vector<uint8_t>> histories = {
      // ingests only: one journal, no snapshot
      {1, 8, 0, 0x10, 1, 0x21, 2, 0x04, 2, 0x04, 3, 0x85, 0, 0x31, 2, 0x08, 3, 0x09},
      // configure, ingests, a checkpoint, more: a snapshot and a journal after it
      {1, 10, 4, 0x0c, 0, 0x00, 2, 0x04, 7, 0, 1, 0x11, 5, 0x05, 3, 0x88, 6, 0x01, 7, 0, 2, 0x0c},
      // two checkpoints in a row, then a reset and ingests
      {1, 9, 2, 0x00, 2, 0x04, 7, 0, 7, 0, 6, 0x00, 0, 0x20, 3, 0x04, 5, 0x02, 1, 0x12},
  };
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& history : histories) {
    recovery::CheckHistory(history);  // leaves the directory as recovery left it
    // Re-run the history without recovering, to keep the files as written.
    const recovery::fs::path dir = recovery::FreshDataDir();
    {
      recovery::Instance db;
      GRADIENTD_FUZZ_CHECK(db.Open(dir).ok(), "cannot open a scratch data directory");
      recovery::History h;
      for (size_t i = 0; i < history[1]; ++i) {
        bool checkpoint = false;
        const v1::Request r =
            recovery::ChangeRequest(history[2 + 2 * i], history[3 + 2 * i], h, &checkpoint);
        if (checkpoint) {
          (void)db.data->Checkpoint();
        } else {
          recovery::NoteApplied(r, db.Call(r), h);
        }
      }
    }
    std::vector<uint8_t> input{0};
    for (const auto& file : recovery::DataFiles(dir)) {
      const std::string name = file.filename().string();
      std::string bytes = recovery::ReadWholeFile(file);
      bytes.resize(std::min<size_t>(bytes.size(), 0xffff));
      input.push_back(static_cast<uint8_t>(name.size()));
      input.insert(input.end(), name.begin(), name.end());
      input.push_back(static_cast<uint8_t>(bytes.size() & 0xff));
      input.push_back(static_cast<uint8_t>(bytes.size() >> 8));
      input.insert(input.end(), bytes.begin(), bytes.end());
    }
    seeds.push_back(input);
    // The same with its last file cut short (a torn tail, or a torn snapshot).
    std::vector<uint8_t> torn = input;
    if (torn.size() > 8) torn.resize(torn.size() - 3);
    seeds.push_back(torn);
    // And in history mode, the history itself with damage.
    std::vector<uint8_t> damaged = history;
    damaged.insert(damaged.end(), {0, 0, 40, 0, 1, 1, 30, 0});
    seeds.push_back(damaged);
  }
  std::error_code ec;
  recovery::fs::remove_all(recovery::ScratchDir(), ec);
  return seeds;
}

}  // namespace gradientd::fuzz
