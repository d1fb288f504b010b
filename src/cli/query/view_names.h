// The names gradctl reads and prints for views and descent modes
// ("all", "window", "decayed"; "auto", "plain", "standardized"). Pure.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

// "all", "window" or "decayed"; anything else is kInvalidArgument naming
// `flag` ("--view must be all, window or decayed, got 'x'").
Status ParseView(std::string_view flag, std::string_view text, v1::View* view);
// "auto" (DESCENT_MODE_UNSPECIFIED), "plain" or "standardized".
Status ParseDescentMode(std::string_view flag, std::string_view text, v1::DescentMode* mode);

// The names above; VIEW_UNSPECIFIED prints as "all" (what a query means by it).
std::string ViewName(v1::View view);
std::string DescentModeName(v1::DescentMode mode);

}  // namespace gradientd::cli
