// The parts of a request target: the path, strict percent-decoding, and
// the query string's parameters. Pure; errors say what is wrong.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace gradientd::http {

// The target's path: everything before '?'.
std::string_view PathOf(std::string_view target);
// Everything after the first '?' ("" without one).
std::string_view QueryOf(std::string_view target);

// Decodes %XX escapes (two hex digits, either case); with plus_is_space,
// '+' is a space (query strings, as browsers' forms and URLSearchParams
// send them). A '%' not followed by two hex digits is an error naming it.
Status PercentDecode(std::string_view text, bool plus_is_space, std::string* decoded);

// The query string's name=value pairs, decoded. A name given twice, a pair
// without '=', or a bad escape is an error.
Status ParseQuery(std::string_view query, std::map<std::string, std::string>* parameters);

}  // namespace gradientd::http
