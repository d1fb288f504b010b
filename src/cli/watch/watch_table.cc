#include "cli/watch/watch_table.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <utility>

#include "cli/output.h"

namespace gradientd::cli {

uint64_t AllHistoryCount(const v1::FitReply& fit) {
  for (const v1::ViewFit& view : fit.views()) {
    if (view.coverage().view() == v1::VIEW_ALL) return view.coverage().n();
  }
  return fit.n();  // a server before views: n is all history
}

std::vector<WatchRow> RateTracker::Update(std::vector<v1::FitReply> series,
                                          std::chrono::nanoseconds elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::map<std::string, uint64_t> counts;
  std::vector<WatchRow> rows;
  rows.reserve(series.size());
  for (v1::FitReply& fit : series) {
    WatchRow row;
    const uint64_t n = AllHistoryCount(fit);
    const auto before = previous_.find(fit.series());
    if (!first_ && before != previous_.end()) {
      if (n < before->second) {
        row.restarted = true;
      } else if (seconds > 0) {
        row.rate = static_cast<double>(n - before->second) / seconds;
      }
    }
    counts.emplace(fit.series(), n);
    row.fit = std::move(fit);
    rows.push_back(std::move(row));
  }
  previous_ = std::move(counts);
  first_ = false;
  return rows;
}

void SortRows(WatchSort sort, std::vector<WatchRow>* rows) {
  const auto by_name = [](const WatchRow& a, const WatchRow& b) {
    return a.fit.series() < b.fit.series();
  };
  const auto by_n = [&](const WatchRow& a, const WatchRow& b) {
    if (a.fit.n() != b.fit.n()) return a.fit.n() > b.fit.n();
    return by_name(a, b);
  };
  const auto by_rate = [&](const WatchRow& a, const WatchRow& b) {
    if (a.rate.has_value() != b.rate.has_value()) return a.rate.has_value();
    if (a.rate && *a.rate != *b.rate) return *a.rate > *b.rate;
    return by_name(a, b);
  };
  switch (sort) {
    case WatchSort::kName:
      std::sort(rows->begin(), rows->end(), by_name);
      break;
    case WatchSort::kN:
      std::sort(rows->begin(), rows->end(), by_n);
      break;
    case WatchSort::kRate:
      std::sort(rows->begin(), rows->end(), by_rate);
      break;
  }
}

std::string FormatCompact(double value) {
  if (value == 0) return "0";  // never "-0"
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  std::string text = buf;
  const std::size_t e = text.find('e');
  if (e == std::string::npos) return text;
  std::string mantissa = text.substr(0, e);
  std::string exponent = text.substr(e + 1);
  const bool negative = !exponent.empty() && exponent[0] == '-';
  if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) exponent.erase(0, 1);
  exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
  return mantissa + "e" + (negative ? "-" : "") + exponent;
}

std::string TruncateToWidth(const std::string& text, std::size_t width) {
  if (DisplayWidth(text) <= width) return text;
  if (width == 0) return "";
  std::string cut;
  std::size_t columns = 0;
  for (const char c : text) {
    const bool starts_code_point = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (starts_code_point && ++columns > width - 1) break;
    cut += c;
  }
  return cut + "…";
}

namespace {

const std::vector<std::string> kHeader = {"SERIES",    "N",         "RATE/S", "LS M",
                                          "LS B",      "DESCENT M", "DESCENT B", "LOSS",
                                          "R²",        "STEPS"};

std::string OptionalNumber(bool present, double value) {
  return present ? FormatCompact(value) : "-";
}

std::string RateText(const WatchRow& row) {
  if (row.restarted) return "restart";
  return row.rate ? FormatCompact(*row.rate) : "";
}

std::vector<std::string> Cells(const WatchRow& row) {
  const v1::FitReply& fit = row.fit;
  const bool ls = fit.has_least_squares();
  return {fit.series(),
          std::to_string(fit.n()),
          RateText(row),
          OptionalNumber(ls, fit.least_squares().m()),
          OptionalNumber(ls, fit.least_squares().b()),
          FormatCompact(fit.descent().m()),
          FormatCompact(fit.descent().b()),
          OptionalNumber(fit.descent().has_loss(), fit.descent().loss()),
          OptionalNumber(fit.has_r_squared(), fit.r_squared()),
          std::to_string(fit.steps())};
}

// The widest the series column may be for the table to fit in `width`.
std::size_t NameWidth(const std::vector<std::vector<std::string>>& cells, std::size_t width) {
  constexpr std::size_t kMinNameWidth = 8;
  std::size_t others = 0;
  for (std::size_t column = 1; column < kHeader.size(); ++column) {
    std::size_t w = DisplayWidth(kHeader[column]);
    for (const auto& row : cells) w = std::max(w, DisplayWidth(row[column]));
    others += w + 2;
  }
  return others + kMinNameWidth >= width ? kMinNameWidth : width - others;
}

std::string MoreLine(std::size_t hidden, bool listing_cut) {
  std::string line;
  if (hidden > 0) line = "... and " + std::to_string(hidden) + " more series";
  if (listing_cut) {
    line += (line.empty() ? "... " : ", ");
    line += "and more not listed (narrow with --prefix)";
  }
  return line;
}

}  // namespace

std::vector<std::string> RenderFrame(const std::vector<WatchRow>& rows, bool listing_cut,
                                     const FrameLayout& layout) {
  const std::size_t shown = std::min(rows.size(), layout.max_rows);
  std::vector<std::vector<std::string>> cells;
  cells.reserve(shown);
  for (std::size_t i = 0; i < shown; ++i) cells.push_back(Cells(rows[i]));
  if (layout.width > 0) {
    const std::size_t name_width = NameWidth(cells, layout.width);
    for (auto& row : cells) row[0] = TruncateToWidth(row[0], name_width);
  }
  Table table(kHeader, {false, true, true, true, true, true, true, true, true, true});
  for (auto& row : cells) table.AddRow(std::move(row));
  std::ostringstream text;
  table.Print(text);

  std::vector<std::string> lines = {layout.heading};
  std::istringstream table_lines(text.str());
  for (std::string line; std::getline(table_lines, line);) lines.push_back(std::move(line));
  if (std::string more = MoreLine(rows.size() - shown, listing_cut); !more.empty()) {
    lines.push_back(std::move(more));
  }
  if (layout.width > 0) {
    for (std::string& line : lines) line = TruncateToWidth(line, layout.width);
  }
  return lines;
}

}  // namespace gradientd::cli
