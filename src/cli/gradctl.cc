#include "cli/gradctl.h"

#include <google/protobuf/struct.pb.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "cli/bench/bench.h"
#include "cli/csv_flags.h"
#include "cli/csv_reader.h"
#include "cli/output.h"
#include "cli/producer.h"
#include "cli/replay.h"
#include "cli/synthetic_points.h"
#include "client/client.h"
#include "core/point_stats.h"
#include "core/status.h"
#include "protocol/error_codes.h"
#include "util/random.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

// A PointBatch of this many points stays well under the server's default
// 16 MiB frame limit (each point is two packed doubles, 16 bytes).
constexpr int64_t kMaxBatchPoints = 1'000'000;
constexpr int64_t kMaxWindow = 1'000'000;
constexpr int kHelpWidth = 100;
constexpr int kHelpDescriptionWidth = 50;

// ---------------------------------------------------------------------------
// Command-line definitions.

struct GlobalFlags {
  std::string server;
  std::string token;
  std::string series;
  bool json = false;
  bool help = false;
  bool tls = false;
  std::string tls_ca;  // empty: $GRADIENTD_TLS_CA, else the system's CAs
  std::string tls_cert;
  std::string tls_key;
  std::string tcp_congestion;  // empty: the system's
};

po::options_description GlobalOptions(GlobalFlags* flags, const std::string& default_server,
                                      const std::string& default_token) {
  po::options_description d("Global options (accepted anywhere on the line)", kHelpWidth,
                            kHelpDescriptionWidth);
  // clang-format off
  d.add_options()
      ("server", po::value(&flags->server)->default_value(default_server)->value_name("HOST:PORT"),
       "the gradientd server; the default comes from $GRADIENTD_SERVER when set")
      // The help never shows the token itself.
      ("token",
       po::value(&flags->token)
           ->default_value(default_token, default_token.empty() ? "" : "$GRADIENTD_TOKEN")
           ->value_name("TOKEN"),
       "authenticate every connection with this token (a server started with --auth-file "
       "needs one); the default comes from $GRADIENTD_TOKEN, which keeps it out of the "
       "process list")
      ("series", po::value(&flags->series)->default_value("default")->value_name("NAME"),
       "the series to work on")
      ("json", po::bool_switch(&flags->json),
       "machine-readable output: one JSON object per reply, one per line, field names as in "
       "the protocol (gradientd.proto)")
      ("tls", po::bool_switch(&flags->tls),
       "connect with TLS; the server's certificate must be signed by a trusted CA and name "
       "the HOST of --server")
      ("tls-ca", po::value(&flags->tls_ca)->value_name("FILE"),
       "with --tls: trust the CA certificates in this PEM file instead of the system's; the "
       "default comes from $GRADIENTD_TLS_CA when set")
      ("tls-cert", po::value(&flags->tls_cert)->value_name("FILE"),
       "with --tls: present this PEM client certificate (for a server run with "
       "--tls-client-ca); needs --tls-key")
      ("tls-key", po::value(&flags->tls_key)->value_name("FILE"),
       "the PEM private key (unencrypted) of --tls-cert")
      ("tcp-congestion", po::value(&flags->tcp_congestion)->value_name("NAME"),
       "TCP congestion control for every connection this command makes (Linux, e.g. reno or "
       "cubic; default: the system's, net.ipv4.tcp_congestion_control). With bbr, Linux paces "
       "each flow, loopback too, which costs producers on the server's machine throughput")
      ("help,h", po::bool_switch(&flags->help), "print usage and exit");
  // clang-format on
  return d;
}

// The global flags' values and combinations that make no sense.
Status CheckGlobalFlags(const GlobalFlags& flags, const po::variables_map& vm) {
  if (vm.count("tcp-congestion") && flags.tcp_congestion.empty()) {
    return Status::InvalidArgument("--tcp-congestion needs a NAME");
  }
  for (const char* flag : {"tls-ca", "tls-cert", "tls-key"}) {
    if (vm.count(flag) && !flags.tls) {
      return Status::InvalidArgument("--" + std::string(flag) + " needs --tls");
    }
    if (vm.count(flag) && vm[flag].as<std::string>().empty()) {
      return Status::InvalidArgument("--" + std::string(flag) + " needs a FILE");
    }
  }
  if (vm.count("tls-cert") != vm.count("tls-key")) {
    return Status::InvalidArgument(vm.count("tls-cert") ? "--tls-cert needs --tls-key"
                                                        : "--tls-key needs --tls-cert");
  }
  return Status::Ok();
}

