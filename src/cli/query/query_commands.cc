#include "cli/query/query_commands.h"

#include <cstdint>

#include "cli/output.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

using Printer = void (*)(const v1::Response& response, std::ostream& out);

// Connects, sends `request`, prints the reply with `print` (or as JSON).
int Unary(CommandContext& context, v1::Request& request, v1::Response::BodyCase expected,
          Printer print) {
  std::unique_ptr<client::Client> client;
  if (int rc = context.Connect(&client); rc != kExitOk) return rc;
  v1::Response response;
  if (Status s = client->Call(request, &response); !s.ok()) return context.Fail(s);
  if (response.has_error()) return context.ServerError(response);
  if (response.body_case() != expected) {
    return context.Fail(Status::Internal("unexpected reply from " + context.flags.server + ": " +
                                         ToJson(response)));
  }
  if (context.flags.json) {
    context.out << ToJson(response) << '\n';
  } else {
    print(response, context.out);
  }
  context.out.flush();
  return kExitOk;
}

void PrintGradient(const v1::Response& response, std::ostream& out) {
  KeyValueBlock block;
  AddGradient(response.gradient(), &block);
  block.Print(out);
}

void PrintFit(const v1::Response& response, std::ostream& out) {
  KeyValueBlock block;
  AddFit(response.fit(), &block);
  block.Print(out);
}

void PrintStep(const v1::Response& response, std::ostream& out) {
  const v1::StepReply& step = response.step();
  const v1::GradientReply& g = step.gradient();
  KeyValueBlock block;
  block.Add("series", g.series());
  block.Add("iterations", std::to_string(step.iterations()));
  block.Add("converged", step.converged() ? "yes" : "no");
  if (step.time_limited()) block.Add("stopped", "by the server's --max-step-time");
  block.Add("learning rate", step.learning_rate());
  block.Add("n", std::to_string(g.n()));
  block.Add("m", g.m());
  block.Add("b", g.b());
  block.Add("dL/db", g.intercept_gradient());
  block.Add("dL/dm", g.slope_gradient());
  block.Add("loss", g.loss());
  block.Print(out);
}

// ---------------------------------------------------------------------------
// gradient

void GradientOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("m", po::value<double>()->value_name("M"),
       "the slope to evaluate at (default: the series' descent model)")
      ("b", po::value<double>()->value_name("B"),
       "the intercept to evaluate at (default: the series' descent model)");
  // clang-format on
}

int RunGradient(CommandContext& context, const po::variables_map& vm) {
  v1::Request request;
  v1::GradientQuery* q = request.mutable_gradient();
  q->set_series(context.flags.series);
  if (vm.count("m")) q->set_m(vm["m"].as<double>());
  if (vm.count("b")) q->set_b(vm["b"].as<double>());
  return Unary(context, request, v1::Response::kGradient, &PrintGradient);
}

// ---------------------------------------------------------------------------
// fit, reset

int RunFit(CommandContext& context, const po::variables_map&) {
  v1::Request request;
  request.mutable_fit()->set_series(context.flags.series);
  return Unary(context, request, v1::Response::kFit, &PrintFit);
}

int RunReset(CommandContext& context, const po::variables_map&) {
  v1::Request request;
  request.mutable_reset()->set_series(context.flags.series);
  return Unary(context, request, v1::Response::kFit, &PrintFit);
}

// ---------------------------------------------------------------------------
// step

void StepOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("iterations", po::value<int64_t>()->default_value(1)->value_name("K"),
       "the most descent steps to run")
      ("learning-rate", po::value<double>()->value_name("LR"),
       "the rate for these steps, 0 = auto (default: the series' configured rate)")
      ("tolerance", po::value<double>()->value_name("T"),
       "stop early once the gradient's norm is below T");
  // clang-format on
}

int RunStep(CommandContext& context, const po::variables_map& vm) {
  const int64_t iterations = vm["iterations"].as<int64_t>();
  if (iterations < 0) return context.Usage("--iterations must be >= 0");
  v1::Request request;
  v1::StepRequest* step = request.mutable_step();
  step->set_series(context.flags.series);
  step->set_iterations(static_cast<uint64_t>(iterations));
  if (vm.count("learning-rate")) step->set_learning_rate(vm["learning-rate"].as<double>());
  if (vm.count("tolerance")) step->set_tolerance(vm["tolerance"].as<double>());
  return Unary(context, request, v1::Response::kStep, &PrintStep);
}

// ---------------------------------------------------------------------------
// configure

void ConfigureOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("learning-rate", po::value<double>()->value_name("LR"),
       "the descent's learning rate, 0 = auto (derived from the data)")
      ("steps-per-batch", po::value<int64_t>()->value_name("K"),
       "descent steps run after each batch of points")
      ("m", po::value<double>()->value_name("M"), "set the descent model's slope")
      ("b", po::value<double>()->value_name("B"), "set the descent model's intercept");
  // clang-format on
}

