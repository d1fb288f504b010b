#include "cli/query/query_support.h"

#include "cli/output.h"
#include "cli/query/view_names.h"

namespace gradientd::cli {

namespace po = boost::program_options;

int Unary(CommandContext& context, v1::Request& request, v1::Response::BodyCase expected,
          Printer print, Resend resend, v1::Response* reply) {
  std::unique_ptr<FailoverClient> client;
  if (int rc = context.Connect(&client); rc != kExitOk) return rc;
  v1::Response response;
  if (Status s = client->Call(request, &response, resend); !s.ok()) return context.Fail(s);
  if (response.has_error()) return context.ServerError(response);
  if (response.body_case() != expected) {
    return context.Fail(
        Status::Internal("unexpected reply from " + client->server() + ": " + ToJson(response)));
  }
  if (context.flags.json) {
    context.out << ToJson(response) << '\n';
  } else {
    print(response, context.out);
  }
  context.out.flush();
  if (reply != nullptr) reply->Swap(&response);
  return kExitOk;
}

void AddViewOption(po::options_description* d, const char* help) {
  d->add_options()("view", po::value<std::string>()->value_name("VIEW"), help);
}

Status ViewFromVm(const po::variables_map& vm, v1::View* view) {
  *view = v1::VIEW_UNSPECIFIED;
  if (!vm.count("view")) return Status::Ok();
  return ParseView("--view", vm["view"].as<std::string>(), view);
}

}  // namespace gradientd::cli
