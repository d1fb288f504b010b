// gradctl's exit codes, shared by every subcommand.
#pragma once

namespace gradientd::cli {

inline constexpr int kExitOk = 0;
// The server answered with an error, could not be reached, or the input data
// is bad.
inline constexpr int kExitFailure = 1;
// The command line is wrong (unknown command or option, bad value).
inline constexpr int kExitUsage = 2;

}  // namespace gradientd::cli
