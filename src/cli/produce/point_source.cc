#include "cli/produce/point_source.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "cli/csv_flags.h"
#include "cli/csv_reader.h"
#include "cli/synthetic_points.h"
#include "util/random.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

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

constexpr const char* kSyntheticFlags[] = {"slope", "intercept", "noise", "count",
                                           "x-min", "x-max",     "seed"};

bool Given(const po::variables_map& vm, const char* name) {
  return vm.count(name) && !vm[name].defaulted();
}

// --synthetic: every error is a usage error.
Status SyntheticSourceFromFlags(const po::variables_map& vm, std::unique_ptr<PointSource>* source,
                                std::string* description) {
  if (vm.count("file")) return Status::InvalidArgument("--synthetic reads no FILE");
  for (const char* flag : kCsvFlagNames) {
    if (Given(vm, flag)) {
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

// A CSV file, or `in` for "-": cannot open it is not a usage error.
Status OpenCsvSource(const std::string& file, std::istream& in, const CsvOptions& options,
                     std::unique_ptr<PointSource>* source, std::string* description) {
  if (file == "-") {
    *description = "<stdin>";
    *source = std::make_unique<CsvSource>(nullptr, in, "<stdin>", options);
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

}  // namespace

void AddPointSourceOptions(po::options_description* d) {
  const SyntheticSpec kDefaults;  // the line's defaults are written once, there
  AddCsvOptions(d);  // --x-column, --y-column, --header, --no-header, --delimiter
  // clang-format off
  d->add_options()
      ("synthetic", po::bool_switch(),
       "generate points instead of reading CSV: x uniform in [x-min, x-max], "
       "y = slope*x + intercept + normal noise")
      ("slope", po::value<double>()->default_value(kDefaults.slope)->value_name("M"),
       "synthetic: the slope")
      ("intercept", po::value<double>()->default_value(kDefaults.intercept)->value_name("B"),
       "synthetic: the intercept")
      ("noise", po::value<double>()->default_value(kDefaults.noise)->value_name("SIGMA"),
       "synthetic: the noise's standard deviation (0 = none)")
      ("count", po::value<int64_t>()->default_value(10000)->value_name("N"),
       "synthetic: how many points")
      ("x-min", po::value<double>()->default_value(kDefaults.x_min)->value_name("X"),
       "synthetic: smallest x")
      ("x-max", po::value<double>()->default_value(kDefaults.x_max)->value_name("X"),
       "synthetic: largest x")
      ("seed", po::value<uint64_t>()->value_name("S"),
       "synthetic: the random seed (default: a random one, printed in the summary)");
  // clang-format on
}

Status MakePointSource(const po::variables_map& vm, std::istream& in,
                       std::unique_ptr<PointSource>* source, std::string* description,
                       bool* usage_error) {
  *usage_error = true;
  if (vm["synthetic"].as<bool>()) return SyntheticSourceFromFlags(vm, source, description);
  for (const char* flag : kSyntheticFlags) {
    if (Given(vm, flag)) {
      return Status::InvalidArgument(std::string("--") + flag + " needs --synthetic");
    }
  }
  CsvOptions options;
  if (Status s = CsvOptionsFromFlags(vm, &options); !s.ok()) return s;
  *usage_error = false;
  const std::string file = vm.count("file") ? vm["file"].as<std::string>() : "-";
  return OpenCsvSource(file, in, options, source, description);
}

}  // namespace gradientd::cli
