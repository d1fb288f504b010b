#include "http/query_string.h"

namespace gradientd::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view QueryOf(std::string_view target) {
  const auto mark = target.find('?');
  return mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1);
}

Status PercentDecode(std::string_view text, bool plus_is_space, std::string* decoded) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      const bool two_follow = i + 2 < text.size();
      const int high = two_follow ? HexValue(text[i + 1]) : -1;
      const int low = two_follow ? HexValue(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return Status::InvalidArgument("bad percent-escape '" + std::string(text.substr(i, 3)) +
                                       "' in '" + std::string(text) + "'");
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
  }
  *decoded = std::move(out);
  return Status::Ok();
}

Status ParseQuery(std::string_view query, std::map<std::string, std::string>* parameters) {
  parameters->clear();
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("query parameter '" + std::string(pair) +
                                     "' has no value (write " + std::string(pair) + "=...)");
    }
    std::string name;
    std::string value;
    if (Status s = PercentDecode(pair.substr(0, eq), true, &name); !s.ok()) return s;
    if (Status s = PercentDecode(pair.substr(eq + 1), true, &value); !s.ok()) return s;
    if (!parameters->emplace(name, std::move(value)).second) {
      return Status::InvalidArgument("query parameter '" + name + "' is given twice");
    }
  }
  return Status::Ok();
}

}  // namespace gradientd::http
