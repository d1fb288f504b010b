// CorrectlyRoundedExp2: 2^x rounded to the nearest double, by MPFR. libm's
// exp2 is not correctly rounded (glibc 2.36 differs from the nearest double
// for about 1 argument in 1,000 in [-1000, 0]), so two machines with other
// libm versions could compute different decay factors; this gives the same
// bits everywhere, which every node of a cluster needs. About 1.2 us a call
// (BENCHMARKS.md).
#pragma once

namespace gradientd::core {

// Exact for results of at least 2^-1022 (normal doubles); a subnormal
// result is rounded twice (still the same on every machine).
double CorrectlyRoundedExp2(double x);

}  // namespace gradientd::core
