// The grammar for sizes on the command line: a whole number and an optional
// binary unit (B, KiB, MiB, GiB), such as 65536, 64KiB, 16MiB. Pure.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.h"

namespace gradientd::util {

// Errors quote the text and give examples or the units.
Status ParseByteSize(std::string_view text, std::size_t* bytes);

}  // namespace gradientd::util
