// gradctl's output formatting: numbers, aligned "key: value" blocks, tables,
// and protobuf messages as one-line JSON. Pure: writes to the stream given.
#pragma once

#include <google/protobuf/message.h>

#include <cstddef>
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

// `value` with exactly `decimals` digits after the point ("%.*f": 2.50,
// 117050000.0, 3).
std::string FormatFixed(double value, int decimals);

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
// printed (zeros included).
std::string ToJson(const google::protobuf::Message& message);

// The readable forms of the replies.
void AddGradient(const v1::GradientReply& gradient, KeyValueBlock* block);
void AddFit(const v1::FitReply& fit, KeyValueBlock* block);
void PrintSeriesList(const v1::SeriesList& list, std::ostream& out);

}  // namespace gradientd::cli
