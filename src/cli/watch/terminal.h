// The terminal `gradctl watch` draws on: whether standard output is one, its
// size (TIOCGWINSZ), the ANSI sequences of a redraw in place, and SIGINT
// turned into a flag the refresh loop polls.
#pragma once

#include <cstddef>
#include <ostream>
#include <string_view>

namespace gradientd::cli {

// Cursor home, then clear the screen.
inline constexpr std::string_view kHomeAndClear = "\x1b[H\x1b[2J";
// Cursor home (each line then ends with kClearLineEnd, the frame with
// kClearScreenEnd: a redraw without a blank flash).
inline constexpr std::string_view kHome = "\x1b[H";
inline constexpr std::string_view kClearLineEnd = "\x1b[K";
inline constexpr std::string_view kClearScreenEnd = "\x1b[J";
inline constexpr std::string_view kHideCursor = "\x1b[?25l";
inline constexpr std::string_view kShowCursor = "\x1b[?25h";

// `out` writes to the process's standard output and that is a terminal.
bool IsTerminal(const std::ostream& out);

struct TerminalSize {
  std::size_t columns = 0;  // 0: unknown
  std::size_t rows = 0;
};
// Standard output's size; zeros when it is not a terminal or does not say.
TerminalSize StandardOutputSize();

// While alive, SIGINT and SIGTERM set a flag instead of ending the process;
// the previous handlers come back on destruction. One at a time.
class InterruptFlag {
 public:
  InterruptFlag();
  ~InterruptFlag();
  InterruptFlag(const InterruptFlag&) = delete;
  InterruptFlag& operator=(const InterruptFlag&) = delete;

  // A signal arrived since construction.
  static bool Raised();
};

}  // namespace gradientd::cli
