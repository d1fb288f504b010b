#include "cli/query/query_commands.h"

#include <cmath>
#include <cstdint>

#include "cli/output.h"
#include "cli/query/query_support.h"
#include "cli/query/view_names.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

void PrintGradient(const v1::Response& response, std::ostream& out) {
  KeyValueBlock block;
  AddGradient(response.gradient(), &block);
  block.Print(out);
}

void PrintFit(const v1::Response& response, std::ostream& out) {
  KeyValueBlock block;
  AddFit(response.fit(), &block);
  block.Print(out);
  PrintFitViews(response.fit(), out);
}

// What a server of issue 13 says about the descent (it always names the mode).
void AddStepDiagnosis(const v1::StepReply& step, KeyValueBlock* block) {
  if (step.mode() == v1::DESCENT_MODE_UNSPECIFIED) return;
  if (step.gradient().has_coverage()) {
    block->Add("view", ViewName(step.gradient().coverage().view()) + ": " +
                           CoverageText(step.gradient().coverage()));
  }
  block->Add("mode", DescentModeName(step.mode()));
  block->Add("condition number", step.condition_number());
  block->Add("relative excess loss", step.relative_excess_loss());
  block->Add("estimated steps", step.has_estimated_steps()
                                    ? std::to_string(step.estimated_steps())
                                    : std::string("never (in this mode at this rate)"));
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
  AddStepDiagnosis(step, &block);
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
  AddViewOption(d, "the points: all (default), window or decayed");
}

int RunGradient(CommandContext& context, const po::variables_map& vm) {
  v1::Request request;
  v1::GradientQuery* q = request.mutable_gradient();
  q->set_series(context.flags.series);
  if (vm.count("m")) q->set_m(vm["m"].as<double>());
  if (vm.count("b")) q->set_b(vm["b"].as<double>());
  v1::View view;
  if (Status s = ViewFromVm(vm, &view); !s.ok()) return context.Usage(s.message());
  q->set_view(view);
  return Unary(context, request, v1::Response::kGradient, &PrintGradient, Resend::kIdempotent);
}

// ---------------------------------------------------------------------------
// fit, reset

void FitOptions(po::options_description* d) {
  AddViewOption(d,
                "the view of the first block: all (default), window or decayed; every view "
                "the series has is printed after it");
}

int RunFit(CommandContext& context, const po::variables_map& vm) {
  v1::Request request;
  request.mutable_fit()->set_series(context.flags.series);
  v1::View view;
  if (Status s = ViewFromVm(vm, &view); !s.ok()) return context.Usage(s.message());
  request.mutable_fit()->set_view(view);
  return Unary(context, request, v1::Response::kFit, &PrintFit, Resend::kIdempotent);
}

int RunReset(CommandContext& context, const po::variables_map&) {
  v1::Request request;
  request.mutable_reset()->set_series(context.flags.series);
  return Unary(context, request, v1::Response::kFit, &PrintFit, Resend::kIfUnsent);
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
       "stop early once the gradient's norm is below T")
      ("relative-tolerance", po::value<double>()->value_name("X"),
       "stop early once the relative excess loss (L - L*) / L* is at most X")
      ("mode", po::value<std::string>()->value_name("MODE"),
       "auto, plain or standardized (default: the series' configured mode)");
  // clang-format on
  AddViewOption(d,
                "the points the steps run on: all, window or decayed "
                "(default: the series' descent view)");
}

// Step's optional flags into `step`; kInvalidArgument for a bad value.
Status StepFlagsFromVm(const po::variables_map& vm, v1::StepRequest* step) {
  if (vm.count("learning-rate")) step->set_learning_rate(vm["learning-rate"].as<double>());
  if (vm.count("tolerance")) step->set_tolerance(vm["tolerance"].as<double>());
  if (vm.count("relative-tolerance")) {
    const double x = vm["relative-tolerance"].as<double>();
    if (!std::isfinite(x) || x < 0) {
      return Status::InvalidArgument("--relative-tolerance must be a number >= 0");
    }
    step->set_relative_tolerance(x);
  }
  if (vm.count("mode")) {
    v1::DescentMode mode;
    if (Status s = ParseDescentMode("--mode", vm["mode"].as<std::string>(), &mode); !s.ok()) {
      return s;
    }
    step->set_mode(mode);
  }
  v1::View view;
  if (Status s = ViewFromVm(vm, &view); !s.ok()) return s;
  step->set_view(view);
  return Status::Ok();
}

