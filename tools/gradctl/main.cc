// gradctl: the command-line client of gradientd. All of its logic is in
// src/cli/ (RunGradctl in cli/gradctl.h, one file or folder per command).
#include <csignal>
#include <iostream>

#include "cli/gradctl.h"

int main(int argc, char** argv) {
  // A server that goes away mid-write is an error reported by the client
  // library, not a reason to die silently of SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  return gradientd::cli::RunGradctl(argc, argv, std::cout, std::cerr);
}
