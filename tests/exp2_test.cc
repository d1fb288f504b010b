// CorrectlyRoundedExp2 (core/exp2.h): exact at the integers and at ±1/2,
// and, over many random arguments, the double nearest to an independent
// 64-bit-mantissa exp2l wherever that one is far enough from a tie to say.
#include "core/exp2.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace gradientd::core {
namespace {

TEST(CorrectlyRoundedExp2Test, IsExactWhereTheAnswerIsADouble) {
  for (int k = -1022; k <= 1023; ++k) {
    ASSERT_EQ(CorrectlyRoundedExp2(k), std::ldexp(1.0, k)) << k;
  }
  // sqrt is correctly rounded (IEEE 754), so these are the nearest doubles.
  EXPECT_EQ(CorrectlyRoundedExp2(-0.5), std::sqrt(0.5));
  EXPECT_EQ(CorrectlyRoundedExp2(0.5), std::sqrt(2.0));
  EXPECT_EQ(CorrectlyRoundedExp2(-1100), 0.0);
}

TEST(CorrectlyRoundedExp2Test, IsTheNearestDoubleToALongDoubleReference) {
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<double> age(-1000, 0);
  int decided = 0, libm_differs = 0;
  for (int i = 0; i < 200'000; ++i) {
    const double x = age(rng);
    const double ours = CorrectlyRoundedExp2(x);
    const long double reference = std::exp2l(static_cast<long double>(x));
    // The doubles around the reference and the midpoints between them
    // (exact in long double, which has 11 more bits).
    const double nearest = static_cast<double>(reference);
    const long double below =
        (static_cast<long double>(nearest) + std::nextafter(nearest, 0.0)) / 2;
    const long double above =
        (static_cast<long double>(nearest) + std::nextafter(nearest, 2.0)) / 2;
    const long double ulp = std::nextafterl(reference, 2.0L) - reference;
    if (std::fabs(reference - below) <= 8 * ulp || std::fabs(reference - above) <= 8 * ulp) {
      continue;  // too near a tie for this reference to decide
    }
    ++decided;
    ASSERT_EQ(ours, nearest) << "2^" << x;
    if (std::exp2(x) != ours) ++libm_differs;
  }
  EXPECT_GT(decided, 195'000);  // about 0.8% fall within 8 ulp of a tie
  RecordProperty("libm_exp2_differs", libm_differs);
}

}  // namespace
}  // namespace gradientd::core
