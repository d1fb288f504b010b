// What the service accepts as a series name and a producer id.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.h"

namespace gradientd::service {

inline constexpr std::size_t kMaxSeriesNameBytes = 256;
// Producer ids: 1 to this many bytes of printable ASCII without space.
inline constexpr std::size_t kMaxProducerIdBytes = 128;

// A series name is acceptable: 1 to max_bytes bytes of valid UTF-8 (no
// overlong forms, no surrogates) without C0 or C1 control characters or DEL.
Status ValidateSeriesName(std::string_view name, std::size_t max_bytes);
// A producer id is acceptable: 1 to kMaxProducerIdBytes bytes of 0x21-0x7E.
Status ValidateProducerId(std::string_view id);

// InvalidArgument: "<what> is <size> bytes; the limit is <limit>".
Status BytesOverLimit(const char* what, std::size_t size, std::size_t limit);

}  // namespace gradientd::service
