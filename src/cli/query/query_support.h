// What the one-request commands (query_commands.cc, configure.cc) share: the
// round trip with its printing, and the --view flag.
#pragma once

#include <boost/program_options.hpp>
#include <ostream>
#include <string>

#include "cli/command.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

using Printer = void (*)(const v1::Response& response, std::ostream& out);

// Connects, sends `request` (failing over along the --server list as
// `resend` allows), prints the reply with `print` (or as JSON with --json);
// a gradctl exit code. `reply` (may be null) gets the reply.
int Unary(CommandContext& context, v1::Request& request, v1::Response::BodyCase expected,
          Printer print, Resend resend, v1::Response* reply = nullptr);

// --view all|window|decayed, with `help`; no default value (absent: the
// request's view is left unspecified).
void AddViewOption(boost::program_options::options_description* d, const char* help);
// The --view given, or VIEW_UNSPECIFIED; kInvalidArgument for an unknown name.
Status ViewFromVm(const boost::program_options::variables_map& vm, v1::View* view);

}  // namespace gradientd::cli
