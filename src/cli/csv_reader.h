// CsvPointReader: reads (x, y) points from CSV text, in batches, so that
// arbitrarily large inputs stream through bounded memory. Pure: reads from a
// std::istream, never touches a socket.
//
// Format accepted:
//   - one record per line; LF or CRLF line endings; a UTF-8 byte-order mark
//     at the start is ignored;
//   - fields separated by a one-character delimiter (',' by default);
//     whitespace (spaces, tabs) around a field is ignored;
//   - a field may be double-quoted: "a, b" or "say ""hi""" (no line breaks
//     inside quotes);
//   - blank lines and lines whose first non-blank character is '#' are
//     skipped;
//   - an optional header line, the first record: present, absent, or
//     auto-detected (a header when none of the selected fields is a number;
//     a column selected by name always needs one).
// Numbers are parsed with std::from_chars (a leading '+' is accepted) and
// must be finite.
//
// Errors are values: kInvalidArgument statuses whose message starts with
// "SOURCE:LINE: " (1-based physical line numbers, counting skipped lines).
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace gradientd::cli {

// A column chosen by header name or by 0-based index.
struct ColumnSpec {
  std::optional<std::size_t> index;  // set: by index; unset: by name
  std::string name;                  // used when !index

  static ColumnSpec ByIndex(std::size_t i) { return ColumnSpec{i, {}}; }
  static ColumnSpec ByName(std::string n) { return ColumnSpec{std::nullopt, std::move(n)}; }

  // "3" (digits only) selects by index, anything else by name. Empty text
  // is an error.
  static Status Parse(std::string_view text, ColumnSpec* spec);
};

enum class HeaderMode {
  kAuto,     // the first record is a header if none of its selected fields is a number
  kPresent,  // the first record is a header
  kAbsent,   // every record is data
};

struct CsvOptions {
  ColumnSpec x_column = ColumnSpec::ByIndex(0);
  ColumnSpec y_column = ColumnSpec::ByIndex(1);
  HeaderMode header = HeaderMode::kAuto;
  char delimiter = ',';
  // Values of larger magnitude are rejected with their line number.
  double max_abs_value = std::numeric_limits<double>::max();
};

// Splits one line (without its line ending) into fields. Exposed for tests.
// On error, the message says what is wrong (without a source or line).
Status SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* fields);

// Parses a whole field (surrounding whitespace allowed) as a double.
// Returns false if it is not a number; non-finite results are numbers here.
bool ParseCsvNumber(std::string_view text, double* value);

class CsvPointReader {
 public:
  // `source` names the input in error messages (a file name, "<stdin>").
  // `in` must outlive the reader.
  CsvPointReader(std::istream& in, std::string source, CsvOptions options);

  // Clears *x and *y, then reads points until max_points were read or the
  // input ends. Returns OK with no points at the end of the input.
  //
  // On error, *x and *y hold the points of the lines before the bad one that
  // this call read (so no valid point is lost), and the error is sticky: every
  // later call returns it again, with no points.
  Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max_points);

  // The header's fields, once a header line has been read.
  const std::vector<std::string>& header() const { return header_; }
  bool has_header() const { return header_read_; }

  // The physical line number of the last line read (0 before any).
  uint64_t line_number() const { return line_number_; }
  // Points returned so far by Next.
  uint64_t points_read() const { return points_read_; }
  const std::string& source() const { return source_; }

 private:
  // Resolves the selected columns against the header (or without one).
  Status ResolveColumns();
  // Handles the first record: header or data. Sets *is_data.
  Status FirstRecord(bool* is_data);
  // Parses the current record's selected fields.
  Status ParseRecord(double* x, double* y);
  std::string Where() const;  // "SOURCE:LINE: "
  std::string ColumnLabel(const ColumnSpec& spec, std::size_t index, const char* axis) const;

  std::istream& in_;
  std::string source_;
  CsvOptions options_;

  std::string line_;
  std::vector<std::string> fields_;
  std::vector<std::string> header_;
  bool header_read_ = false;
  bool first_record_done_ = false;
  std::size_t x_index_ = 0;
  std::size_t y_index_ = 0;
  uint64_t line_number_ = 0;
  uint64_t points_read_ = 0;
  Status error_;  // sticky
};

}  // namespace gradientd::cli