void ProduceOptions(po::options_description* d) {
  AddCsvOptions(d);  // --x-column, --y-column, --header, --no-header, --delimiter
  // clang-format off
  d->add_options()
      ("synthetic", po::bool_switch(),
       "generate points instead of reading CSV: x uniform in [x-min, x-max], "
       "y = slope*x + intercept + normal noise")
      ("slope", po::value<double>()->default_value(2.0)->value_name("M"), "synthetic: the slope")
      ("intercept", po::value<double>()->default_value(1.0)->value_name("B"),
       "synthetic: the intercept")
      ("noise", po::value<double>()->default_value(0.5)->value_name("SIGMA"),
       "synthetic: the noise's standard deviation (0 = none)")
      ("count", po::value<int64_t>()->default_value(10000)->value_name("N"),
       "synthetic: how many points")
      ("x-min", po::value<double>()->default_value(0.0)->value_name("X"), "synthetic: smallest x")
      ("x-max", po::value<double>()->default_value(10.0)->value_name("X"), "synthetic: largest x")
      ("seed", po::value<uint64_t>()->value_name("S"),
       "synthetic: the random seed (default: a random one, printed in the summary)")
      ("batch", po::value<int64_t>()->default_value(8192)->value_name("N"),
       "points per batch sent")
      ("window", po::value<int64_t>()->default_value(16)->value_name("W"),
       "most batches sent but not yet acknowledged (pipelining)")
      ("progress-every", po::value<int64_t>()->default_value(0)->value_name("K"),
       "every K batches, print the series' gradient and fit (0 = never)");
  // clang-format on
  AddExactlyOnceOptions(d);  // --producer-id, --first-sequence, --retry-for
  AddProduceSaveOption(d);   // --save
}

void GradientOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("m", po::value<double>()->value_name("M"),
       "the slope to evaluate at (default: the series' descent model)")
      ("b", po::value<double>()->value_name("B"),
       "the intercept to evaluate at (default: the series' descent model)");
  // clang-format on
}

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

void ListOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("prefix", po::value<std::string>()->default_value("")->value_name("P"),
       "only the series whose names start with P")
      ("page-size", po::value<int64_t>()->default_value(1000)->value_name("N"),
       "series per request (1 to 4096); list follows every page either way");
  // clang-format on
}

void NoOptions(po::options_description*) {}

class Gradctl;

struct Command {
  std::string_view name;
  std::string_view operands;  // after the name in the synopsis
  std::string_view summary;   // one line, for the overall usage
  std::string_view description;
  void (*add_options)(po::options_description*);
  int (Gradctl::*run)(const po::variables_map&);
};

po::options_description CommandOptions(const Command& command) {
  po::options_description d(std::string(command.name) + " options", kHelpWidth,
                            kHelpDescriptionWidth);
  command.add_options(&d);
  return d;
}

constexpr auto kStyle =
    po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;

// ---------------------------------------------------------------------------
// Point sources for produce (PointSource is in cli/producer.h).

class CsvSource : public PointSource {
 public:
  CsvSource(std::unique_ptr<std::istream> owned, std::istream& in, std::string name,
            CsvOptions options)
      : owned_(std::move(owned)), reader_(in, std::move(name), std::move(options)) {}
  Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max) override {
    return reader_.Next(x, y, max);
  }

 private:
  std::unique_ptr<std::istream> owned_;  // the file, when not stdin
  CsvPointReader reader_;
};

class SyntheticSource : public PointSource {
 public:
  explicit SyntheticSource(const SyntheticSpec& spec) : points_(spec) {}
  Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max) override {
    points_.Next(x, y, max);
    return Status::Ok();
  }

 private:
  SyntheticPoints points_;
};

