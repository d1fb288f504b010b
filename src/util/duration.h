// The one grammar for durations on both programs' command lines: a
// non-negative decimal number and a unit (ns, us, ms, s, m or min, h), such
// as 250us, 1.5s, 5m; or a bare 0. Pure.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/status.h"

namespace gradientd::util {

// Errors start with "bad duration 'TEXT': " and say what is wrong. At most
// 1e18 ns (about 31 years); rounded to the nearest nanosecond.
Status ParseDuration(std::string_view text, std::chrono::nanoseconds* duration);

// For options kept in milliseconds: the same grammar, refusing what is not
// a whole number of milliseconds ("bad duration '250us': not a whole number
// of milliseconds").
Status ParseDuration(std::string_view text, std::chrono::milliseconds* duration);

}  // namespace gradientd::util
