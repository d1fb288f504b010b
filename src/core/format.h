// Numbers in the core's error messages.
#pragma once

#include <cstdio>
#include <string>

namespace gradientd::core {

// `v` with every digit a double has (%.17g), so a message shows the value
// exactly as given.
inline std::string FormatExact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace gradientd::core