// ---------------------------------------------------------------------------
// The commands.

class Gradctl {
 public:
  Gradctl(std::istream& in, std::ostream& out, std::ostream& err, const GlobalFlags& flags,
          std::string command)
      : in_(in), out_(out), err_(err), flags_(flags), command_(std::move(command)) {}

  int Produce(const po::variables_map& vm);
  int Gradient(const po::variables_map& vm);
  int Fit(const po::variables_map& vm);
  int Step(const po::variables_map& vm);
  int Configure(const po::variables_map& vm);
  int Reset(const po::variables_map& vm);
  int List(const po::variables_map& vm);
  int Bench(const po::variables_map& vm);
  int Replay(const po::variables_map& vm);
  int Inspect(const po::variables_map& vm);

 private:
  using Printer = void (Gradctl::*)(const v1::Response&);

  // A usage error found after parsing (a bad value or combination).
  int Usage(const std::string& message) {
    err_ << "gradctl " << command_ << ": " << message << "\nTry 'gradctl " << command_
         << " --help'.\n";
    return kExitUsage;
  }
  int Fail(const Status& status) {
    err_ << "gradctl: " << status.message() << '\n';
    return kExitFailure;
  }
  // An Error reply: JSON to out in --json mode, the message to err always.
  int ServerError(const v1::Response& response, std::string_view prefix = "") {
    if (flags_.json) out_ << ToJson(response) << std::endl;
    err_ << "gradctl: " << prefix << protocol::ErrorCodeName(response.error()) << ": "
         << response.error().message() << '\n';
    return kExitFailure;
  }
  int Connect(std::unique_ptr<client::Client>* client);
  // How every command connects: plaintext, or TLS with a context loaded
  // here once. A gradctl exit code (1 when a TLS file cannot be used).
  int MakeConnectOptions(client::ConnectOptions* options);
  // Connects, sends `request`, prints the reply with `print` (or as JSON).
  int Unary(v1::Request& request, v1::Response::BodyCase expected, Printer print);

  void PrintGradient(const v1::Response& response);
  void PrintFit(const v1::Response& response);
  void PrintStep(const v1::Response& response);
  void PrintList(const v1::Response& response);

  Status MakeSource(const po::variables_map& vm, std::unique_ptr<PointSource>* source,
                    std::string* description, bool* usage_error);

  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  GlobalFlags flags_;
  std::string command_;
};

int Gradctl::MakeConnectOptions(client::ConnectOptions* options) {
  options->token = flags_.token;
  options->tcp_congestion = flags_.tcp_congestion;
  if (!flags_.tls) return kExitOk;
  client::TlsOptions tls;
  tls.ca_file = flags_.tls_ca;
  if (tls.ca_file.empty()) {
    const char* env = std::getenv("GRADIENTD_TLS_CA");
    if (env != nullptr) tls.ca_file = env;
  }
  tls.cert_file = flags_.tls_cert;
  tls.key_file = flags_.tls_key;
  if (Status s = client::MakeClientTlsContext(tls, &options->tls); !s.ok()) return Fail(s);
  return kExitOk;
}

int Gradctl::Connect(std::unique_ptr<client::Client>* client) {
  client::ConnectOptions options;
  if (int rc = MakeConnectOptions(&options); rc != kExitOk) return rc;
  const Status s = client::Client::Connect(flags_.server, options, client);
  if (s.ok()) return kExitOk;
  if (s.code() == StatusCode::kInvalidArgument) {
    err_ << "gradctl: --server " << flags_.server << ": " << s.message() << '\n';
    return kExitUsage;
  }
  return Fail(s);  // unreachable, or the token refused ("... refused the token: ...")
}

int Gradctl::Unary(v1::Request& request, v1::Response::BodyCase expected, Printer print) {
  std::unique_ptr<client::Client> client;
  if (int rc = Connect(&client); rc != kExitOk) return rc;
  v1::Response response;
  if (Status s = client->Call(request, &response); !s.ok()) return Fail(s);
  if (response.has_error()) return ServerError(response);
  if (response.body_case() != expected) {
    return Fail(
        Status::Internal("unexpected reply from " + flags_.server + ": " + ToJson(response)));
  }
  if (flags_.json) {
    out_ << ToJson(response) << '\n';
  } else {
    (this->*print)(response);
  }
  out_.flush();
  return kExitOk;
}

