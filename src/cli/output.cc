#include "cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "cli/query/view_names.h"

namespace gradientd::cli {

std::string FormatNumber(double value) {
  if (value == 0) return "0";  // never "-0"
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.12g", value);
  return buf;
}

std::string FormatFixed(double value, int decimals) {
  // Sized first: 1e300 with 3 decimals is 305 characters.
  const int size = std::snprintf(nullptr, 0, "%.*f", decimals, value);
  std::string text(static_cast<std::size_t>(size), '\0');
  std::snprintf(text.data(), text.size() + 1, "%.*f", decimals, value);
  return text;
}

std::string FormatDuration(std::chrono::nanoseconds duration) {
  const double seconds = std::chrono::duration<double>(duration).count();
  char buf[48];
  if (seconds < 0) return "0 s";
  if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%.0f ms", seconds * 1e3);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (seconds < 3600) {
    const auto s = static_cast<int64_t>(seconds);
    if (s % 60 == 0) {
      std::snprintf(buf, sizeof buf, "%lld min", static_cast<long long>(s / 60));
    } else {
      std::snprintf(buf, sizeof buf, "%lld min %02lld s", static_cast<long long>(s / 60),
                    static_cast<long long>(s % 60));
    }
  } else {
    const auto m = static_cast<int64_t>(seconds / 60);
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", static_cast<long long>(m / 60),
                  static_cast<long long>(m % 60));
  }
  return buf;
}

