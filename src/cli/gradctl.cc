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

#include "cli/csv_reader.h"
#include "cli/output.h"
#include "client/client.h"
#include "core/point_stats.h"
#include "core/status.h"

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
  std::string series;
  bool json = false;
  bool help = false;
};

po::options_description GlobalOptions(GlobalFlags* flags, const std::string& default_server) {
  po::options_description d("Global options (accepted anywhere on the line)", kHelpWidth,
                            kHelpDescriptionWidth);
  // clang-format off
  d.add_options()
      ("server", po::value(&flags->server)->default_value(default_server)->value_name("HOST:PORT"),
       "the gradientd server; the default comes from $GRADIENTD_SERVER when set")
      ("series", po::value(&flags->series)->default_value("default")->value_name("NAME"),
       "the series to work on")
      ("json", po::bool_switch(&flags->json),
       "machine-readable output: one JSON object per reply, one per line, field names as in "
       "the protocol (gradientd.proto)")
      ("help,h", po::bool_switch(&flags->help), "print usage and exit");
  // clang-format on
  return d;
}

void ProduceOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("x-column", po::value<std::string>()->default_value("0")->value_name("NAME|INDEX"),
       "CSV: the x column, a header name or a 0-based index")
      ("y-column", po::value<std::string>()->default_value("1")->value_name("NAME|INDEX"),
       "CSV: the y column, a header name or a 0-based index")
      ("header", po::bool_switch(),
       "CSV: the first line is a header (default: auto-detect: it is one when none of its "
       "selected fields is a number, or when a column is selected by name)")
      ("no-header", po::bool_switch(), "CSV: the first line is data")
      ("delimiter", po::value<std::string>()->default_value(",")->value_name("C"),
       "CSV: the field separator, one character ('tab' or '\\t' for a tab)")
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
// Point sources for produce.

class PointSource {
 public:
  virtual ~PointSource() = default;
  // As CsvPointReader::Next: OK with no points at the end.
  virtual Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max) = 0;
};

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

struct SyntheticSpec {
  double slope = 0;
  double intercept = 0;
  double noise = 0;
  uint64_t count = 0;
  double x_min = 0;
  double x_max = 0;
  uint64_t seed = 0;
};

class SyntheticSource : public PointSource {
 public:
  explicit SyntheticSource(const SyntheticSpec& spec)
      : spec_(spec),
        rng_(spec.seed),
        uniform_(spec.x_min, spec.x_max),
        normal_(0.0, spec.noise > 0 ? spec.noise : 1.0) {}
  Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max) override {
    x->clear();
    y->clear();
    const uint64_t n = std::min<uint64_t>(max, spec_.count - produced_);
    for (uint64_t i = 0; i < n; ++i) {
      const double xv = spec_.x_min == spec_.x_max ? spec_.x_min : uniform_(rng_);
      const double noise = spec_.noise > 0 ? normal_(rng_) : 0.0;
      x->push_back(xv);
      y->push_back(spec_.slope * xv + spec_.intercept + noise);
    }
    produced_ += n;
    return Status::Ok();
  }

 private:
  SyntheticSpec spec_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_;
  std::normal_distribution<double> normal_;
  uint64_t produced_ = 0;
};

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t RandomU64() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

std::string ErrorCodeName(const v1::Error& error) {
  const std::string& name = v1::Error::Code_Name(error.code());
  return name.empty() ? "ERROR " + std::to_string(error.code()) : name;
}

std::string Plural(uint64_t n, std::string_view noun) {
  std::string text = std::to_string(n) + " " + std::string(noun);
  if (n != 1) text += noun.ends_with("ch") ? "es" : "s";
  return text;
}

std::string FormatSeconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  return buf;
}

std::string FormatRate(double per_second) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", per_second);
  return buf;
}

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
    err_ << "gradctl: " << prefix << ErrorCodeName(response.error()) << ": "
         << response.error().message() << '\n';
    return kExitFailure;
  }
  int Connect(std::unique_ptr<client::Client>* client);
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