void Gradctl::PrintGradient(const v1::Response& response) {
  KeyValueBlock block;
  AddGradient(response.gradient(), &block);
  block.Print(out_);
}

void Gradctl::PrintFit(const v1::Response& response) {
  KeyValueBlock block;
  AddFit(response.fit(), &block);
  block.Print(out_);
}

void Gradctl::PrintStep(const v1::Response& response) {
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
  block.Print(out_);
}

void Gradctl::PrintList(const v1::Response& response) {
  PrintSeriesList(response.series_list(), out_);
}

int Gradctl::Gradient(const po::variables_map& vm) {
  v1::Request request;
  v1::GradientQuery* q = request.mutable_gradient();
  q->set_series(flags_.series);
  if (vm.count("m")) q->set_m(vm["m"].as<double>());
  if (vm.count("b")) q->set_b(vm["b"].as<double>());
  return Unary(request, v1::Response::kGradient, &Gradctl::PrintGradient);
}

int Gradctl::Fit(const po::variables_map&) {
  v1::Request request;
  request.mutable_fit()->set_series(flags_.series);
  return Unary(request, v1::Response::kFit, &Gradctl::PrintFit);
}

int Gradctl::Step(const po::variables_map& vm) {
  const int64_t iterations = vm["iterations"].as<int64_t>();
  if (iterations < 0) return Usage("--iterations must be >= 0");
  v1::Request request;
  v1::StepRequest* step = request.mutable_step();
  step->set_series(flags_.series);
  step->set_iterations(static_cast<uint64_t>(iterations));
  if (vm.count("learning-rate")) step->set_learning_rate(vm["learning-rate"].as<double>());
  if (vm.count("tolerance")) step->set_tolerance(vm["tolerance"].as<double>());
  return Unary(request, v1::Response::kStep, &Gradctl::PrintStep);
}

int Gradctl::Configure(const po::variables_map& vm) {
  v1::Request request;
  v1::ConfigureSeries* c = request.mutable_configure();
  c->set_series(flags_.series);
  if (vm.count("learning-rate")) c->set_learning_rate(vm["learning-rate"].as<double>());
  if (vm.count("steps-per-batch")) {
    const int64_t k = vm["steps-per-batch"].as<int64_t>();
    if (k < 0 || k > int64_t{UINT32_MAX}) return Usage("--steps-per-batch must be >= 0");
    c->set_steps_per_batch(static_cast<uint32_t>(k));
  }
  if (vm.count("m")) c->set_m(vm["m"].as<double>());
  if (vm.count("b")) c->set_b(vm["b"].as<double>());
  return Unary(request, v1::Response::kFit, &Gradctl::PrintFit);
}

int Gradctl::Reset(const po::variables_map&) {
  v1::Request request;
  request.mutable_reset()->set_series(flags_.series);
  return Unary(request, v1::Response::kFit, &Gradctl::PrintFit);
}

int Gradctl::List(const po::variables_map& vm) {
  const int64_t page_size = vm["page-size"].as<int64_t>();
  if (page_size < 1 || page_size > 4096) return Usage("--page-size must be between 1 and 4096");
  std::unique_ptr<client::Client> client;
  if (int rc = Connect(&client); rc != kExitOk) return rc;
  v1::Request request;
  request.mutable_list()->set_page_size(static_cast<uint32_t>(page_size));
  request.mutable_list()->set_prefix(vm["prefix"].as<std::string>());
  // Every page, into one list. Each page's names come after the previous
  // page's, so the loop ends; the bound is a guard against a broken server.
  v1::Response all;
  v1::SeriesList* list = all.mutable_series_list();
  for (uint64_t page = 0;; ++page) {
    if (page > (uint64_t{1} << 32)) return Fail(Status::Internal("the pages of list do not end"));
    v1::Response response;
    if (Status s = client->Call(request, &response); !s.ok()) return Fail(s);
    if (response.has_error()) return ServerError(response);
    if (!response.has_series_list()) {
      return Fail(
          Status::Internal("unexpected reply from " + flags_.server + ": " + ToJson(response)));
    }
    v1::SeriesList* got = response.mutable_series_list();
    for (v1::FitReply& fit : *got->mutable_series()) list->add_series()->Swap(&fit);
    if (got->next_page_token().empty()) break;
    if (got->next_page_token() <= request.list().page_token()) {
      return Fail(Status::Internal("the server's next_page_token does not advance"));
    }
    request.mutable_list()->set_page_token(got->next_page_token());
  }
  if (flags_.json) {
    out_ << ToJson(all) << '\n';
  } else {
    PrintList(all);
  }
  out_.flush();
  return kExitOk;
}

