// replay's progress on stderr: a bar redrawn in place, or a line every
// interval, or nothing. Not thread-safe: one sending thread draws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>

namespace gradientd::cli {

enum class ProgressMode {
  kAuto,   // a bar when stderr is a terminal, else lines
  kBar,    // one line redrawn with \r
  kLines,  // a line every interval
  kNone,
};

class Progress {
  using Clock = std::chrono::steady_clock;
  using nanoseconds = std::chrono::nanoseconds;

 public:
  Progress(ProgressMode mode, std::ostream& err, std::chrono::nanoseconds interval)
      : mode_(mode), err_(err), interval_(interval), start_(Clock::now()) {}

  // `fraction` in [0, 1] of the work done; `points` sent so far;
  // `eta` when the caller knows better than the rate (the recorded timing).
  void Update(double fraction, uint64_t points, std::optional<nanoseconds> eta);

  // The final state (a bar is completed and ended with a newline).
  void Finish(double fraction, uint64_t points);

  // Before printing a message: ends the bar's line so the message starts on
  // its own; the next Update draws the bar again below it.
  void Interrupt();

 private:
  void Draw(Clock::time_point now, double fraction, uint64_t points, std::optional<nanoseconds> eta,
            bool final);

  ProgressMode mode_;
  std::ostream& err_;
  nanoseconds interval_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  bool drawn_once_ = false;
  bool interrupted_ = false;
  std::size_t width_ = 0;
};

}  // namespace gradientd::cli
