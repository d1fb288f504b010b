#include "service/names.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace gradientd::service {
namespace {

// The code point of the UTF-8 sequence at text[i] and its length; 0 bytes
// when it is not a valid, shortest, non-surrogate sequence.
std::pair<uint32_t, std::size_t> DecodeUtf8(std::string_view text, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = at(i);
  if (c < 0x80) return {c, 1};
  std::size_t length = 0;
  uint32_t cp = 0, min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    length = 2, cp = c & 0x1fu, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    length = 3, cp = c & 0x0fu, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4, cp = c & 0x07u, min = 0x10000;
  } else {
    return {0, 0};
  }
  if (i + length > text.size()) return {0, 0};
  for (std::size_t k = 1; k < length; ++k) {
    if ((at(i + k) & 0xc0) != 0x80) return {0, 0};
    cp = (cp << 6) | (at(i + k) & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {0, 0};
  return {cp, length};
}

}  // namespace

Status BytesOverLimit(const char* what, std::size_t size, std::size_t limit) {
  return Status::InvalidArgument(std::string(what) + " is " + std::to_string(size) +
                                 " bytes; the limit is " + std::to_string(limit));
}

Status ValidateSeriesName(std::string_view name, std::size_t max_bytes) {
  if (name.empty()) return Status::InvalidArgument("series name is empty");
  if (name.size() > max_bytes) return BytesOverLimit("series name", name.size(), max_bytes);
  for (std::size_t i = 0; i < name.size();) {
    const auto [cp, length] = DecodeUtf8(name, i);
    if (length == 0) {
      return Status::InvalidArgument("series name is not valid UTF-8 at offset " +
                                     std::to_string(i));
    }
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      char code[8];
      std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(cp));
      return Status::InvalidArgument("series name has a control character (" + std::string(code) +
                                     ") at offset " + std::to_string(i));
    }
    i += length;
  }
  return Status::Ok();
}

Status ValidateProducerId(std::string_view id) {
  if (id.empty()) return Status::InvalidArgument("producer_id is empty");
  if (id.size() > kMaxProducerIdBytes)
    return BytesOverLimit("producer_id", id.size(), kMaxProducerIdBytes);
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c < 0x21 || c > 0x7e) {
      return Status::InvalidArgument(
          "producer_id has byte " + std::to_string(c) + " at offset " + std::to_string(i) +
          "; producer ids are printable ASCII without space (0x21-0x7E)");
    }
  }
  return Status::Ok();
}

}  // namespace gradientd::service