int Gradctl::Bench(const po::variables_map& vm) {
  BenchConfig config;
  if (Status s = ParseBenchConfig(vm, &config); !s.ok()) return Usage(s.message());
  // The benchmark's connections and baselines are plain TCP.
  if (flags_.tls) return Usage("--tls is not supported by bench (it measures plaintext only)");
  if (int rc = MakeConnectOptions(&config.connect); rc != kExitOk) return rc;
  return RunBench(config, out_, err_);
}

int Gradctl::Replay(const po::variables_map& vm) {
  ReplayConfig config;
  if (Status s = ParseReplayConfig(vm, &config); !s.ok()) return Usage(s.message());
  if (int rc = MakeConnectOptions(&config.connect); rc != kExitOk) return rc;
  return RunReplay(config, out_, err_);
}

int Gradctl::Inspect(const po::variables_map& vm) {
  InspectConfig config;
  if (Status s = ParseInspectConfig(vm, &config); !s.ok()) return Usage(s.message());
  return RunInspect(config, out_, err_);
}

// Builds the point source from the produce flags. A returned error with
// *usage_error is a command-line mistake; otherwise an input problem.
Status Gradctl::MakeSource(const po::variables_map& vm, std::unique_ptr<PointSource>* source,
                           std::string* description, bool* usage_error) {
  *usage_error = true;
  static constexpr const char* kSyntheticFlags[] = {"slope", "intercept", "noise", "count",
                                                    "x-min", "x-max",     "seed"};
  const auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  if (vm["synthetic"].as<bool>()) {
    if (vm.count("file")) return Status::InvalidArgument("--synthetic reads no FILE");
    for (const char* flag : kCsvFlagNames) {
      if (given(flag)) {
        return Status::InvalidArgument(std::string("--") + flag +
                                       " is for CSV input, not --synthetic");
      }
    }
    SyntheticSpec spec;
    spec.slope = vm["slope"].as<double>();
    spec.intercept = vm["intercept"].as<double>();
    spec.noise = vm["noise"].as<double>();
    spec.x_min = vm["x-min"].as<double>();
    spec.x_max = vm["x-max"].as<double>();
    const int64_t count = vm["count"].as<int64_t>();
    if (count < 0) return Status::InvalidArgument("--count must be >= 0");
    spec.count = static_cast<uint64_t>(count);
    for (double v : {spec.slope, spec.intercept, spec.noise, spec.x_min, spec.x_max}) {
      if (!std::isfinite(v)) {
        return Status::InvalidArgument(
            "--slope, --intercept, --noise, --x-min and --x-max must be finite");
      }
    }
    if (spec.noise < 0) return Status::InvalidArgument("--noise must be >= 0");
    if (spec.x_min > spec.x_max) return Status::InvalidArgument("--x-min must be <= --x-max");
    spec.seed = vm.count("seed") ? vm["seed"].as<uint64_t>() : util::RandomU64();
    *description = "synthetic, seed " + std::to_string(spec.seed);
    *source = std::make_unique<SyntheticSource>(spec);
    return Status::Ok();
  }
  for (const char* flag : kSyntheticFlags) {
    if (given(flag)) {
      return Status::InvalidArgument(std::string("--") + flag + " needs --synthetic");
    }
  }
  CsvOptions options;
  if (Status s = CsvOptionsFromFlags(vm, &options); !s.ok()) return s;
  const std::string file = vm.count("file") ? vm["file"].as<std::string>() : "-";
  *usage_error = false;
  if (file == "-") {
    *description = "<stdin>";
    *source = std::make_unique<CsvSource>(nullptr, in_, "<stdin>", options);
    return Status::Ok();
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return Status::InvalidArgument("cannot read '" + file + "': it is a directory");
  }
  auto stream = std::make_unique<std::ifstream>(file, std::ios::in | std::ios::binary);
  if (!stream->is_open()) {
    return Status::InvalidArgument("cannot open '" + file + "': " + std::strerror(errno));
  }
  *description = file;
  std::istream& ref = *stream;
  *source = std::make_unique<CsvSource>(std::move(stream), ref, file, options);
  return Status::Ok();
}

