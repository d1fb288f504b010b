// The commands that send one request about a series and print the reply
// (readable, or JSON with --json): gradient, fit, step, configure, reset,
// and list (which follows every page of the series list).
#pragma once

#include "cli/command.h"

namespace gradientd::cli {

Command GradientCommand();
Command FitCommand();
Command StepCommand();
Command ConfigureCommand();
Command ResetCommand();
Command ListCommand();

}  // namespace gradientd::cli