int RunStep(CommandContext& context, const po::variables_map& vm) {
  const int64_t iterations = vm["iterations"].as<int64_t>();
  if (iterations < 0) return context.Usage("--iterations must be >= 0");
  v1::Request request;
  v1::StepRequest* step = request.mutable_step();
  step->set_series(context.flags.series);
  step->set_iterations(static_cast<uint64_t>(iterations));
  if (Status s = StepFlagsFromVm(vm, step); !s.ok()) return context.Usage(s.message());
  v1::Response reply;
  const int rc =
      Unary(context, request, v1::Response::kStep, &PrintStep, Resend::kIfUnsent, &reply);
  if (rc == kExitOk && !reply.step().warning().empty()) {
    context.err << "gradctl: warning: " << reply.step().warning() << '\n';
  }
  return rc;
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
  AddViewOption(d,
                "the view of every row: all (default), window or decayed (a series "
                "without it is listed with all)");
}

// Every page, into one list. Each page's names come after the previous
// page's, so the loop ends; the bound is a guard against a broken server.
int FetchAllPages(CommandContext& context, FailoverClient& client, v1::Request& request,
                  v1::Response* all) {
  v1::SeriesList* list = all->mutable_series_list();
  for (uint64_t page = 0;; ++page) {
    if (page > (uint64_t{1} << 32)) {
      return context.Fail(Status::Internal("the pages of list do not end"));
    }
    v1::Response response;
    if (Status s = client.Call(request, &response, Resend::kIdempotent); !s.ok()) {
      return context.Fail(s);
    }
    if (response.has_error()) return context.ServerError(response);
    if (!response.has_series_list()) {
      return context.Fail(
          Status::Internal("unexpected reply from " + client.server() + ": " + ToJson(response)));
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
  v1::View view;
  if (Status s = ViewFromVm(vm, &view); !s.ok()) return context.Usage(s.message());
  std::unique_ptr<FailoverClient> client;
  if (int rc = context.Connect(&client); rc != kExitOk) return rc;
  v1::Request request;
  request.mutable_list()->set_page_size(static_cast<uint32_t>(page_size));
  request.mutable_list()->set_prefix(vm["prefix"].as<std::string>());
  request.mutable_list()->set_view(view);
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
          "[--m M] [--b B] [--view VIEW]",
          "the loss gradient at (m, b)",
          "Prints the gradient of the mean-squared-error loss over the points of the series'\n"
          "view (default all) at (m, b): n, m, b, dL/db, dL/dm and the loss.",
          &GradientOptions,
          &RunGradient};
}

Command FitCommand() {
  return {"fit",
          "[--view VIEW]",
          "the descent model and the least-squares line",
          "Prints the series' descent model (m, b, loss, steps, learning rate), its least-squares\n"
          "line and R² over --view (default all); its settings (descent mode as configured and\n"
          "as the next step takes it, descent view, window and buckets, half-life); then every\n"
          "view the series has: what it covers (points, weight and n_eff, the event-time\n"
          "interval in UTC), its least-squares line, R² and the descent line's loss in it.",
          &FitOptions,
          &RunFit};
}

Command StepCommand() {
  return {"step",
          "[--iterations K] [--learning-rate LR] [--mode MODE] [--view VIEW] [--tolerance T] "
          "[--relative-tolerance X]",
          "run gradient-descent steps on the model",
          "Runs up to K gradient-descent steps on the series' model and prints the new model,\n"
          "its gradient and loss, the mode used, the condition number, the relative excess\n"
          "loss (L - L*) / L* and the estimated further steps to reach the tolerance. A step\n"
          "that cannot make useful progress prints a warning on stderr (exit code 0).",
          &StepOptions,
          &RunStep};
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
          "[--prefix P] [--page-size N] [--view VIEW]",
          "every series with its lines",
          "Prints a table of every series (or those whose names start with --prefix): n, the\n"
          "descent line, the least-squares line and R². The server answers a page of series at\n"
          "a time; list asks for every page, in name order, and prints them together.",
          &ListOptions,
          &RunList};
}

}  // namespace gradientd::cli
