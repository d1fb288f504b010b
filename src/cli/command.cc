#include "cli/command.h"

#include "cli/output.h"
#include "protocol/error_codes.h"

namespace gradientd::cli {

int CommandContext::Usage(const std::string& message) {
  err << "gradctl " << command << ": " << message << "\nTry 'gradctl " << command << " --help'.\n";
  return kExitUsage;
}

int PrintFailure(const Status& status, std::ostream& err) {
  err << "gradctl: " << status.message() << '\n';
  return kExitFailure;
}

int CommandContext::Fail(const Status& status) { return PrintFailure(status, err); }

int CommandContext::ServerError(const v1::Response& response) {
  if (flags.json) out << ToJson(response) << std::endl;
  err << "gradctl: " << protocol::ErrorCodeName(response.error()) << ": "
      << response.error().message() << '\n';
  return kExitFailure;
}

int CommandContext::MakeConnectOptions(client::ConnectOptions* options) {
  if (Status s = ConnectOptionsFromFlags(flags, options); !s.ok()) return Fail(s);
  return kExitOk;
}

int CommandContext::Connect(std::unique_ptr<FailoverClient>* client) {
  FailoverPolicy policy;
  Status s = ServersFromFlags(flags, &policy.servers);
  if (s.ok()) {
    if (int rc = MakeConnectOptions(&policy.connect); rc != kExitOk) return rc;
    if (policy.servers.size() == 1) policy.attempts_per_server = 1;
    policy.timeout = FailoverTimeout(flags);
    *client = std::make_unique<FailoverClient>(std::move(policy), err);
    s = (*client)->Connect();
  }
  if (s.ok()) return kExitOk;
  if (s.code() == StatusCode::kInvalidArgument) {
    err << "gradctl: --server " << flags.server << ": " << s.message() << '\n';
    return kExitUsage;
  }
  return Fail(s);  // unreachable, or the token refused ("... refused the token: ...")
}

}  // namespace gradientd::cli
