// Google Benchmark micro-benchmarks of the core and the frame codec.
// Build with -DGRADIENTD_BUILD_BENCHMARKS=ON; run build/tools/bench/core_bench.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "core/point_stats.h"
#include "core/series.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace gradientd {
namespace {

struct Points {
  std::vector<double> x, y;
};

Points MakePoints(std::size_t n) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> noise(0, 3);
  Points p;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = 1.7e9 + static_cast<double>(i);
    p.x.push_back(x);
    p.y.push_back(2.5 * (x - 1.7e9) + 40 + noise(rng));
  }
  return p;
}

void BM_Absorb(benchmark::State& state) {
  const Points p = MakePoints(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::PointStats::FromPoints(p.x, p.y));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Absorb)->Arg(8192)->Arg(1 << 20);

void BM_AbsorbClientPoints(benchmark::State& state) {
  const Points p = MakePoints(static_cast<std::size_t>(state.range(0)));
  core::PointStats stats;
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::PointStats::FromClientPoints(p.x, p.y, &stats).ok());
    benchmark::DoNotOptimize(stats);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AbsorbClientPoints)->Arg(8192);

void BM_Validate(benchmark::State& state) {
  const Points p = MakePoints(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::ValidatePoints(p.x, p.y).ok());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Validate)->Arg(8192);

void BM_Merge(benchmark::State& state) {
  const Points p = MakePoints(1000);
  const core::PointStats a =
      core::PointStats::FromPoints(std::span(p.x).first(500), std::span(p.y).first(500));
  const core::PointStats b =
      core::PointStats::FromPoints(std::span(p.x).last(500), std::span(p.y).last(500));
  for (auto _ : state) {
    core::PointStats s = a;
    s.Merge(b);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Merge);

void BM_GradientAt(benchmark::State& state) {
  const Points p = MakePoints(1 << 16);
  const core::PointStats s = core::PointStats::FromPoints(p.x, p.y);
  double m = 2.0, b = 1.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(s.GradientAt(m, b));
  }
}
BENCHMARK(BM_GradientAt);

void BM_DescentStep(benchmark::State& state) {
  const Points p = MakePoints(1 << 16);
  core::Series series;
  uint64_t steps = 0;
  (void)series.Absorb(core::PointStats::FromPoints(p.x, p.y), &steps);
  const uint64_t per_call = 1000;
  for (auto _ : state) {
    core::StepResult result;
    benchmark::DoNotOptimize(series.Step(per_call, std::nullopt, std::nullopt, &result));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(per_call));
}
BENCHMARK(BM_DescentStep);

void BM_FrameDecode(benchmark::State& state) {
  const Points p = MakePoints(8192);
  v1::Request request;
  for (std::size_t i = 0; i < p.x.size(); ++i) {
    request.mutable_ingest()->add_x(p.x[i]);
    request.mutable_ingest()->add_y(p.y[i]);
  }
  std::string frame;
  protocol::AppendFrame(request, &frame);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(frame.data()),
                                       frame.size());
  v1::Request decoded;
  for (auto _ : state) {
    const auto h = protocol::DecodeFrameHeader(bytes, 1 << 24);
    decoded.ParseFromArray(bytes.data() + h.header_bytes, static_cast<int>(h.body_bytes));
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
}
BENCHMARK(BM_FrameDecode);

}  // namespace
}  // namespace gradientd

BENCHMARK_MAIN();
