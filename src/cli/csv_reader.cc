#include "cli/csv_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

namespace gradientd::cli {
namespace {

bool IsBlank(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

std::string_view Trim(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const std::size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::string Plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// A field as shown in an error message: quoted, control characters escaped,
// long values shortened.
std::string Quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 60;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  if (text.size() > kMaxShown) out += "...";
  return out;
}

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

Status ColumnSpec::Parse(std::string_view text, ColumnSpec* spec) {
  if (text.empty()) return Status::InvalidArgument("a column must be a header name or an index");
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::size_t index = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
      return Status::InvalidArgument("column index out of range: " + std::string(text));
    }
    *spec = ByIndex(index);
    return Status::Ok();
  }
  *spec = ByName(std::string(text));
  return Status::Ok();
}

Status SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* fields) {
  fields->clear();
  const std::size_t n = line.size();
  std::size_t pos = 0;
  while (true) {
    while (pos < n && IsBlank(line[pos], delimiter)) ++pos;
    std::string& field = fields->emplace_back();
    if (pos < n && line[pos] == '"') {
      const std::size_t open = pos++;
      bool closed = false;
      while (pos < n) {
        if (line[pos] == '"') {
          if (pos + 1 < n && line[pos + 1] == '"') {  // "" is a literal quote
            field += '"';
            pos += 2;
            continue;
          }
          closed = true;
          ++pos;
          break;
        }
        field += line[pos++];
      }
      if (!closed) {
        return Status::InvalidArgument("unterminated quoted field (the quote at character " +
                                       std::to_string(open + 1) + " is never closed)");
      }
      while (pos < n && IsBlank(line[pos], delimiter)) ++pos;
      if (pos < n && line[pos] != delimiter) {
        return Status::InvalidArgument("unexpected text after the closing quote of field " +
                                       std::to_string(fields->size()) + " (at character " +
                                       std::to_string(pos + 1) + ")");
      }
    } else {
      const std::size_t begin = pos;
      while (pos < n && line[pos] != delimiter) ++pos;
      std::size_t end = pos;
      while (end > begin && IsBlank(line[end - 1], delimiter)) --end;
      field.assign(line.substr(begin, end - begin));
    }
    if (pos >= n) break;
    ++pos;  // past the delimiter: another field follows, possibly empty
  }
  return Status::Ok();
}

bool ParseCsvNumber(std::string_view text, double* value) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (text.empty() || text.front() == '+' || text.front() == '-') return false;
  }
  if (text.empty()) return false;
  const char* const end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  if (ptr != end) return false;
  if (ec == std::errc::result_out_of_range) {
    // A well-formed number beyond double's range: let strtod round it to
    // +-inf (overflow) or to zero / a subnormal (underflow).
    const std::string copy(text);
    *value = std::strtod(copy.c_str(), nullptr);
    return true;
  }
  return ec == std::errc();
}

CsvPointReader::CsvPointReader(std::istream& in, std::string source, CsvOptions options)
    : in_(in), source_(std::move(source)), options_(std::move(options)) {}

std::string CsvPointReader::Where() const {
  return source_ + ":" + std::to_string(line_number_) + ": ";
}

std::string CsvPointReader::ColumnLabel(const ColumnSpec& spec, std::size_t index,
                                        const char* axis) const {
  if (!spec.index) return "column '" + spec.name + "' (" + axis + ")";
  if (header_read_ && index < header_.size()) {
    return "column '" + header_[index] + "' (" + axis + ", index " + std::to_string(index) + ")";
  }
  return "column " + std::to_string(index) + " (" + axis + ")";
}

Status CsvPointReader::ResolveColumns() {
  const auto resolve = [&](const ColumnSpec& spec, const char* axis, std::size_t* index) -> Status {
    if (spec.index) {
      *index = *spec.index;
      return Status::Ok();
    }
    if (!header_read_) {
      return Status::InvalidArgument(Where() + "the " + axis + " column '" + spec.name +
                                     "' is selected by name, but the input has no header line "
                                     "(select columns by 0-based index instead)");
    }
    const auto it = std::find(header_.begin(), header_.end(), spec.name);
    if (it == header_.end()) {
      std::string available;
      for (const std::string& name : header_) {
        if (!available.empty()) available += ", ";
        available += "'" + name + "'";
      }
      return Status::InvalidArgument(Where() + "no column named '" + spec.name +
                                     "' in the header (for " + axis +
                                     "); available columns: " + available);
    }
    *index = static_cast<std::size_t>(it - header_.begin());
    return Status::Ok();
  };
  if (Status s = resolve(options_.x_column, "x", &x_index_); !s.ok()) return s;
  return resolve(options_.y_column, "y", &y_index_);
}