int Gradctl::Produce(const po::variables_map& vm) {
  const int64_t batch_size = vm["batch"].as<int64_t>();
  const int64_t window = vm["window"].as<int64_t>();
  const int64_t progress_every = vm["progress-every"].as<int64_t>();
  if (batch_size < 1 || batch_size > kMaxBatchPoints) {
    return Usage("--batch must be between 1 and " + std::to_string(kMaxBatchPoints));
  }
  if (window < 1 || window > kMaxWindow) {
    return Usage("--window must be between 1 and " + std::to_string(kMaxWindow));
  }
  if (progress_every < 0) return Usage("--progress-every must be >= 0");

  ProduceConfig config;
  config.server = flags_.server;
  if (int rc = MakeConnectOptions(&config.connect); rc != kExitOk) return rc;
  config.series = flags_.series;
  config.json = flags_.json;
  config.batch = static_cast<std::size_t>(batch_size);
  config.window = static_cast<std::size_t>(window);
  config.progress_every = static_cast<uint64_t>(progress_every);
  if (Status s = ExactlyOnceFlagsFromVm(vm, &config.exactly_once); !s.ok()) {
    return Usage(s.message());
  }
  if (vm.count("save")) {
    config.save_path = vm["save"].as<std::string>();
    if (config.save_path.empty()) return Usage("--save needs a FILE");
    std::error_code ec;
    if (vm.count("file") &&
        std::filesystem::equivalent(vm["file"].as<std::string>(), config.save_path, ec)) {
      return Usage("--save " + config.save_path + " would overwrite the input FILE");
    }
  }

  std::unique_ptr<PointSource> source;
  bool usage_error = false;
  if (Status s = MakeSource(vm, &source, &config.source_description, &usage_error); !s.ok()) {
    return usage_error ? Usage(s.message()) : Fail(s);
  }
  // Sends through an exactly-once Producer (cli/producer.h), prints the summary.
  return RunProduce(config, *source, out_, err_);
}

