// Randomness that must not repeat across processes (file salts, producer
// ids): from std::random_device, /dev/urandom on Linux. Not for simulations,
// which want a seeded std::mt19937_64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gradientd::util {

uint64_t RandomU64();
// `bytes` random bytes.
std::string RandomBytes(std::size_t bytes);
// RandomU64() as 16 lower-case hex digits.
std::string RandomHex64();

}  // namespace gradientd::util