int RunConfigure(CommandContext& context, const po::variables_map& vm) {
  v1::Request request;
  v1::ConfigureSeries* c = request.mutable_configure();
  c->set_series(context.flags.series);
  if (vm.count("learning-rate")) c->set_learning_rate(vm["learning-rate"].as<double>());
  if (vm.count("steps-per-batch")) {
    const int64_t k = vm["steps-per-batch"].as<int64_t>();
    if (k < 0 || k > int64_t{UINT32_MAX}) return context.Usage("--steps-per-batch must be >= 0");
    c->set_steps_per_batch(static_cast<uint32_t>(k));
  }
  if (vm.count("m")) c->set_m(vm["m"].as<double>());
  if (vm.count("b")) c->set_b(vm["b"].as<double>());
  return Unary(context, request, v1::Response::kFit, &PrintFit);
}

// ---------------------------------------------------------------------------
// list

void ListOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("prefix", po::value<std::string>()->default_value("")->value_name("P"),
       "only the series whose names start with P")
      ("page-size", po::value<int64_t>()->default_value(1000)->value_name("N"),
       "series per request (1 to 4096); list follows every page either way");
  // clang-format on
}

// Every page, into one list. Each page's names come after the previous
// page's, so the loop ends; the bound is a guard against a broken server.
int FetchAllPages(CommandContext& context, client::Client& client, v1::Request& request,
                  v1::Response* all) {
  v1::SeriesList* list = all->mutable_series_list();
  for (uint64_t page = 0;; ++page) {
    if (page > (uint64_t{1} << 32)) {
      return context.Fail(Status::Internal("the pages of list do not end"));
    }
    v1::Response response;
    if (Status s = client.Call(request, &response); !s.ok()) return context.Fail(s);
    if (response.has_error()) return context.ServerError(response);
    if (!response.has_series_list()) {
      return context.Fail(Status::Internal("unexpected reply from " + context.flags.server + ": " +
                                           ToJson(response)));
    }
    v1::SeriesList* got = response.mutable_series_list();
    for (v1::FitReply& fit : *got->mutable_series()) list->add_series()->Swap(&fit);
    if (got->next_page_token().empty()) return kExitOk;
    if (got->next_page_token() <= request.list().page_token()) {
      return context.Fail(Status::Internal("the server's next_page_token does not advance"));
    }
    request.mutable_list()->set_page_token(got->next_page_token());
  }
}

int RunList(CommandContext& context, const po::variables_map& vm) {
  const int64_t page_size = vm["page-size"].as<int64_t>();
  if (page_size < 1 || page_size > 4096) {
    return context.Usage("--page-size must be between 1 and 4096");
  }
  std::unique_ptr<client::Client> client;
  if (int rc = context.Connect(&client); rc != kExitOk) return rc;
  v1::Request request;
  request.mutable_list()->set_page_size(static_cast<uint32_t>(page_size));
  request.mutable_list()->set_prefix(vm["prefix"].as<std::string>());
  v1::Response all;
  if (int rc = FetchAllPages(context, *client, request, &all); rc != kExitOk) return rc;
  if (context.flags.json) {
    context.out << ToJson(all) << '\n';
  } else {
    PrintSeriesList(all.series_list(), context.out);
  }
  context.out.flush();
  return kExitOk;
}

}  // namespace

Command GradientCommand() {
  return {"gradient",
          "[--m M] [--b B]",
          "the loss gradient at (m, b)",
          "Prints the gradient of the mean-squared-error loss over every point of the series at\n"
          "(m, b): n, m, b, dL/db, dL/dm and the loss.",
          &GradientOptions,
          &RunGradient};
}

Command FitCommand() {
  return {"fit",
          "",
          "the descent model and the least-squares line",
          "Prints the series' descent model (m, b, loss, steps, learning rate), its least-squares\n"
          "line and R².",
          &NoOptions,
          &RunFit};
}

Command StepCommand() {
  return {"step",
          "[--iterations K] [--learning-rate LR] [--tolerance T]",
          "run gradient-descent steps on the model",
          "Runs up to K gradient-descent steps on the series' model and prints the new model,\n"
          "its gradient and loss.",
          &StepOptions,
          &RunStep};
}

Command ConfigureCommand() {
  return {"configure",
          "[--learning-rate LR] [--steps-per-batch K] [--m M] [--b B]",
          "change the descent settings or model",
          "Changes the series' descent settings or model (creating the series, empty, if it\n"
          "does not exist yet) and prints its fit. Options not given are left as they are.",
          &ConfigureOptions,
          &RunConfigure};
}

Command ResetCommand() {
  return {"reset",
          "",
          "drop the series' points and model",
          "Drops the series' points and descent model, keeping its configuration, and prints\n"
          "its fit.",
          &NoOptions,
          &RunReset};
}

Command ListCommand() {
  return {"list",
          "[--prefix P] [--page-size N]",
          "every series with its lines",
          "Prints a table of every series (or those whose names start with --prefix): n, the\n"
          "descent line, the least-squares line and R². The server answers a page of series at\n"
          "a time; list asks for every page, in name order, and prints them together.",
          &ListOptions,
          &RunList};
}

}  // namespace gradientd::cli