const Command kCommands[] = {
    {"produce", "[FILE]", "send points from a CSV file, stdin, or a synthetic line",
     "Sends (x, y) points to the series in pipelined batches: from the CSV FILE, from stdin\n"
     "when FILE is '-' or absent, or generated with --synthetic. Then prints what was sent\n"
     "and the series' fit. A bad CSV line stops it after the points before that line were\n"
     "sent (exit 1, with the line number).\n"
     "\n"
     "Exactly once: every batch carries a producer id (--producer-id, or a new random one,\n"
     "printed at the start) and a sequence number (--first-sequence, 1, 2, ...). The server\n"
     "applies each (producer id, sequence) at most once and acknowledges a repeat as a\n"
     "duplicate. When the connection is lost (the server killed or restarting, the\n"
     "connection reset), produce reconnects with backoff (50ms doubling to 2s) for up to\n"
     "--retry-for and resends every unacknowledged batch (at most --window) with its\n"
     "original sequence and content, then goes on; the summary reports reconnects and\n"
     "duplicates. If it gives up (exit 1), sending the same input again with the same\n"
     "--producer-id and --batch skips what the server already applied.\n"
     "--save FILE records every batch sent, once, for `gradctl replay` and `gradctl inspect`.",
     &ProduceOptions, &Gradctl::Produce},
    {"gradient", "[--m M] [--b B]", "the loss gradient at (m, b)",
     "Prints the gradient of the mean-squared-error loss over every point of the series at\n"
     "(m, b): n, m, b, dL/db, dL/dm and the loss.",
     &GradientOptions, &Gradctl::Gradient},
    {"fit", "", "the descent model and the least-squares line",
     "Prints the series' descent model (m, b, loss, steps, learning rate), its least-squares\n"
     "line and R².",
     &NoOptions, &Gradctl::Fit},
    {"step", "[--iterations K] [--learning-rate LR] [--tolerance T]",
     "run gradient-descent steps on the model",
     "Runs up to K gradient-descent steps on the series' model and prints the new model,\n"
     "its gradient and loss.",
     &StepOptions, &Gradctl::Step},
    {"configure", "[--learning-rate LR] [--steps-per-batch K] [--m M] [--b B]",
     "change the descent settings or model",
     "Changes the series' descent settings or model (creating the series, empty, if it\n"
     "does not exist yet) and prints its fit. Options not given are left as they are.",
     &ConfigureOptions, &Gradctl::Configure},
    {"reset", "", "drop the series' points and model",
     "Drops the series' points and descent model, keeping its configuration, and prints\n"
     "its fit.",
     &NoOptions, &Gradctl::Reset},
    {"list", "[--prefix P] [--page-size N]", "every series with its lines",
     "Prints a table of every series (or those whose names start with --prefix): n, the\n"
     "descent line, the least-squares line and R². The server answers a page of series at\n"
     "a time; list asks for every page, in name order, and prints them together.",
     &ListOptions, &Gradctl::List},
    {"bench", "[--spawn-server] [--producers P] [--batch B] [--seconds S] ...",
     "measure ingest throughput and query latency",
     "Runs P producer connections sending B-point batches for S seconds (pipelined, at most\n"
     "W unacknowledged each) while another connection sends gradient queries at a steady\n"
     "rate, then reports ingest points/s (overall, and the spread of its half-second rates)\n"
     "and MB/s of payload (16 bytes a point), batches/s, and query round-trip p50/p99/p99.9\n"
     "idle and under ingest. --spawn-server starts a private gradientd and reports its CPU\n"
     "time and peak RSS; the baselines are a discard server in gradctl fed by the same\n"
     "producers and a TCP echo server in a child process, probed at the same ticks as the\n"
     "queries. --json prints one JSON object. Writes to the series 'bench' unless --series\n"
     "is given.",
     &AddBenchOptions, &Gradctl::Bench},
    {"replay", "FILE...", kReplaySummary, kReplayDescription, &AddReplayOptions, &Gradctl::Replay},
    {"inspect", "FILE...", kInspectSummary, kInspectDescription, &AddInspectOptions,
     &Gradctl::Inspect},
};

const Command* FindCommand(std::string_view name) {
  for (const Command& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Usage.

void PrintUsage(std::ostream& out, const po::options_description& global) {
  out << "Usage: gradctl [GLOBAL OPTIONS] COMMAND [OPTIONS]\n\n"
         "The command-line client of gradientd, the streaming gradient server.\n\n"
         "Commands:\n";
  std::size_t width = 0;
  for (const Command& c : kCommands) width = std::max(width, c.name.size());
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(width - c.name.size() + 3, ' ') << c.summary << '\n';
  }
  out << '\n' << global << "\nRun 'gradctl COMMAND --help' for a command's options.\n";
}

void PrintCommandUsage(std::ostream& out, const Command& command,
                       const po::options_description& global) {
  out << "Usage: gradctl [GLOBAL OPTIONS] " << command.name;
  if (!command.operands.empty()) out << ' ' << command.operands;
  out << "\n\n" << command.description << "\n\n";
  const po::options_description options = CommandOptions(command);
  if (!options.options().empty()) out << options << '\n';
  out << global;
}

// Whether `--name` (no '=') takes a value in any of gradctl's options, so
// that the scan for the command word can skip that value.
bool TakesValue(std::string_view name, const po::options_description& global) {
  const auto check = [&](const po::options_description& d) {
    const po::option_description* o = d.find_nothrow(std::string(name), false);
    return o != nullptr && o->semantic()->max_tokens() > 0;
  };
  if (check(global)) return true;
  return std::any_of(std::begin(kCommands), std::end(kCommands),
                     [&](const Command& c) { return check(CommandOptions(c)); });
}

// The position of the command word in args: the first operand, skipping
// options and their values. -1 if there is none.
std::ptrdiff_t FindCommandWord(const std::vector<std::string>& args,
                               const po::options_description& global) {
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!options_ended && a == "--") {
      options_ended = true;
      continue;
    }
    if (!options_ended && a.size() > 2 && a.starts_with("--")) {
      if (a.find('=') == std::string::npos && TakesValue(std::string_view(a).substr(2), global)) {
        ++i;
      }
      continue;
    }
    if (!options_ended && a.size() > 1 && a[0] == '-') continue;  // -h
    return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

}  // namespace

