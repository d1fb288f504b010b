// The batches and the ledger file of ledger_client (ledger.h).
#include "ledger.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

namespace ledger {

// ---------------------------------------------------------------------------
// Options.

bool ParseOptions(int argc, char** argv, Options* options) {
  if (argc < 2) return false;
  options->command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::cerr << "ledger_client: expected --key value, got '" << key << "'\n";
      return false;
    }
    options->values[key.substr(2)].push_back(argv[++i]);
  }
  return true;
}

// ---------------------------------------------------------------------------
// Batches and the ledger.

const char* StateName(State s) {
  switch (s) {
    case State::kPending:
      return "pending";
    case State::kAcked:
      return "acked";
    case State::kDuplicate:
      return "duplicate";
    case State::kRefused:
      return "refused";
    case State::kUnknown:
      return "unknown";
  }
  return "?";
}

bool ParseState(const std::string& text, State* s) {
  for (State c :
       {State::kPending, State::kAcked, State::kDuplicate, State::kRefused, State::kUnknown}) {
    if (text == StateName(c)) {
      *s = c;
      return true;
    }
  }
  return false;
}

bool Acknowledged(State s) { return s == State::kAcked || s == State::kDuplicate; }

namespace {

uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// The batch's points, integer-valued: x in [-1000, 1000], y = 3x - 7 + noise.
void Points(const Batch& b, std::vector<int64_t>* xs, std::vector<int64_t>* ys) {
  const uint64_t h = Fnv1a(b.series + "|" + b.label + "|" + std::to_string(b.seq));
  xs->clear();
  ys->clear();
  for (uint32_t i = 0; i < b.n; ++i) {
    const int64_t x = static_cast<int64_t>(((h >> 7) + 37u * i) % 2001u) - 1000;
    xs->push_back(x);
    ys->push_back(3 * x - 7 + static_cast<int64_t>((h + i) % 11u));
  }
}

}  // namespace

Batch MakeBatch(bool exactly_once, std::string series, std::string label, uint64_t seq,
                uint32_t max_points) {
  Batch b;
  b.exactly_once = exactly_once;
  b.series = std::move(series);
  b.label = std::move(label);
  b.seq = seq;
  b.n = 1 + static_cast<uint32_t>(Fnv1a(b.label + "#" + std::to_string(seq)) % max_points);
  std::vector<int64_t> xs, ys;
  Points(b, &xs, &ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    b.sum_x += xs[i];
    b.sum_y += ys[i];
  }
  return b;
}

v1::Request IngestRequest(const Batch& b) {
  v1::Request r;
  v1::PointBatch* p = r.mutable_ingest();
  p->set_series(b.series);
  std::vector<int64_t> xs, ys;
  Points(b, &xs, &ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    p->add_x(static_cast<double>(xs[i]));
    p->add_y(static_cast<double>(ys[i]));
  }
  if (b.exactly_once) {
    p->set_producer_id(b.label);
    p->set_sequence(b.seq);
  }
  return r;
}

// Ledger line: STATE KIND SERIES LABEL SEQ N SUM_X SUM_Y ATTEMPTS [ERROR...]
void WriteLedger(const std::string& path, const std::vector<Batch>& batches) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    for (const Batch& b : batches) {
      out << StateName(b.state) << ' ' << (b.exactly_once ? "eo" : "plain") << ' ' << b.series
          << ' ' << b.label << ' ' << b.seq << ' ' << b.n << ' ' << b.sum_x << ' ' << b.sum_y << ' '
          << b.attempts;
      if (!b.error.empty()) out << ' ' << b.error;
      out << '\n';
    }
    if (!out) {
      std::cerr << "ledger_client: cannot write " << temp << "\n";
      std::exit(2);
    }
  }
  std::rename(temp.c_str(), path.c_str());
}

bool ReadLedger(const std::string& path, std::vector<Batch>* batches) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "ledger_client: cannot read ledger " << path << "\n";
    return false;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream fields(line);
    std::string state, kind;
    Batch b;
    if (!(fields >> state >> kind >> b.series >> b.label >> b.seq >> b.n >> b.sum_x >> b.sum_y >>
          b.attempts) ||
        !ParseState(state, &b.state)) {
      std::cerr << "ledger_client: " << path << ":" << number << ": bad line: " << line << "\n";
      return false;
    }
    b.exactly_once = kind == "eo";
    std::getline(fields >> std::ws, b.error);
    batches->push_back(std::move(b));
  }
  return true;
}

}  // namespace ledger
