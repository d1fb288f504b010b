// Test helpers for Series: a SeriesChange builder and StepOptions from the
// old positional arguments.
#pragma once

#include <cstdint>
#include <optional>

#include "core/series.h"

namespace gradientd::core {

// SeriesChange with named fields (designated initializers that skip fields
// trip -Wmissing-field-initializers).
struct Change {
  SeriesChange c;
  Change& Rate(double v) {
    c.learning_rate = v;
    return *this;
  }
  Change& StepsPerBatch(uint32_t v) {
    c.steps_per_batch = v;
    return *this;
  }
  Change& Mode(DescentMode v) {
    c.mode = v;
    return *this;
  }
  Change& M(double v) {
    c.m = v;
    return *this;
  }
  Change& B(double v) {
    c.b = v;
    return *this;
  }
  operator SeriesChange() const { return c; }  // NOLINT(google-explicit-constructor)
};

inline StepOptions Opts(std::optional<double> rate, std::optional<double> tolerance,
                        std::optional<DescentMode> mode = std::nullopt) {
  StepOptions o;
  o.learning_rate = rate;
  o.tolerance = tolerance;
  o.mode = mode;
  return o;
}

}  // namespace gradientd::core
