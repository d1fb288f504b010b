// The baseline gradientd replaces: the intro lesson's gradient, a loop over
// every stored point for every query (O(N)), next to PointStats::GradientAt
// (O(1)) over the same points.
//
// The loops are tests/lesson_reference.h's literal transcription of the
// lesson's get_gradient_at_b / get_gradient_at_m, the same code the numerics
// tests compare against; built without -ffast-math, as everything here.
//
// Build with -DGRADIENTD_BUILD_BENCHMARKS=ON; run
// build/tools/bench/lesson_loop_bench. The argument is the number of stored
// points (10^6 and 10^7); each iteration is one query.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "core/point_stats.h"
#include "lesson_reference.h"

namespace gradientd {
namespace {

struct Points {
  std::vector<double> x, y;
};

// The same points as `gradctl bench` and tools/bench/compare.sh: x uniform
// in [0, 10), y = 2x + 1 + N(0, 0.5). Generated once per size.
const Points& StoredPoints(std::size_t n) {
  static std::map<std::size_t, Points> cache;
  auto [it, inserted] = cache.try_emplace(n);
  if (inserted) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> uniform(0.0, 10.0);
    std::normal_distribution<double> noise(0.0, 0.5);
    Points& p = it->second;
    p.x.reserve(n);
    p.y.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = uniform(rng);
      p.x.push_back(x);
      p.y.push_back(2.0 * x + 1.0 + noise(rng));
    }
  }
  return it->second;
}

// One query: dL/db at (m, b), the lesson's get_gradient_at_b.
void BM_LessonGradientAtB(benchmark::State& state) {
  const Points& p = StoredPoints(static_cast<std::size_t>(state.range(0)));
  double m = 2.0;
  const double b = 1.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(lesson::get_gradient_at_b(p.x, p.y, m, b));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_LessonGradientAtB)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

// One query: both gradients (what a GradientQuery answers), the lesson's
// get_gradient_at_b then get_gradient_at_m, as its step_gradient calls them.
void BM_LessonGradientBoth(benchmark::State& state) {
  const Points& p = StoredPoints(static_cast<std::size_t>(state.range(0)));
  double m = 2.0;
  const double b = 1.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(lesson::get_gradient_at_b(p.x, p.y, m, b));
    benchmark::DoNotOptimize(lesson::get_gradient_at_m(p.x, p.y, m, b));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_LessonGradientBoth)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

// The same query from the running statistics of the same points.
void BM_PointStatsGradientAt(benchmark::State& state) {
  const Points& p = StoredPoints(static_cast<std::size_t>(state.range(0)));
  const core::PointStats stats = core::PointStats::FromPoints(p.x, p.y);
  double m = 2.0;
  const double b = 1.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(stats.GradientAt(m, b));
  }
}
BENCHMARK(BM_PointStatsGradientAt)->Arg(1'000'000)->Arg(10'000'000);

}  // namespace
}  // namespace gradientd

BENCHMARK_MAIN();
