// Small helpers the phases of `gradctl bench` share: the clock and errno.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "core/status.h"

namespace gradientd::cli::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

inline Clock::duration FromSeconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// A failed system call's error, with what was being done.
inline Status Errno(const std::string& what) {
  return Status::Internal(what + ": " + std::strerror(errno));
}

}  // namespace gradientd::cli::bench
