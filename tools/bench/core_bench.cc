// Google Benchmark micro-benchmarks of the core and the frame codec.
// Build with -DGRADIENTD_BUILD_BENCHMARKS=ON; run build/tools/bench/core_bench.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <new>
#include <optional>
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
  (void)series.Absorb(core::PointStats::FromPoints(p.x, p.y), core::BatchStamp{}, &steps);
  core::StepOptions options;
  options.mode = state.range(0) == 0 ? core::DescentMode::kPlain : core::DescentMode::kStandardized;
  const uint64_t per_call = 1000;
  for (auto _ : state) {
    core::StepResult result;
    benchmark::DoNotOptimize(series.Step(per_call, options, &result));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(per_call));
}
BENCHMARK(BM_DescentStep)->ArgName("standardized")->Arg(0)->Arg(1);

constexpr int64_t kSecond = 1'000'000'000;

// A series with a window of `buckets` one-second buckets (0: none) and a
// one-minute half-life when `decay`.
core::Series SeriesWithViews(uint32_t buckets, bool decay) {
  core::Series series;
  core::SeriesChange change;
  if (buckets > 0) {
    change.window_ns = kSecond * buckets;
    change.window_buckets = buckets;
    change.view = core::View::kWindow;
  }
  if (decay) change.half_life_ns = 60 * kSecond;
  (void)series.Configure(change);
  return series;
}

// The windowed gradient query: the window's ViewStats, then GradientAt,
// with every one of 1,024 buckets holding a batch.
void BM_WindowGradientQuery(benchmark::State& state) {
  const Points p = MakePoints(64);
  const core::PointStats batch = core::PointStats::FromPoints(p.x, p.y);
  core::Series series = SeriesWithViews(1024, false);
  uint64_t steps = 0;
  for (int64_t i = 0; i < 1024; ++i)
    (void)series.Absorb(batch, series.StampFor(i * kSecond), &steps);
  double m = 2.0, b = 1.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m);
    const std::optional<core::ViewStats> view = series.ViewOf(core::View::kWindow);
    benchmark::DoNotOptimize(view->moments.GradientAt(m, b));
  }
}
BENCHMARK(BM_WindowGradientQuery);

// The all-history gradient query through the same view API.
void BM_AllGradientQuery(benchmark::State& state) {
  const Points p = MakePoints(1 << 16);
  core::Series series;
  uint64_t steps = 0;
  (void)series.Absorb(core::PointStats::FromPoints(p.x, p.y), core::BatchStamp{}, &steps);
  double m = 2.0, b = 1.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m);
    const std::optional<core::ViewStats> view = series.ViewOf(core::View::kAll);
    benchmark::DoNotOptimize(view->moments.GradientAt(m, b));
  }
}
BENCHMARK(BM_AllGradientQuery);

// Series::Absorb (with StampFor, as at ingest) of an 8,192-point batch's
// statistics, one batch per second of event time; arg 1: with a 1,024-bucket
// window and decay. /points:1 also computes the statistics from the points,
// the whole of ingest's core work.
void BM_SeriesAbsorb(benchmark::State& state) {
  const bool views = state.range(0) == 1;
  const bool from_points = state.range(1) == 1;
  const Points p = MakePoints(8192);
  const core::PointStats batch = core::PointStats::FromPoints(p.x, p.y);
  core::Series series = SeriesWithViews(views ? 1024 : 0, views);
  int64_t t = 0;
  uint64_t steps = 0;
  for (auto _ : state) {
    core::PointStats stats = batch;
    if (from_points) benchmark::DoNotOptimize(core::PointStats::FromClientPoints(p.x, p.y, &stats));
    benchmark::DoNotOptimize(series.Absorb(stats, series.StampFor(t), &steps));
    t += kSecond;
  }
  state.SetItemsProcessed(state.iterations() * 8192);
}
BENCHMARK(BM_SeriesAbsorb)
    ->ArgNames({"views", "points"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1});

// Bytes per series: sizeof(Series) and its heap, counted by the global
// operator new below, without and with a 1,024-bucket window (and decay).
std::size_t g_heap_bytes = 0;

void BM_SeriesMemory(benchmark::State& state) {
  const uint32_t buckets = static_cast<uint32_t>(state.range(0));
  std::size_t heap = 0;
  for (auto _ : state) {
    const std::size_t before = g_heap_bytes;
    core::Series series = SeriesWithViews(buckets, buckets > 0);
    heap = g_heap_bytes - before;
    benchmark::DoNotOptimize(series);
  }
  state.counters["sizeof_series"] = static_cast<double>(sizeof(core::Series));
  state.counters["heap_bytes"] = static_cast<double>(heap);
}
BENCHMARK(BM_SeriesMemory)->ArgName("buckets")->Arg(0)->Arg(60)->Arg(1024);

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

// Counts the bytes allocated (never decremented: BM_SeriesMemory takes the
// difference around one construction).
void* operator new(std::size_t size) {
  gradientd::g_heap_bytes += size;
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

BENCHMARK_MAIN();
