// gradctl: the command-line client of gradientd, as library code so that it
// can be tested without a process. tools/gradctl/main.cc only calls
// RunGradctl.
//
//   gradctl [GLOBAL OPTIONS] COMMAND [COMMAND OPTIONS]
//
// Commands: produce, gradient, fit, step, configure, reset, list, bench,
// replay, inspect (see `gradctl --help` and `gradctl COMMAND --help`). Each
// is a Command (cli/command.h) in its own file: cli/produce/produce.h (its
// exactly-once sending: cli/produce/producer.h), cli/query/query_commands.h,
// cli/bench.h, cli/replay/replay.h, cli/replay/inspect.h; this file only
// parses the line and dispatches. Global options (cli/global_flags.h), accepted
// anywhere on the line: --server HOST:PORT (default $GRADIENTD_SERVER, else
// 127.0.0.1:7878), --token TOKEN (default $GRADIENTD_TOKEN; every connection
// then starts with a Hello), --series NAME (default "default"), --json,
// --help/-h, and --tls [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
// (the CA's default comes from $GRADIENTD_TLS_CA; see client/tls.h).
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace gradientd::cli {

// Runs gradctl on argv (argv[0] is the program's name): results go to `out`,
// diagnostics to `err`; `produce` reads std::cin for stdin. The default
// server comes from the environment variable GRADIENTD_SERVER when set, the
// default token from GRADIENTD_TOKEN.
// Returns the exit code.
int RunGradctl(int argc, char** argv, std::ostream& out, std::ostream& err);

// The same with every input explicit: `args` excludes the program name;
// `in` stands for stdin; `default_server` is the server used without
// --server, `default_token` the token without --token (empty: no Hello).
int RunGradctl(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err, const std::string& default_server,
               const std::string& default_token = "");

}  // namespace gradientd::cli
