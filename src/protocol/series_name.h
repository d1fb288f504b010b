// The protocol's rule for series names: a request that names no series
// ("") means the series "default".
#pragma once

#include <string>
#include <string_view>

namespace gradientd::protocol {

inline constexpr std::string_view kDefaultSeries = "default";

inline std::string SeriesOrDefault(std::string_view name) {
  return std::string(name.empty() ? kDefaultSeries : name);
}

}  // namespace gradientd::protocol
