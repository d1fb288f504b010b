#include "util/duration.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

namespace gradientd::util {

Status ParseDuration(std::string_view text, std::chrono::nanoseconds* duration) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text == "0") {
    *duration = std::chrono::nanoseconds(0);
    return Status::Ok();
  }
  std::size_t digits = 0;
  while (digits < text.size() &&
         ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) {
    return Status::InvalidArgument("bad duration " + quoted +
                                   ": expected a number and a unit, such as 500ms, 30s, 5m");
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || end != text.data() + digits || !std::isfinite(value)) {
    return Status::InvalidArgument("bad duration " + quoted + ": not a number");
  }
  const std::string_view unit = text.substr(digits);
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"min", 60e9}, {"h", 3600e9}};
  if (unit.empty()) {
    return Status::InvalidArgument("bad duration " + quoted +
                                   ": a unit is needed (ns, us, ms, s, m, h), such as 30s");
  }
  for (const auto& [name, unit_nanos] : kUnits) {
    if (unit != name) continue;
    const double nanos = value * unit_nanos;
    if (nanos > 1e18) return Status::InvalidArgument("bad duration " + quoted + ": too long");
    *duration = std::chrono::nanoseconds(static_cast<int64_t>(std::llround(nanos)));
    return Status::Ok();
  }
  return Status::InvalidArgument("bad duration " + quoted + ": unknown unit '" + std::string(unit) +
                                 "' (use ns, us, ms, s, m or h)");
}

Status ParseDuration(std::string_view text, std::chrono::milliseconds* duration) {
  std::chrono::nanoseconds nanos{};
  if (Status s = ParseDuration(text, &nanos); !s.ok()) return s;
  if (nanos % std::chrono::milliseconds(1) != std::chrono::nanoseconds(0)) {
    return Status::InvalidArgument("bad duration '" + std::string(text) +
                                   "': not a whole number of milliseconds");
  }
  *duration = std::chrono::duration_cast<std::chrono::milliseconds>(nanos);
  return Status::Ok();
}

}  // namespace gradientd::util
