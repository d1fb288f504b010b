// The report of `gradctl bench` as one list of fields, each with its JSON
// key and value and how the readable report shows it; the two renderings
// are printed from that one list.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

namespace gradientd::cli::bench {

// How the readable report shows a field: `before`, the value, `after`.
struct Format {
  enum class Style {
    kHidden,   // not shown (JSON only)
    kText,     // a string value as it is
    kInteger,  // an integer, plain digits
    kGrouped,  // an integer with thousands separators: "117,050,000"
    kNumber,   // FormatNumber
    kFixed,    // FormatFixed(value / divisor, decimals)
  };
  Style style = Style::kHidden;
  std::string before{};
  std::string after{};
  double divisor = 1;
  int decimals = 0;
};

struct JsonNull {};
struct JsonEmptyObject {};
// What JSON prints: an integer exactly; a double to 10 significant digits,
// null when not finite.
using FieldValue = std::variant<JsonNull, bool, uint64_t, double, std::string, JsonEmptyObject>;

struct Field {
  std::string key;  // the JSON key; empty: readable only
  FieldValue value;
  Format format;
};

// A line of the readable report and the JSON object its fields go in.
struct Row {
  enum class Kind {
    kLine,      // "label: texts", in one aligned block
    kHeading,   // "texts" on a line of its own, before the block
    kJsonOnly,  // no readable line
  };
  Kind kind = Kind::kLine;
  std::string label{};
  std::vector<std::string> object{};  // the path of nested JSON objects; empty: the top level
  std::vector<Field> fields{};
};

// Fields: JSON only, or shown with a format.
Field JsonOnly(std::string key, FieldValue value);
Field Shown(std::string key, FieldValue value, Format format);
// Readable-only text.
Field Literal(std::string text);

// One JSON object of every field with a key, on one line.
void PrintJson(const std::vector<Row>& rows, std::ostream& out);
// The headings, a blank line, then the lines as an aligned "label: value"
// block.
void PrintReadable(const std::vector<Row>& rows, std::ostream& out);

// 117050000 -> "117,050,000".
std::string Grouped(uint64_t v);

}  // namespace gradientd::cli::bench
