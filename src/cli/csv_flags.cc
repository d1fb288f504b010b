#include "cli/csv_flags.h"

#include <string>

#include "core/point_stats.h"

namespace gradientd::cli {

namespace po = boost::program_options;

void AddCsvOptions(po::options_description* d) {
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
       "CSV: the field separator, one character ('tab' or '\\t' for a tab)");
  // clang-format on
}

Status CsvOptionsFromFlags(const po::variables_map& vm, CsvOptions* options) {
  *options = CsvOptions{};
  options->max_abs_value = core::kMaxAbsValue;
  if (Status s = ColumnSpec::Parse(vm["x-column"].as<std::string>(), &options->x_column); !s.ok()) {
    return Status::InvalidArgument("--x-column: " + s.message());
  }
  if (Status s = ColumnSpec::Parse(vm["y-column"].as<std::string>(), &options->y_column); !s.ok()) {
    return Status::InvalidArgument("--y-column: " + s.message());
  }
  const bool header = vm["header"].as<bool>();
  const bool no_header = vm["no-header"].as<bool>();
  if (header && no_header) return Status::InvalidArgument("--header and --no-header conflict");
  options->header = header      ? HeaderMode::kPresent
                    : no_header ? HeaderMode::kAbsent
                                : HeaderMode::kAuto;
  const std::string delimiter = vm["delimiter"].as<std::string>();
  if (delimiter == "tab" || delimiter == "\\t") {
    options->delimiter = '\t';
  } else if (delimiter.size() == 1 && delimiter != "\"" && delimiter != "\n" && delimiter != "\r") {
    options->delimiter = delimiter[0];
  } else {
    return Status::InvalidArgument("--delimiter must be one character (or 'tab'), got '" +
                                   delimiter + "'");
  }
  return Status::Ok();
}

}  // namespace gradientd::cli
