// LivePoints::Observe as the ingest threads call it: each thread its own
// series, 8,192-point batches. "tracked": every thread's series has a
// sample (the reservoir's work plus the locks); "untracked": all 64 slots
// are taken by others (the lookup and the locks alone, the case of a
// server with 10^6 series).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "http/live_points.h"

namespace {

using gradientd::http::LivePoints;

gradientd::v1::PointBatch MakeBatch() {
  gradientd::v1::PointBatch batch;
  for (int i = 0; i < 8192; ++i) {
    batch.add_x(i);
    batch.add_y(2.0 * i + 1);
  }
  return batch;
}

void BM_Observe(benchmark::State& state) {
  const bool untracked = state.range(0) == 1;
  static std::unique_ptr<LivePoints> points;
  if (state.thread_index() == 0) {
    points = std::make_unique<LivePoints>();
    if (untracked) {
      for (int i = 0; i < 64; ++i) points->Observe("other-" + std::to_string(i), MakeBatch());
    }
  }
  const gradientd::v1::PointBatch batch = MakeBatch();
  const std::string series = "series-" + std::to_string(state.thread_index());
  for (auto _ : state) points->Observe(series, batch);
  state.SetItemsProcessed(state.iterations() * batch.x_size());
}
BENCHMARK(BM_Observe)->ArgName("untracked")->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
