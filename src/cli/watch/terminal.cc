#include "cli/watch/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

namespace gradientd::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void OnInterrupt(int) { g_interrupted = 1; }

struct sigaction g_previous_int;
struct sigaction g_previous_term;

}  // namespace

bool IsTerminal(const std::ostream& out) {
  return out.rdbuf() == std::cout.rdbuf() && isatty(STDOUT_FILENO) == 1;
}

TerminalSize StandardOutputSize() {
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0) return {};
  return {size.ws_col, size.ws_row};
}

InterruptFlag::InterruptFlag() {
  g_interrupted = 0;
  struct sigaction action {};
  action.sa_handler = &OnInterrupt;
  action.sa_flags = SA_RESTART;  // a blocking read goes on; the loop polls the flag
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

InterruptFlag::~InterruptFlag() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
}

bool InterruptFlag::Raised() { return g_interrupted != 0; }

}  // namespace gradientd::cli