std::string FormatDurationFlag(int64_t nanos) {
  if (nanos == 0) return "0";
  constexpr std::pair<int64_t, const char*> kUnits[] = {
      {3'600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
      {1'000'000, "ms"},        {1'000, "us"},         {1, "ns"}};
  for (const auto& [size, unit] : kUnits) {
    if (nanos % size == 0) return std::to_string(nanos / size) + unit;
  }
  return std::to_string(nanos) + "ns";  // unreachable: 1 divides everything
}

std::string FormatUtc(int64_t unix_nanos) {
  int64_t seconds = unix_nanos / 1'000'000'000;
  int64_t rest = unix_nanos % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_nanos) + " ns";
  char date[40];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s.%03lldZ", date, static_cast<long long>(rest / 1'000'000));
  return buf;
}

std::string Plural(uint64_t n, std::string_view noun) {
  std::string text = std::to_string(n) + " " + std::string(noun);
  if (n != 1) text += noun.ends_with("ch") ? "es" : "s";
  return text;
}

std::string SequenceRange(uint64_t first, uint64_t last) {
  return first == last ? std::to_string(first)
                       : std::to_string(first) + ".." + std::to_string(last);
}

std::size_t DisplayWidth(std::string_view text) {
  // Count every byte that does not continue a UTF-8 sequence.
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

namespace {

void Pad(std::ostream& out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out << ' ';
}

}  // namespace

void KeyValueBlock::Add(std::string key, std::string value) {
  rows_.emplace_back(std::move(key), std::move(value));
}

void KeyValueBlock::Print(std::ostream& out) const {
  std::size_t width = 0;
  for (const auto& [key, value] : rows_) width = std::max(width, DisplayWidth(key));
  for (const auto& [key, value] : rows_) {
    out << key << ':';
    Pad(out, width - DisplayWidth(key) + 1);
    out << value << '\n';
  }
}

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_aligned_(std::move(right_aligned)) {
  right_aligned_.resize(header_.size(), false);
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out) const {
  std::vector<std::size_t> widths(header_.size());
  for (std::size_t i = 0; i < header_.size(); ++i) widths[i] = DisplayWidth(header_[i]);
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  const auto print_row = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      const std::size_t pad = widths[i] - DisplayWidth(row[i]);
      const bool last = i + 1 == row.size();
      if (i > 0) out << "  ";
      if (right_aligned_[i]) Pad(out, pad);
      out << row[i];
      if (!right_aligned_[i] && !last) Pad(out, pad);
    }
    out << '\n';
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    // Cannot happen for our messages; say so in JSON rather than print nothing.
    return "{\"gradctl_error\":\"cannot print a reply as JSON\"}";
  }
  return json;
}

google::protobuf::Value JsonNumber(uint64_t value) {
  google::protobuf::Value json;
  json.set_number_value(static_cast<double>(value));
  return json;
}

void AddGradient(const v1::GradientReply& gradient, KeyValueBlock* block) {
  block->Add("series", gradient.series());
  block->Add("n", std::to_string(gradient.n()));
  block->Add("m", gradient.m());
  block->Add("b", gradient.b());
  block->Add("dL/db", gradient.intercept_gradient());
  block->Add("dL/dm", gradient.slope_gradient());
  block->Add("loss", gradient.loss());
}

namespace {

// A line's loss, or why there is none.
std::string LossText(const v1::Line& line) {
  if (line.has_loss()) return FormatNumber(line.loss());
  if (!line.loss_error().empty()) return "n/a (" + line.loss_error() + ")";
  return "n/a (no points)";
}

void AddLeastSquares(const v1::Line* line, bool has_r_squared, double r_squared, uint64_t n,
                     const std::string& indent, KeyValueBlock* block) {
  if (line != nullptr) {
    block->Add(indent + "least-squares m", line->m());
    block->Add(indent + "least-squares b", line->b());
    if (line->has_loss()) {
      block->Add(indent + "least-squares loss", line->loss());
    } else if (!line->loss_error().empty()) {
      block->Add(indent + "least-squares loss", "n/a (" + line->loss_error() + ")");
    }
  } else {
    block->Add(indent + "least squares", n == 0 ? "no least-squares line: no points"
                                                : "no least-squares line: x has no spread");
  }
  if (has_r_squared) {
    block->Add(indent + "R²", r_squared);
  } else {
    block->Add(indent + "R²", line != nullptr ? "n/a (y has no spread)" : "n/a");
  }
}

// The settings of issue 13, from a server that reports them (it sets the
// effective descent mode and the coverage).
void AddViewSettings(const v1::FitReply& fit, KeyValueBlock* block) {
  if (!fit.has_coverage()) return;
  block->Add("view", ViewName(fit.coverage().view()) + ": " + CoverageText(fit.coverage()));
  std::string mode = DescentModeName(fit.descent_mode());
  if (fit.effective_descent_mode() != v1::DESCENT_MODE_UNSPECIFIED) {
    mode += " (the next step: " + DescentModeName(fit.effective_descent_mode()) + ")";
  }
  block->Add("descent mode", mode);
  block->Add("descent view", ViewName(fit.descent_view()));
  if (fit.window_nanos() > 0) {
    const int64_t buckets = std::max<int64_t>(fit.window_buckets(), 1);
    block->Add("window", FormatDurationFlag(fit.window_nanos()) + " in " +
                             Plural(fit.window_buckets(), "bucket") + " of " +
                             FormatDurationFlag(fit.window_nanos() / buckets));
  } else {
    block->Add("window", "none");
  }
  block->Add("half-life",
             fit.half_life_nanos() > 0 ? FormatDurationFlag(fit.half_life_nanos()) : "none");
}

}  // namespace

void AddFit(const v1::FitReply& fit, KeyValueBlock* block) {
  block->Add("series", fit.series());
  block->Add("n", std::to_string(fit.n()));
  block->Add("descent m", fit.descent().m());
  block->Add("descent b", fit.descent().b());
  block->Add("descent loss", LossText(fit.descent()));
  block->Add("descent steps", std::to_string(fit.steps()));
  std::string rate;
  if (fit.learning_rate_auto() && fit.n() == 0) {
    rate = "auto (derived once there are points)";
  } else {
    rate = FormatNumber(fit.learning_rate()) + (fit.learning_rate_auto() ? " (auto)" : "");
  }
  block->Add("learning rate", rate);
  block->Add("steps per batch", std::to_string(fit.steps_per_batch()));
  AddLeastSquares(fit.has_least_squares() ? &fit.least_squares() : nullptr, fit.has_r_squared(),
                  fit.r_squared(), fit.n(), "", block);
  if (fit.n() > 0) {
    block->Add("mean x", fit.mean_x());
    block->Add("mean y", fit.mean_y());
  }
  AddViewSettings(fit, block);
}

std::string CoverageText(const v1::Coverage& coverage) {
  if (coverage.n() == 0) return "no points";
  std::string text = Plural(coverage.n(), "point");
  if (coverage.view() == v1::VIEW_DECAYED) {
    text += ", weight " + FormatNumber(coverage.weight()) + ", n_eff " +
            FormatNumber(coverage.effective_n());
  }
  if (coverage.start_unix_nanos() != 0 || coverage.end_unix_nanos() != 0) {
    text += ", " + FormatUtc(coverage.start_unix_nanos()) + " to " +
            FormatUtc(coverage.end_unix_nanos());
  }
  return text;
}

void PrintFitViews(const v1::FitReply& fit, std::ostream& out) {
  for (const v1::ViewFit& view : fit.views()) {
    out << "\nview " << ViewName(view.coverage().view()) << '\n';
    KeyValueBlock block;
    block.Add("  covers", CoverageText(view.coverage()));
    block.Add("  descent loss", LossText(view.descent()));
    AddLeastSquares(view.has_least_squares() ? &view.least_squares() : nullptr,
                    view.has_r_squared(), view.r_squared(), view.coverage().n(), "  ", &block);
    if (view.coverage().n() > 0) {
      block.Add("  mean x", view.mean_x());
      block.Add("  mean y", view.mean_y());
    }
    block.Print(out);
  }
}

void PrintSeriesList(const v1::SeriesList& list, std::ostream& out) {
  if (list.series_size() == 0) {
    out << "no series\n";
    return;
  }
  Table table({"SERIES", "N", "DESCENT M", "DESCENT B", "LEAST-SQUARES M", "LEAST-SQUARES B", "R²"},
              {false, true, true, true, true, true, true});
  for (const v1::FitReply& fit : list.series()) {
    const bool ls = fit.has_least_squares();
    table.AddRow({fit.series(), std::to_string(fit.n()), FormatNumber(fit.descent().m()),
                  FormatNumber(fit.descent().b()), ls ? FormatNumber(fit.least_squares().m()) : "-",
                  ls ? FormatNumber(fit.least_squares().b()) : "-",
                  fit.has_r_squared() ? FormatNumber(fit.r_squared()) : "-"});
  }
  table.Print(out);
}

}  // namespace gradientd::cli