int RunGradctl(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err, const std::string& default_server,
               const std::string& default_token) {
  GlobalFlags flags;
  const po::options_description global = GlobalOptions(&flags, default_server, default_token);
  const std::ptrdiff_t word = FindCommandWord(args, global);

  if (word < 0) {
    // No command: only global options, e.g. --help.
    po::variables_map vm;
    try {
      po::store(po::command_line_parser(args).options(global).style(kStyle).run(), vm);
      po::notify(vm);
    } catch (const po::error& e) {
      err << "gradctl: " << e.what() << "\nTry 'gradctl --help'.\n";
      return kExitUsage;
    }
    if (flags.help) {
      PrintUsage(out, global);
      return kExitOk;
    }
    err << "gradctl: no command given\n\n";
    PrintUsage(err, global);
    return kExitUsage;
  }

  std::string name = args[static_cast<std::size_t>(word)];
  std::vector<std::string> rest = args;
  rest.erase(rest.begin() + word);
  if (name == "help") {  // gradctl help [COMMAND]
    const auto topic = std::find_if(rest.begin(), rest.end(),
                                    [](const std::string& a) { return !a.starts_with("-"); });
    if (topic == rest.end()) {
      PrintUsage(out, global);
      return kExitOk;
    }
    name = *topic;
    rest = {"--help"};
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    err << "gradctl: unknown command '" << name << "'\nTry 'gradctl --help'.\n";
    return kExitUsage;
  }

  po::options_description options = CommandOptions(*command);
  po::options_description all;
  all.add(global).add(options);
  po::positional_options_description positional;
  if (command->name == "produce") {
    all.add_options()("file", po::value<std::string>());
    positional.add("file", 1);
  } else if (command->name == "replay" || command->name == "inspect") {
    all.add_options()("files", po::value<std::vector<std::string>>());  // FILE...
    positional.add("files", -1);
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(rest).options(all).positional(positional).style(kStyle).run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::string what = e.what();
    if (what.find("too many positional options") != std::string::npos) {
      what = "unexpected operand (" + std::string(command->name) +
             (command->name == "produce" ? " takes at most one FILE)" : " takes none)");
    }
    err << "gradctl " << command->name << ": " << what << "\nTry 'gradctl " << command->name
        << " --help'.\n";
    return kExitUsage;
  }
  if (flags.help) {
    PrintCommandUsage(out, *command, global);
    return kExitOk;
  }
  if (Status s = CheckGlobalFlags(flags, vm); !s.ok()) {
    err << "gradctl " << command->name << ": " << s.message() << "\nTry 'gradctl " << command->name
        << " --help'.\n";
    return kExitUsage;
  }
  Gradctl gradctl(in, out, err, flags, std::string(command->name));
  return (gradctl.*(command->run))(vm);
}

int RunGradctl(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  const char* env = std::getenv("GRADIENTD_SERVER");
  const std::string default_server =
      env != nullptr && *env != '\0' ? std::string(env) : std::string(client::kDefaultServer);
  const char* token = std::getenv("GRADIENTD_TOKEN");
  return RunGradctl(args, std::cin, out, err, default_server, token != nullptr ? token : "");
}

}  // namespace gradientd::cli
