// gradctl configure: the descent settings and model, the window and the
// decay of a series. Values gradctl can judge are refused before sending
// (exit 2); the server's refusal of the rest is printed (exit 1).
#include <chrono>
#include <cstdint>
#include <string>

#include "cli/output.h"
#include "cli/query/query_commands.h"
#include "cli/query/query_support.h"
#include "cli/query/view_names.h"
#include "util/duration.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

// The most buckets a window may have (ConfigureSeries in gradientd.proto).
constexpr int64_t kMaxWindowBuckets = 4096;

void ConfigureOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("learning-rate", po::value<double>()->value_name("LR"),
       "the descent's learning rate, 0 = auto (derived from the data)")
      ("steps-per-batch", po::value<int64_t>()->value_name("K"),
       "descent steps run after each batch of points")
      ("m", po::value<double>()->value_name("M"), "set the descent model's slope")
      ("b", po::value<double>()->value_name("B"), "set the descent model's intercept")
      ("descent-mode", po::value<std::string>()->value_name("MODE"),
       "auto (standardized with the auto rate, plain with a fixed one), plain or standardized")
      ("descent-view", po::value<std::string>()->value_name("VIEW"),
       "the view the descent steps run on: all, window or decayed")
      ("window", po::value<std::string>()->value_name("DURATION"),
       "a sliding event-time window of this length (e.g. 1h); starts the window empty")
      ("buckets", po::value<int64_t>()->value_name("N"),
       "the window's buckets, 1 to 4096 (default 60 for a new window); starts it empty")
      ("half-life", po::value<std::string>()->value_name("DURATION"),
       "a decayed view: a point's weight halves every DURATION of event time; starts it empty")
      ("no-window", po::bool_switch(), "drop the window view")
      ("no-decay", po::bool_switch(), "drop the decayed view");
  // clang-format on
}

// A --window or --half-life value: the duration grammar, above zero.
Status PositiveDuration(const po::variables_map& vm, const char* flag, int64_t* nanos) {
  std::chrono::nanoseconds duration{0};
  if (Status s = util::ParseDuration(vm[flag].as<std::string>(), &duration); !s.ok()) {
    return Status::InvalidArgument(std::string("--") + flag + ": " + s.message());
  }
  if (duration.count() <= 0) {
    return Status::InvalidArgument(std::string("--") + flag + " must be above zero");
  }
  *nanos = duration.count();
  return Status::Ok();
}

Status DescentFlags(const po::variables_map& vm, v1::ConfigureSeries* c) {
  if (vm.count("learning-rate")) c->set_learning_rate(vm["learning-rate"].as<double>());
  if (vm.count("steps-per-batch")) {
    const int64_t k = vm["steps-per-batch"].as<int64_t>();
    if (k < 0 || k > int64_t{UINT32_MAX}) {
      return Status::InvalidArgument("--steps-per-batch must be >= 0");
    }
    c->set_steps_per_batch(static_cast<uint32_t>(k));
  }
  if (vm.count("m")) c->set_m(vm["m"].as<double>());
  if (vm.count("b")) c->set_b(vm["b"].as<double>());
  if (vm.count("descent-mode")) {
    v1::DescentMode mode;
    const std::string& text = vm["descent-mode"].as<std::string>();
    if (Status s = ParseDescentMode("--descent-mode", text, &mode); !s.ok()) return s;
    c->set_descent_mode(mode);
  }
  if (vm.count("descent-view")) {
    v1::View view;
    const std::string& text = vm["descent-view"].as<std::string>();
    if (Status s = ParseView("--descent-view", text, &view); !s.ok()) return s;
    c->set_descent_view(view);
  }
  return Status::Ok();
}

Status WindowFlags(const po::variables_map& vm, v1::ConfigureSeries* c) {
  const bool remove = vm["no-window"].as<bool>();
  if (remove && (vm.count("window") || vm.count("buckets"))) {
    return Status::InvalidArgument("--no-window conflicts with --window and --buckets");
  }
  c->set_remove_window(remove);
  if (vm.count("window")) {
    int64_t nanos = 0;
    if (Status s = PositiveDuration(vm, "window", &nanos); !s.ok()) return s;
    c->set_window_nanos(nanos);
  }
  if (vm.count("buckets")) {
    const int64_t n = vm["buckets"].as<int64_t>();
    if (n < 1 || n > kMaxWindowBuckets) {
      return Status::InvalidArgument("--buckets must be between 1 and " +
                                     std::to_string(kMaxWindowBuckets));
    }
    if (c->has_window_nanos() && c->window_nanos() < n) {
      return Status::InvalidArgument("--window must be at least --buckets nanoseconds");
    }
    c->set_window_buckets(static_cast<uint32_t>(n));
  }
  return Status::Ok();
}

Status DecayFlags(const po::variables_map& vm, v1::ConfigureSeries* c) {
  const bool remove = vm["no-decay"].as<bool>();
  if (remove && vm.count("half-life")) {
    return Status::InvalidArgument("--no-decay conflicts with --half-life");
  }
  c->set_remove_decay(remove);
  if (vm.count("half-life")) {
    int64_t nanos = 0;
    if (Status s = PositiveDuration(vm, "half-life", &nanos); !s.ok()) return s;
    c->set_half_life_nanos(nanos);
  }
  return Status::Ok();
}

void PrintConfigured(const v1::Response& response, std::ostream& out) {
  KeyValueBlock block;
  AddFit(response.fit(), &block);
  block.Print(out);
  PrintFitViews(response.fit(), out);
}

int RunConfigure(CommandContext& context, const po::variables_map& vm) {
  v1::Request request;
  v1::ConfigureSeries* c = request.mutable_configure();
  c->set_series(context.flags.series);
  for (auto flags : {&DescentFlags, &WindowFlags, &DecayFlags}) {
    if (Status s = flags(vm, c); !s.ok()) return context.Usage(s.message());
  }
  return Unary(context, request, v1::Response::kFit, &PrintConfigured, Resend::kIfUnsent);
}

}  // namespace

Command ConfigureCommand() {
  return {"configure",
          "[--learning-rate LR] [--steps-per-batch K] [--m M] [--b B] [--descent-mode MODE] "
          "[--descent-view VIEW] [--window DURATION [--buckets N] | --no-window] "
          "[--half-life DURATION | --no-decay]",
          "change the descent settings, model, window or decay",
          "Changes the series' descent settings or model, its sliding window or its decayed\n"
          "view (creating the series, empty, if it does not exist yet) and prints its fit.\n"
          "Options not given are left as they are. Setting or changing --window, --buckets or\n"
          "--half-life starts that view empty: it counts the batches applied from then on.\n"
          "Durations as 90s, 10m, 1h (above zero); the window must be at least --buckets ns.",
          &ConfigureOptions,
          &RunConfigure};
}

}  // namespace gradientd::cli
