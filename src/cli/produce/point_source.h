// Where `gradctl produce` gets its points: a CSV file, stdin, or a
// synthetic line (--synthetic), chosen by its flags.
#pragma once

#include <boost/program_options.hpp>
#include <cstddef>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace gradientd::cli {

class PointSource {
 public:
  virtual ~PointSource() = default;
  // As CsvPointReader::Next: OK with no points at the end.
  virtual Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max) = 0;
};

// The source flags: the CSV ones (cli/csv_flags.h), then --synthetic and
// its --slope, --intercept, --noise, --count, --x-min, --x-max, --seed.
void AddPointSourceOptions(boost::program_options::options_description* options);

// Builds the point source from the flags (and the operand "file"; "-" or
// none: `in`, which must outlive the source). *description names it for the
// summary. A returned error with *usage_error is a command-line mistake;
// otherwise an input problem (a file that cannot be opened).
Status MakePointSource(const boost::program_options::variables_map& vm, std::istream& in,
                       std::unique_ptr<PointSource>* source, std::string* description,
                       bool* usage_error);

}  // namespace gradientd::cli
