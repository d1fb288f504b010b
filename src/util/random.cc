#include "util/random.h"

#include <cstdio>
#include <random>

namespace gradientd::util {

uint64_t RandomU64() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

std::string RandomBytes(std::size_t bytes) {
  std::random_device device;
  std::string out;
  out.reserve(bytes + 4);
  while (out.size() < bytes) {
    const uint32_t word = device();
    for (int shift = 0; shift < 32 && out.size() < bytes; shift += 8) {
      out.push_back(static_cast<char>((word >> shift) & 0xff));
    }
  }
  return out;
}

std::string RandomHex64() {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(RandomU64()));
  return buf;
}

}  // namespace gradientd::util