Status CsvPointReader::FirstRecord(bool* is_data) {
  bool header = false;
  switch (options_.header) {
    case HeaderMode::kPresent:
      header = true;
      break;
    case HeaderMode::kAbsent:
      header = false;
      break;
    case HeaderMode::kAuto:
      if (!options_.x_column.index || !options_.y_column.index) {
        header = true;  // a column selected by name needs a header
      } else {
        const auto is_number = [&](std::size_t i) {
          double v = 0;
          return i < fields_.size() && ParseCsvNumber(fields_[i], &v);
        };
        header = !is_number(*options_.x_column.index) && !is_number(*options_.y_column.index);
      }
      break;
  }
  if (header) {
    header_ = fields_;
    header_read_ = true;
  }
  *is_data = !header;
  return ResolveColumns();
}

Status CsvPointReader::ParseRecord(double* x, double* y) {
  const std::size_t need = std::max(x_index_, y_index_) + 1;
  if (fields_.size() < need) {
    const bool y_missing = y_index_ >= fields_.size();
    const ColumnSpec& spec = y_missing ? options_.y_column : options_.x_column;
    return Status::InvalidArgument(
        Where() + "has " + Plural(fields_.size(), "column") + ", need " + std::to_string(need) +
        " for " + ColumnLabel(spec, y_missing ? y_index_ : x_index_, y_missing ? "y" : "x"));
  }
  const auto parse = [&](const ColumnSpec& spec, std::size_t index, const char* axis,
                         double* value) -> Status {
    const std::string& field = fields_[index];
    const std::string label = ColumnLabel(spec, index, axis);
    if (!ParseCsvNumber(field, value)) {
      return Status::InvalidArgument(Where() + label + " is not a number: " + Quote(field));
    }
    if (!std::isfinite(*value)) {
      return Status::InvalidArgument(Where() + label + " is not a finite number: " + Quote(field));
    }
    if (std::fabs(*value) > options_.max_abs_value) {
      return Status::InvalidArgument(Where() + label + " is out of range (magnitude above " +
                                     FormatDouble(options_.max_abs_value) + "): " + Quote(field));
    }
    return Status::Ok();
  };
  if (Status s = parse(options_.x_column, x_index_, "x", x); !s.ok()) return s;
  return parse(options_.y_column, y_index_, "y", y);
}

Status CsvPointReader::Next(std::vector<double>* x, std::vector<double>* y,
                            std::size_t max_points) {
  x->clear();
  y->clear();
  if (!error_.ok()) return error_;
  constexpr std::size_t kMaxReserve = 1 << 16;
  x->reserve(std::min(max_points, kMaxReserve));
  y->reserve(std::min(max_points, kMaxReserve));
  while (x->size() < max_points) {
    if (!std::getline(in_, line_)) {
      if (in_.bad()) {
        error_ = Status::InvalidArgument(source_ + ": read error after line " +
                                         std::to_string(line_number_));
      }
      break;
    }
    ++line_number_;
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    std::string_view line = line_;
    if (line_number_ == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    if (Status s = SplitCsvLine(line, options_.delimiter, &fields_); !s.ok()) {
      error_ = Status::InvalidArgument(Where() + s.message());
      break;
    }
    if (!first_record_done_) {
      first_record_done_ = true;
      bool is_data = false;
      if (Status s = FirstRecord(&is_data); !s.ok()) {
        error_ = std::move(s);
        break;
      }
      if (!is_data) continue;
    }
    double xv = 0;
    double yv = 0;
    if (Status s = ParseRecord(&xv, &yv); !s.ok()) {
      error_ = std::move(s);
      break;
    }
    x->push_back(xv);
    y->push_back(yv);
  }
  points_read_ += x->size();
  return error_;
}

}  // namespace gradientd::cli
