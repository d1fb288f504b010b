// gradctl's output formatting: numbers, aligned "key: value" blocks, tables,
// and protobuf messages as one-line JSON. Pure: writes to the stream given.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

// A double for people: 12 significant digits, trailing zeros dropped
// ("2.355", "10.3881118881", "1e-09").
std::string FormatNumber(double value);

// A double with exactly `decimals` decimals ("%.*f"): "1.500", "12".
std::string FormatFixed(double value, int decimals);

// A duration for people: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
std::string FormatDuration(std::chrono::nanoseconds duration);

// A duration in the command lines' grammar (util/duration.h), in the largest
// unit that divides it: "1h", "90s", "250ms", "7ns"; "0" for zero.
std::string FormatDurationFlag(int64_t nanos);

// A time since the Unix epoch as UTC ISO-8601 with milliseconds:
// "2024-05-01T12:00:00.123Z".
std::string FormatUtc(int64_t unix_nanos);

// "1 batch", "3 batches", "2 points".
std::string Plural(uint64_t n, std::string_view noun);
// "4", or "4..9".
std::string SequenceRange(uint64_t first, uint64_t last);

// Aligned "key: value" lines.
class KeyValueBlock {
 public:
  void Add(std::string key, std::string value);
  void Add(std::string key, double value) { Add(std::move(key), FormatNumber(value)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

// A table with a header row; numeric columns are right-aligned.
class Table {
 public:
  // `right_aligned[i]`: column i is right-aligned.
  Table(std::vector<std::string> header, std::vector<bool> right_aligned);
  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_aligned_;
  std::vector<std::vector<std::string>> rows_;
};

// The display width of UTF-8 text (code points; good enough for "R²").
std::size_t DisplayWidth(std::string_view text);

// `message` as one line of JSON, field names as in the .proto, every field
// printed (zeros included). gradctl's only JSON writer: summaries are built
// as google::protobuf::Struct and printed with it.
std::string ToJson(const google::protobuf::Message& message);

// A count as a Struct value (JSON numbers are doubles: exact below 2^53).
google::protobuf::Value JsonNumber(uint64_t value);

// The readable forms of the replies.
void AddGradient(const v1::GradientReply& gradient, KeyValueBlock* block);
// The query's view, then the settings (descent mode and view, window,
// half-life) when the server reports them.
void AddFit(const v1::FitReply& fit, KeyValueBlock* block);
// What a view covers: "n 12", with weight and n_eff when decayed, and the
// event-time interval as UTC; "no points" when empty.
std::string CoverageText(const v1::Coverage& coverage);
// Every view of fit.views, a block each, headed "view NAME".
void PrintFitViews(const v1::FitReply& fit, std::ostream& out);
void PrintSeriesList(const v1::SeriesList& list, std::ostream& out);

}  // namespace gradientd::cli
