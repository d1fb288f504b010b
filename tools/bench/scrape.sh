#!/usr/bin/env bash
# Does a Prometheus scraping /metrics once a second cost ingest or query
# latency? Runs [A]-like benches (BENCHMARKS.md: 2 producers, 8192-point
# batches, window 8, the baselines) without and with `--scrape-interval 1s`,
# and prints a table of each mode's median and range.
#
#   bash tools/bench/scrape.sh
#
# 1. Builds Release into build-bench/ ($BUILD_DIR), unless $GRADCTL names a
#    gradctl to use (its gradientd is the one next to it).
# 2. $BENCH_RUNS (3) rounds of two `gradctl bench --spawn-server --json`
#    runs of $INGEST_SECONDS (10) s each, one without scraping and one with
#    --scrape-interval $SCRAPE_INTERVAL (1s), interleaved and in alternate
#    order (off-on, on-off, ...) so that drift of the machine hits both.
# 3. The table: ingest M points/s, query p99 idle and under ingest, for each
#    mode (median, and min-max over the runs), and the scrape figures (done,
#    failed, duration p50/p99, bytes a scrape).
#
# The JSON of each run and summary.md go to $RESULTS_DIR (build-bench/scrape/).
# Bounded: each run at most 600 s (timeout); about 2*BENCH_RUNS*(2*S+3) s in
# all, 2.5 minutes with the defaults, plus the build. Run it on an otherwise
# idle machine: it reports the load average before and after, and every
# figure depends on it. A failed scrape fails the script (exit 1) after the
# table.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
results=${RESULTS_DIR:-$build/scrape}
ingest_seconds=${INGEST_SECONDS:-10}
bench_runs=${BENCH_RUNS:-3}
scrape_interval=${SCRAPE_INTERVAL:-1s}

log() { echo "scrape: $(date +%T) $*" >&2; }

mkdir -p "$results"
rm -f "$results"/*.json "$results"/summary.md "$results"/load.txt

if [[ -n ${GRADCTL:-} ]]; then
  gradctl=$GRADCTL
else
  log "building Release into $build"
  bash "$root/tools/install-deps.sh"
  build_log=$(mktemp "${TMPDIR:-/tmp}/gradientd-scrape-build.XXXXXX")
  if ! { cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGRADIENTD_BUILD_TESTS=OFF && cmake --build "$build" --target gradientd gradctl; } \
    >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    echo "scrape: the build failed" >&2
    exit 1
  fi
  rm -f "$build_log"
  gradctl=$build/tools/gradctl
fi

echo "before $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/load.txt"
# bench_run MODE RUN: one run, its JSON into MODE_RUN.json.
bench_run() {
  local mode=$1 run=$2 scrape=()
  [[ $mode == on ]] && scrape=(--scrape-interval "$scrape_interval")
  log "run $run of $bench_runs, scraping $mode (load $(cut -d' ' -f1 /proc/loadavg))"
  timeout 600 "$gradctl" bench --spawn-server --json --producers 2 --batch 8192 --window 8 \
    --seconds "$ingest_seconds" "${scrape[@]}" >"$results/${mode}_$run.json"
}
for ((run = 1; run <= bench_runs; run++)); do
  if ((run % 2 == 1)); then
    bench_run off "$run"
    bench_run on "$run"
  else
    bench_run on "$run"
    bench_run off "$run"
  fi
done
echo "after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/load.txt"

python3 - "$results" "$bench_runs" "$scrape_interval" <<'PY' | tee "$results/summary.md"
import json, statistics, sys
results, runs, interval = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = {m: [json.load(open(f"{results}/{m}_{r}.json")) for r in range(1, runs + 1)]
        for m in ("off", "on")}

def cell(mode, key, scale=1.0, digits=1):
    values = [j[key] * scale for j in data[mode] if j.get(key) is not None]
    if not values:
        return "-"
    f = f"{{:.{digits}f}}"
    return f"{f.format(statistics.median(values))} ({f.format(min(values))}-{f.format(max(values))})"

print(f"| scraping | ingest M points/s | query p99 idle (µs) | query p99 under ingest (µs) |")
print("| --- | ---: | ---: | ---: |")
for mode, name in (("off", "none"), ("on", f"every {interval}")):
    print(f"| {name} | {cell(mode, 'points_per_second', 1e-6, 2)} | "
          f"{cell(mode, 'idle_query_p99_us')} | {cell(mode, 'query_p99_us')} |")
print()
print("| scrapes a run | failed (all runs) | scrape p50 (µs) | scrape p99 (µs) | bytes a scrape |")
print("| ---: | ---: | ---: | ---: | ---: |")
failed = sum(j["scrapes_failed"] for j in data["on"])
print(f"| {cell('on', 'scrapes', digits=0)} | {failed} | {cell('on', 'scrape_p50_us')} | "
      f"{cell('on', 'scrape_p99_us')} | {cell('on', 'scrape_bytes_per_scrape', digits=0)} |")
print()
print(f"Median (min-max) of {runs} runs each, interleaved; load average "
      + "; ".join(open(f"{results}/load.txt").read().split("\n")[:2]) + ".")
errors = {j["scrape_first_error"] for j in data["on"] if j["scrapes_failed"]}
for e in sorted(errors):
    print(f"First failure: {e}")
sys.exit(1 if failed else 0)
PY
