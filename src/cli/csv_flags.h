// The CSV input flags shared by `gradctl produce` and `gradctl replay`:
// --x-column, --y-column, --header, --no-header, --delimiter.
#pragma once

#include <boost/program_options.hpp>

#include "cli/csv_reader.h"
#include "core/status.h"

namespace gradientd::cli {

// Adds the CSV flags to `options`.
void AddCsvOptions(boost::program_options::options_description* options);

// Reads the CSV flags from `vm` (which must have been parsed with
// AddCsvOptions) into *options. Values above core::kMaxAbsValue are rejected.
// A returned error is a usage error naming the flag.
Status CsvOptionsFromFlags(const boost::program_options::variables_map& vm, CsvOptions* options);

// The names of the CSV flags, without "--".
inline constexpr const char* kCsvFlagNames[] = {"x-column", "y-column", "header", "no-header",
                                                "delimiter"};

}  // namespace gradientd::cli
