// What a gradctl subcommand is (its name, help texts, options and run
// function: one Command per file under cli/) and the CommandContext its run
// function gets: the streams, the global flags, and the shared ways to
// connect and to report a usage error, a failure or a server's Error reply.
#pragma once

#include <boost/program_options.hpp>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/exit_codes.h"
#include "cli/failover_client.h"
#include "cli/global_flags.h"
#include "client/client.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

// "gradctl: MESSAGE" on `err`; returns kExitFailure.
int PrintFailure(const Status& status, std::ostream& err);

struct CommandContext {
  // A usage error found after parsing (a bad value or combination): exit 2.
  int Usage(const std::string& message);
  // Says why on err: exit 1.
  int Fail(const Status& status);
  // An Error reply: JSON to out in --json mode, the message to err always.
  int ServerError(const v1::Response& response);
  // The global flags as ConnectOptions; a gradctl exit code (1 when a TLS
  // file cannot be used).
  int MakeConnectOptions(client::ConnectOptions* options);
  // Connects to the first --server address that answers (failing over
  // along the list on later calls too); a gradctl exit code (2 for a bad
  // --server).
  int Connect(std::unique_ptr<FailoverClient>* client);

  std::istream& in;  // stdin
  std::ostream& out;
  std::ostream& err;
  const GlobalFlags flags;
  const std::string command;  // the subcommand's name, for messages
};

// Where a command's operands go: none, at most one "file", or any number of
// "files".
enum class Operands { kNone, kOptionalFile, kFiles };

struct Command {
  std::string_view name;
  std::string_view synopsis;  // after the name in the usage line
  std::string_view summary;   // one line, for the overall usage
  std::string_view description;
  void (*add_options)(boost::program_options::options_description*);
  int (*run)(CommandContext& context, const boost::program_options::variables_map& vm);
  Operands operands = Operands::kNone;
};

// For commands without options of their own.
inline void NoOptions(boost::program_options::options_description*) {}

}  // namespace gradientd::cli
