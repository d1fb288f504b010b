// The ledger of tests/ledger_client.cc: its command line, the batches (a
// batch's identity determines its points, so the ledger need not keep them)
// and the ledger file, one line per batch. Check (ledger_check.cc) compares
// a server's state with ledgers. One thread, except where said.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"

namespace ledger {

namespace v1 = gradientd::v1;

// Options: --key value pairs; --ledger may repeat.
struct Options {
  std::string command;
  std::map<std::string, std::vector<std::string>> values;

  std::string Get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second.back();
  }
  int64_t Int(const std::string& key, int64_t fallback) const {
    const std::string v = Get(key);
    return v.empty() ? fallback : std::stoll(v);
  }
  double Double(const std::string& key, double fallback) const {
    const std::string v = Get(key);
    return v.empty() ? fallback : std::stod(v);
  }
  bool Has(const std::string& key) const { return values.count(key) > 0; }
};

// The command (argv[1]) and the --key value pairs after it; false, saying
// why on stderr, if they are not pairs.
bool ParseOptions(int argc, char** argv, Options* options);

// A batch's fate, as the ledger records it.
enum class State { kPending, kAcked, kDuplicate, kRefused, kUnknown };

const char* StateName(State s);
bool ParseState(const std::string& text, State* s);
bool Acknowledged(State s);

// One batch: its identity determines its points (Points below).
struct Batch {
  bool exactly_once = false;
  std::string series;
  std::string label;  // the producer: its producer_id when exactly-once
  uint64_t seq = 0;   // sent as the sequence when exactly-once
  uint32_t n = 0;
  int64_t sum_x = 0;
  int64_t sum_y = 0;
  State state = State::kPending;
  int attempts = 0;
  std::string error;  // the last Error's message, when refused
};

// A batch of 1..max_points points, its sums computed.
Batch MakeBatch(bool exactly_once, std::string series, std::string label, uint64_t seq,
                uint32_t max_points);
// The ingest request that sends `b` (under its producer id and sequence
// when exactly-once).
v1::Request IngestRequest(const Batch& b);

// Writes the ledger whole (to PATH.tmp, then renamed); exits 2 if it cannot.
void WriteLedger(const std::string& path, const std::vector<Batch>& batches);
// Appends PATH's batches; false, saying why on stderr, on a bad file.
bool ReadLedger(const std::string& path, std::vector<Batch>* batches);

// ledger_client check: the server's listing against the --ledger files;
// prints every difference; returns the exit status (0 same, 1 differences,
// 2 an unreadable ledger or server).
int Check(const Options& o);

}  // namespace ledger
