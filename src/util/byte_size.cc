#include "util/byte_size.h"

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

namespace gradientd::util {

Status ParseByteSize(std::string_view text, std::size_t* bytes) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a size (examples: 65536, 64KiB, 16MiB)");
  }
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1}, {"B", 1}, {"KiB", 1u << 10}, {"MiB", 1u << 20}, {"GiB", 1u << 30}};
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    if (value > UINT64_MAX / scale) break;
    *bytes = static_cast<std::size_t>(value * scale);
    return Status::Ok();
  }
  return Status::InvalidArgument("'" + std::string(text) +
                                 "' is not a size (units: B, KiB, MiB, GiB)");
}

}  // namespace gradientd::util