int Gradctl::Connect(std::unique_ptr<client::Client>* client) {
  const Status s = client::Client::Connect(flags_.server, client);
  if (s.ok()) return kExitOk;
  if (s.code() == StatusCode::kInvalidArgument) {
    err_ << "gradctl: --server " << flags_.server << ": " << s.message() << '\n';
    return kExitUsage;
  }
  return Fail(s);
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

int Gradctl::List(const po::variables_map&) {
  v1::Request request;
  request.mutable_list();
  return Unary(request, v1::Response::kSeriesList, &Gradctl::PrintList);
}

// Builds the point source from the produce flags. A returned error with
// *usage_error is a command-line mistake; otherwise an input problem.
Status Gradctl::MakeSource(const po::variables_map& vm, std::unique_ptr<PointSource>* source,
                           std::string* description, bool* usage_error) {
  *usage_error = true;
  static constexpr const char* kCsvFlags[] = {"x-column", "y-column", "header", "no-header",
                                              "delimiter"};
  static constexpr const char* kSyntheticFlags[] = {"slope", "intercept", "noise", "count",
                                                    "x-min", "x-max",     "seed"};
  const auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  if (vm["synthetic"].as<bool>()) {
    if (vm.count("file")) return Status::InvalidArgument("--synthetic reads no FILE");
    for (const char* flag : kCsvFlags) {
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
    spec.seed = vm.count("seed") ? vm["seed"].as<uint64_t>() : RandomU64();
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
  options.max_abs_value = core::kMaxAbsValue;
  if (Status s = ColumnSpec::Parse(vm["x-column"].as<std::string>(), &options.x_column); !s.ok()) {
    return Status::InvalidArgument("--x-column: " + s.message());
  }
  if (Status s = ColumnSpec::Parse(vm["y-column"].as<std::string>(), &options.y_column); !s.ok()) {
    return Status::InvalidArgument("--y-column: " + s.message());
  }
  const bool header = vm["header"].as<bool>();
  const bool no_header = vm["no-header"].as<bool>();
  if (header && no_header) return Status::InvalidArgument("--header and --no-header conflict");
  options.header = header      ? HeaderMode::kPresent
                   : no_header ? HeaderMode::kAbsent
                               : HeaderMode::kAuto;
  const std::string delimiter = vm["delimiter"].as<std::string>();
  if (delimiter == "tab" || delimiter == "\\t") {
    options.delimiter = '\t';
  } else if (delimiter.size() == 1 && delimiter != "\"" && delimiter != "\n" && delimiter != "\r") {
    options.delimiter = delimiter[0];
  } else {
    return Status::InvalidArgument("--delimiter must be one character (or 'tab'), got '" +
                                   delimiter + "'");
  }
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

  std::unique_ptr<PointSource> source;
  std::string source_description;
  bool usage_error = false;
  if (Status s = MakeSource(vm, &source, &source_description, &usage_error); !s.ok()) {
    return usage_error ? Usage(s.message()) : Fail(s);
  }
  std::unique_ptr<client::Client> client;
  if (int rc = Connect(&client); rc != kExitOk) return rc;

  const std::string producer_id = "gradctl-" + Hex64(RandomU64());
  const auto start = std::chrono::steady_clock::now();

  // Replies come in request order; this is what each outstanding one is.
  struct Pending {
    enum class Kind { kBatch, kGradient, kFit } kind;
    uint64_t batch = 0;  // the batch's sequence number, or the batch a query follows
  };
  std::deque<Pending> pending;
  uint64_t batches_sent = 0;
  uint64_t batches_in_flight = 0;
  uint64_t batches_acked = 0;
  uint64_t points_acked = 0;
  uint64_t series_total = 0;
  uint64_t descent_errors = 0;
  bool input_done = false;
  Status input_error;
  std::optional<v1::Response> server_error;
  uint64_t server_error_batch = 0;
  Status transport_error;
  v1::GradientReply progress_gradient;
  bool have_progress_gradient = false;

  v1::Request ingest;
  v1::PointBatch* batch = ingest.mutable_ingest();
  batch->set_series(flags_.series);
  batch->set_producer_id(producer_id);
  v1::Request gradient_query;
  gradient_query.mutable_gradient()->set_series(flags_.series);
  v1::Request fit_query;
  fit_query.mutable_fit()->set_series(flags_.series);

  std::vector<double> x;
  std::vector<double> y;
  v1::Response response;
  while (true) {
    if (!input_done && batches_in_flight < static_cast<uint64_t>(window)) {
      const Status s = source->Next(&x, &y, static_cast<std::size_t>(batch_size));
      if (!s.ok()) {
        input_error = s;
        input_done = true;
      } else if (x.empty()) {
        input_done = true;
      }
      if (x.empty()) continue;
      // The valid points before a bad CSV line are sent too.
      batch->mutable_x()->Assign(x.begin(), x.end());
      batch->mutable_y()->Assign(y.begin(), y.end());
      batch->set_sequence(++batches_sent);
      if (Status t = client->Send(ingest); !t.ok()) {
        // Collect the replies already sent: the server's reason for closing
        // the connection, if it gave one, is among them.
        transport_error = t;
        input_done = true;
        continue;
      }
      pending.push_back({Pending::Kind::kBatch, batches_sent});
      ++batches_in_flight;
      if (progress_every > 0 && batches_sent % static_cast<uint64_t>(progress_every) == 0) {
        Status t = client->Send(gradient_query);
        if (t.ok()) t = client->Send(fit_query);
        if (!t.ok()) {
          transport_error = t;
          input_done = true;
          continue;
        }
        pending.push_back({Pending::Kind::kGradient, batches_sent});
        pending.push_back({Pending::Kind::kFit, batches_sent});
      }
      continue;
    }
    if (pending.empty()) break;
    response.Clear();
    if (Status t = client->Receive(&response); !t.ok()) {
      if (transport_error.ok()) transport_error = t;
      break;
    }
    const Pending p = pending.front();
    pending.pop_front();
    switch (p.kind) {
      case Pending::Kind::kBatch:
        --batches_in_flight;
        if (response.has_error()) {
          if (!server_error) {
            server_error = response;
            server_error_batch = p.batch;
          }
          input_done = true;  // send no more; collect the replies in flight
        } else if (response.has_ack()) {
          const v1::IngestAck& ack = response.ack();
          ++batches_acked;
          points_acked += ack.accepted();
          series_total = ack.total();
          if (!ack.descent_error().empty() && descent_errors++ == 0) {
            err_ << "gradctl: warning: batch " << p.batch
                 << ": the points were applied but the descent steps were refused: "
                 << ack.descent_error() << '\n';
          }
        } else {
          transport_error =
              Status::Internal("unexpected reply to a point batch: " + ToJson(response));
          pending.clear();  // the replies cannot be matched to requests any more
          input_done = true;
        }
        break;
      case Pending::Kind::kGradient:
      case Pending::Kind::kFit:
        if (flags_.json) {
          out_ << ToJson(response) << std::endl;
          break;
        }
        if (response.has_error()) {
          err_ << "gradctl: warning: progress query after batch " << p.batch
               << " failed: " << ErrorCodeName(response.error()) << ": "
               << response.error().message() << '\n';
          break;
        }
        if (p.kind == Pending::Kind::kGradient) {
          progress_gradient = response.gradient();
          have_progress_gradient = response.has_gradient();
          break;
        }
        if (response.has_fit()) {
          const v1::FitReply& fit = response.fit();
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          out_ << "batch " << p.batch << ": " << points_acked << " points acknowledged, "
               << FormatSeconds(seconds) << " s; n " << fit.n() << "; descent m "
               << FormatNumber(fit.descent().m()) << " b " << FormatNumber(fit.descent().b());
          if (have_progress_gradient) {
            out_ << " loss " << FormatNumber(progress_gradient.loss()) << " dL/dm "
                 << FormatNumber(progress_gradient.slope_gradient()) << " dL/db "
                 << FormatNumber(progress_gradient.intercept_gradient());
          }
          if (fit.has_least_squares()) {
            out_ << "; least squares m " << FormatNumber(fit.least_squares().m()) << " b "
                 << FormatNumber(fit.least_squares().b());
          }
          out_ << std::endl;
        }
        have_progress_gradient = false;
        break;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string acknowledged =
      Plural(points_acked, "point") + " in " + Plural(batches_acked, "batch") +
      (points_acked == 1 ? " was" : " were") + " sent and acknowledged";
  if (descent_errors > 1) {
    err_ << "gradctl: warning: the descent steps were refused after " << descent_errors
         << " batches\n";
  }
  if (server_error) {
    ServerError(*server_error, "server error ");
    err_ << "gradctl: batch " << server_error_batch << " was rejected; " << acknowledged << '\n';
    if (!transport_error.ok()) err_ << "gradctl: then: " << transport_error.message() << '\n';
    return kExitFailure;
  }
  if (!transport_error.ok()) {
    Fail(transport_error);
    err_ << "gradctl: " << acknowledged << " before that\n";
    return kExitFailure;
  }
  if (!input_error.ok()) {
    Fail(input_error);
    err_ << "gradctl: stopped at that line: " << acknowledged << " before it (series '"
         << flags_.series << "' has " << series_total << " points)\n";
    return kExitFailure;
  }

  // The final fit, for the summary (there is no series without points).
  v1::Response fit;
  if (points_acked == 0) {
    err_ << "gradctl: warning: the input has no points; nothing was sent\n";
  } else {
    if (Status s = client->Call(fit_query, &fit); !s.ok()) return Fail(s);
    if (fit.has_error()) return ServerError(fit);
  }
  const double rate = seconds > 0 ? static_cast<double>(points_acked) / seconds : 0.0;
  if (flags_.json) {
    google::protobuf::Struct summary;
    auto& fields = *summary.mutable_fields();
    auto& inner = *fields["summary"].mutable_struct_value()->mutable_fields();
    inner["series"].set_string_value(flags_.series);
    inner["source"].set_string_value(source_description);
    inner["producer_id"].set_string_value(producer_id);
    inner["points_sent"].set_number_value(static_cast<double>(points_acked));
    inner["batches"].set_number_value(static_cast<double>(batches_acked));
    inner["series_total"].set_number_value(static_cast<double>(series_total));
    inner["elapsed_seconds"].set_number_value(seconds);
    inner["points_per_second"].set_number_value(rate);
    if (fit.has_fit()) out_ << ToJson(fit) << '\n';
    out_ << ToJson(summary) << std::endl;
    return kExitOk;
  }
  KeyValueBlock block;
  block.Add("source", source_description);
  block.Add("points sent", std::to_string(points_acked));
  block.Add("batches", std::to_string(batches_acked));
  block.Add("series total", std::to_string(series_total));
  block.Add("elapsed", FormatSeconds(seconds) + " s");
  block.Add("throughput", FormatRate(rate) + " points/s");
  if (fit.has_fit()) AddFit(fit.fit(), &block);
  block.Print(out_);
  out_.flush();
  return kExitOk;
}

const Command kCommands[7] = {
    {"produce", "[FILE]", "send points from a CSV file, stdin, or a synthetic line",
     "Sends (x, y) points to the series in pipelined batches: from the CSV FILE, from stdin\n"
     "when FILE is '-' or absent, or generated with --synthetic. Then prints what was sent\n"
     "and the series' fit. A bad CSV line stops it after the points before that line were\n"
     "sent (exit 1, with the line number).",
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
    {"list", "", "every series with its lines",
     "Prints a table of every series: n, the descent line, the least-squares line and R².",
     &NoOptions, &Gradctl::List},
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
               std::ostream& err, const std::string& default_server) {
  GlobalFlags flags;
  const po::options_description global = GlobalOptions(&flags, default_server);
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
  Gradctl gradctl(in, out, err, flags, std::string(command->name));
  return (gradctl.*(command->run))(vm);
}

int RunGradctl(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  const char* env = std::getenv("GRADIENTD_SERVER");
  const std::string default_server =
      env != nullptr && *env != '\0' ? std::string(env) : std::string(client::kDefaultServer);
  return RunGradctl(args, std::cin, out, err, default_server);
}

}  // namespace gradientd::cli
