#!/usr/bin/env bash
# Reruns the whole performance comparison of BENCHMARKS.md on this machine
# and prints a table of the figures.
#
#   bash tools/bench/compare.sh
#
# 1. Builds Release with the benchmarks into build-bench/ ($BUILD_DIR).
# 2. core_bench and lesson_loop_bench (Google Benchmark).
# 3. gradctl bench --spawn-server --json: 2 producers, 8192-point batches,
#    $INGEST_SECONDS s (10), with the discard and echo baselines; $BENCH_RUNS
#    (3) runs, the table shows each figure's median and range. Then one
#    run with --tcp-congestion reno, and one with gradctl on CPU 0 and
#    gradientd on CPU 1 (taskset).
# 4. Memory: the server's RSS as ingest passes 10^6 ... $RSS_POINTS points
#    (10^9), and the RSS of $SERIES_COUNT (10^6) one-point series.
# 5. The same CSV points (10^6, then 10^7; x uniform in [0, 10),
#    y = 2x + 1 + N(0, 0.5), seed 42) into gradientd with `gradctl produce`
#    and into PostgreSQL with COPY (psql's \copy), then the gradient queries
#    on both. PostgreSQL is Debian's package (installed if missing), run as
#    the postgres user on a private data directory and unix socket under a
#    temporary directory, stopped and deleted at the end.
#
# Everything is written to $RESULTS_DIR (build-bench/compare/): the JSON of
# each run, the CSV-free PostgreSQL timings, and summary.md, the table.
# Bounded: about 5-10 minutes on a 2-core machine (plus the build, if it has
# to be done). Run it on an otherwise idle machine: it reports the load
# average before and after, and every figure depends on it.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
results=${RESULTS_DIR:-$build/compare}
ingest_seconds=${INGEST_SECONDS:-10}
rss_points=${RSS_POINTS:-1000000000}
series_count=${SERIES_COUNT:-1000000}
pg_port=${PG_PORT:-54329}
query_runs=${QUERY_RUNS:-7}  # each PostgreSQL query: one warm-up, then the median of these
bench_runs=${BENCH_RUNS:-3}  # gradctl bench runs and Google Benchmark repetitions: medians

log() { echo "compare: $(date +%T) $*" >&2; }
# note_load STAGE: the 1-minute load average as STAGE starts, for the table.
note_load() { echo "load_$1 $(cut -d' ' -f1 /proc/loadavg)" >>"$results/machine.txt"; }
limit() { timeout "$@"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradientd-compare.XXXXXX")
chmod 755 "$tmp"
server_pid=""
pg_data=""
pg_bin=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_data && -f $pg_data/postmaster.pid ]]; then
    su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data' -m immediate -w stop" \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$results"
rm -f "$results"/*.json "$results"/*.txt "$results"/summary.md

# --- Machine. -------------------------------------------------------------------
{
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "cores $(nproc)"
  echo "memory_gib $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
  echo "os $(. /etc/os-release && echo "$PRETTY_NAME") (Debian $(cat /etc/debian_version))"
  echo "kernel $(uname -r)"
  # Loopback throughput depends on these: BBR paces every flow, loopback too.
  echo "tcp_congestion_control $(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)"
  echo "compiler $(c++ --version | head -n 1)"
  echo "source $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo ' + uncommitted changes')"
  echo "load_before $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results/machine.txt"
cat "$results/machine.txt" >&2

# --- Build. ---------------------------------------------------------------------
log "installing what is missing (build dependencies, postgresql)"
bash "$root/tools/install-deps.sh"
if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed"; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
log "building Release with benchmarks into $build"
if ! { cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGRADIENTD_BUILD_BENCHMARKS=ON -DGRADIENTD_BUILD_TESTS=OFF &&
  cmake --build "$build" --target gradientd gradctl core_bench lesson_loop_bench; } \
  >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  echo "compare: the build failed" >&2
  exit 1
fi
gradctl=$build/tools/gradctl
gradientd=$build/tools/gradientd

# --- Micro-benchmarks. ----------------------------------------------------------
log "core_bench"
note_load core_bench
# Repetitions: the medians go into the table.
gbench_flags=(--benchmark_repetitions="$bench_runs" --benchmark_report_aggregates_only=true
  --benchmark_out_format=json)
limit 600 "$build/tools/bench/core_bench" "${gbench_flags[@]}" \
  --benchmark_out="$results/core_bench.json" >&2
log "lesson_loop_bench"
note_load lesson_loop_bench
limit 600 "$build/tools/bench/lesson_loop_bench" "${gbench_flags[@]}" \
  --benchmark_out="$results/lesson_loop_bench.json" >&2

# --- gradctl bench. -------------------------------------------------------------
for ((run = 1; run <= bench_runs; run++)); do
  log "gradctl bench ($run of $bench_runs): 2 producers, 8192-point batches, ${ingest_seconds} s, baselines"
  note_load "bench_$run"
  limit 600 "$gradctl" bench --spawn-server --json --producers 2 --batch 8192 \
    --seconds "$ingest_seconds" >"$results/bench_$run.json"
done
# The same run with the producers' flows unpaced (bbr paces every flow;
# reno, which any program may choose, does not).
log "gradctl bench --tcp-congestion reno: ${ingest_seconds} s, baselines"
note_load bench_reno
limit 600 "$gradctl" --tcp-congestion reno bench --spawn-server --json --producers 2 --batch 8192 \
  --seconds "$ingest_seconds" >"$results/bench_reno.json"
# The same ingest with the server on a core of its own: what one core of
# gradientd absorbs when it does not share it with the producers.
if (($(nproc) >= 2)); then
  log "gradctl bench: gradctl on CPU 0, gradientd on CPU 1, ${ingest_seconds} s"
  note_load bench_pinned
  printf '#!/bin/sh\nexec taskset -c 1 "%s" "$@"\n' "$gradientd" >"$tmp/gradientd-on-cpu1"
  chmod 755 "$tmp/gradientd-on-cpu1"
  limit 600 taskset -c 0 "$gradctl" bench --spawn-server --server-binary "$tmp/gradientd-on-cpu1" \
    --json --no-baseline --producers 2 --batch 8192 --seconds "$ingest_seconds" \
    >"$results/bench_pinned.json"
fi
log "memory: RSS while ingesting up to $rss_points points (at most 120 s)"
limit 600 "$gradctl" bench --spawn-server --json --no-baseline --idle-seconds 0 \
  --points "$rss_points" --seconds 120 >"$results/bench_rss.json"
log "memory: $series_count series of one point"
limit 600 "$gradctl" bench --spawn-server --json --no-baseline --idle-seconds 0 --seconds 0 \
  --series-count "$series_count" >"$results/bench_series.json"

# --- The same CSV points into gradientd and PostgreSQL. ------------------------
log "generating 10^7 points as CSV"
note_load csv
awk 'BEGIN {
  srand(42)
  for (i = 0; i < 10000000; i++) {
    x = 10 * rand()
    u = rand(); if (u < 1e-300) u = 1e-300
    z = sqrt(-2 * log(u)) * cos(6.283185307179586 * rand())
    printf "%.17g,%.17g\n", x, 2 * x + 1 + 0.5 * z
  }
}' >"$tmp/points_1e7.csv"
head -n 1000000 "$tmp/points_1e7.csv" >"$tmp/points_1e6.csv"

# gradientd: a fresh in-memory server; produce each file into its own series,
# then measure the gradient query's latency on it.
"$gradientd" --listen 127.0.0.1:0 --in-memory >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
server=""
for _ in $(seq 1 300); do
  server=$(sed -n 's/^gradientd listening on \(.*\)$/\1/p' "$tmp/server.out" | head -n 1)
  [[ -n $server ]] && break
  sleep 0.1
done
[[ -n $server ]] || { echo "compare: gradientd did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
for size in 1e6 1e7; do
  log "gradctl produce points_$size.csv"
  limit 600 "$gradctl" --server "$server" --series "csv_$size" --json produce --no-header \
    "$tmp/points_$size.csv" | tail -n 1 >"$results/produce_$size.json"
  log "gradctl bench: query latency on csv_$size"
  limit 120 "$gradctl" --server "$server" --series "csv_$size" bench --json --seconds 0 \
    --idle-seconds 3 --no-baseline >"$results/query_$size.json"
  # The answer itself, to compare with PostgreSQL's.
  limit 60 "$gradctl" --server "$server" --series "csv_$size" --json gradient --m 2 --b 1 \
    >"$results/gradient_$size.json"
done
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

# PostgreSQL.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_data=$tmp/pgdata
chown postgres "$tmp"
log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'): initdb, start on $tmp:$pg_port"
su postgres -s /bin/sh -c "'$pg_bin/initdb' -D '$pg_data' -A trust -U postgres -E UTF8 \
  --no-locale" >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data' -l '$tmp/postgres.log' -w \
  -o \"-p $pg_port -k '$tmp' -c listen_addresses=''\" start" >/dev/null
psql_cmd=(env "PGOPTIONS=-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$pg_port" -U postgres -d postgres)
seconds_now() { date +%s.%N; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# pg_query NAME SQL: one warm-up, then the median of $query_runs runs (ms,
# psql's \timing: the server's execution plus the local round trip).
pg_query() {
  local args=(-c '\timing on') i
  for ((i = 0; i <= query_runs; i++)); do args+=(-c "$2"); done
  "${psql_cmd[@]}" -At "${args[@]}" >"$tmp/query.out"
  grep '^Time: ' "$tmp/query.out" | tail -n +2 | awk '{print $2}' | median
}
queries=(
  "regr|SELECT regr_slope(y, x), regr_intercept(y, x) FROM points"
  "gradient_b|SELECT -2.0 / count(*) * sum(y - (2.0 * x + 1.0)) FROM points"
  "gradient_both|SELECT -2.0 / count(*) * sum(y - (2.0 * x + 1.0)), -2.0 / count(*) * sum(x * (y - (2.0 * x + 1.0))) FROM points"
)
: >"$results/postgres.txt"
echo "version $("$pg_bin/postgres" --version | awk '{print $3}')" >>"$results/postgres.txt"
note_load postgres
for size in 1e6 1e7; do
  "${psql_cmd[@]}" -c "DROP TABLE IF EXISTS points; CREATE TABLE points (x double precision, y double precision)"
  log "PostgreSQL: COPY points_$size.csv"
  t0=$(seconds_now)
  "${psql_cmd[@]}" -c "\\copy points FROM '$tmp/points_$size.csv' (FORMAT csv)"
  t1=$(seconds_now)
  # Not timed as ingest, reported apart: what a user runs after a bulk load
  # (statistics, visibility map, hint bits), so that the queries below do
  # not pay for it.
  t2=$(seconds_now)
  "${psql_cmd[@]}" -c "VACUUM (ANALYZE) points"
  t3=$(seconds_now)
  echo "vacuum_seconds_$size $(awk -v a="$t2" -v b="$t3" 'BEGIN {printf "%.3f", b - a}')" \
    >>"$results/postgres.txt"
  rows=$("${psql_cmd[@]}" -At -c "SELECT count(*) FROM points")
  echo "copy_seconds_$size $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
    >>"$results/postgres.txt"
  echo "rows_$size $rows" >>"$results/postgres.txt"
  for q in "${queries[@]}"; do
    log "PostgreSQL: ${q%%|*} on $size rows"
    echo "query_ms_${q%%|*}_$size $(pg_query "${q%%|*}" "${q#*|}")" >>"$results/postgres.txt"
    echo "answer_${q%%|*}_$size $(grep -v '^Time: ' "$tmp/query.out" | head -n 1)" \
      >>"$results/postgres.txt"
  done
done
su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data' -m fast -w stop" >/dev/null
pg_data=""
echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"

# --- The table. -----------------------------------------------------------------
python3 - "$results" <<'EOF' | tee "$results/summary.md"
import json, os, sys
d = sys.argv[1]
def load(name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)
def kv(name):
    out = {}
    with open(os.path.join(d, name)) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            out[k] = v
    return out
def gbench(name):
    # The medians of the repetitions (or the single run).
    out = {}
    for b in load(name)["benchmarks"]:
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                out[b["run_name"]] = b
        else:
            out.setdefault(b["name"], b)
    return out
def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
def ns(b, kind="real_time"):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
    return b[kind] * scale
def wall_cpu(b):
    # Wall-clock and CPU time per iteration; they differ when the machine is
    # busy with other work (Google Benchmark's rates use CPU time).
    w, c = ns(b), ns(b, "cpu_time")
    if w > 1e5:
        return f"{fmt(w / 1e6, 3)} ms wall, {fmt(c / 1e6, 3)} ms CPU"
    return f"{fmt(w, 1)} ns wall, {fmt(c, 1)} ns CPU"
def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:,.{digits}f}"

machine = kv("machine.txt")
runs = []
i = 1
while os.path.exists(os.path.join(d, f"bench_{i}.json")):
    runs.append(load(f"bench_{i}.json"))
    i += 1
def M(key):
    return median([r[key] for r in runs])
def R_of(v, digits=1):
    return f"{fmt(median(v), digits)} ({fmt(min(v), digits)}-{fmt(max(v), digits)})"
def R(key, scale=1.0, digits=1):
    return R_of([r[key] * scale for r in runs], digits)
rss = load("bench_rss.json")
series = load("bench_series.json")
core = gbench("core_bench.json")
lesson = gbench("lesson_loop_bench.json")
pg = kv("postgres.txt")

rows = []
def row(what, value, target=""):
    rows.append((what, value, target))

row(f"ingest, 2 producers x 8192-point batches: M points/s, median (range) of {len(runs)} runs",
    R("points_per_second", 1e-6, 2))
row("ingest payload MB/s (16 bytes a point); acknowledged batches/s",
    f"{R('payload_bytes_per_second', 1e-6)}; {R('batches_per_second', 1, 0)}")
row("discard baseline (same producers, same bytes): MB/s on the wire",
    R("baseline_discard_bytes_per_second", 1e-6))
row("ingest / discard (wire bytes), %", R("ingest_fraction_of_discard", 100), ">= 50 %")
row("ingest per 0.5 s window: p10 / p50 / p90 M points/s (median over the runs)",
    " / ".join(fmt(M(f"ingest_window_{q}_points_per_second") * 1e-6) for q in ("p10", "p50", "p90")))
row("server CPU per point during ingest, ns",
    R_of([r["server_cpu_seconds_ingest"] / r["points_acknowledged"] * 1e9 for r in runs], 2))
reno = load("bench_reno.json")
row("with --tcp-congestion reno (one run): ingest M points/s; discard MB/s; ingest / discard %",
    f"{fmt(reno['points_per_second'] * 1e-6, 2)}; {fmt(reno['baseline_discard_bytes_per_second'] * 1e-6)}; "
    f"{fmt(reno['ingest_fraction_of_discard'] * 100)}")
if os.path.exists(os.path.join(d, "bench_pinned.json")):
    pinned = load("bench_pinned.json")
    row("ingest with gradctl on CPU 0, gradientd on CPU 1: M points/s; server cores",
        f"{fmt(pinned['points_per_second'] * 1e-6, 2)}; "
        f"{pinned['server_cpu_seconds_ingest'] / pinned['ingest_seconds']:.2f}")
row("query round trip idle: p50 / p99 / p99.9 µs",
    f"{R('idle_query_p50_us')} / {R('idle_query_p99_us')} / {R('idle_query_p999_us')}")
row("query round trip under ingest: p50 / p99 / p99.9 µs",
    f"{R('query_p50_us')} / {R('query_p99_us')} / {R('query_p999_us')}", "p99 < 1000 µs")
row("TCP echo round trip idle: p50 / p99 / p99.9 µs",
    f"{R('baseline_echo_p50_us')} / {R('baseline_echo_p99_us')} / {R('baseline_echo_p999_us')}")
row("TCP echo round trip under ingest: p50 / p99 / p99.9 µs",
    f"{R('baseline_echo_under_ingest_p50_us')} / {R('baseline_echo_under_ingest_p99_us')} / "
    f"{R('baseline_echo_under_ingest_p999_us')}")
row("query p50 / echo p50, idle", R("idle_query_p50_over_echo_p50", 1, 2), "<= 1.5x")
row("query p50 / echo p50, under ingest (both probed at the same ticks)",
    R("query_p50_over_echo_p50", 1, 2))
row("CPU during ingest (cores): server; gradctl",
    f"{median([r['server_cpu_seconds_ingest'] / r['ingest_seconds'] for r in runs]):.2f}; "
    f"{median([r['client_cpu_seconds_ingest'] / r['ingest_seconds'] for r in runs]):.2f}")
row("server peak RSS (bench runs), MiB", R("server_peak_rss_bytes", 2**-20))
for threshold, cp in rss.get("server_rss_at_points", {}).items():
    row(f"server RSS at {int(threshold):,} points", f"{fmt(cp['rss_bytes'] / 2**20)} MiB "
        f"(sampled at {cp['points']:,})", "flat within 10 %")
row(f"RSS of {series['series_count']:,} one-point series",
    f"{fmt(series['series_rss_before_bytes'] / 2**20)} -> {fmt(series['series_rss_after_bytes'] / 2**20)} MiB = "
    f"{fmt(series['series_bytes_per_series'], 0)} bytes a series", "<= 1024 bytes")
for name, b in core.items():
    extra = ""
    if "items_per_second" in b:
        extra = f" ({fmt(b['items_per_second'] / 1e6)} M items/s of CPU)"
    if "bytes_per_second" in b:
        extra = f" ({fmt(b['bytes_per_second'] / 1e9, 2)} GB/s of CPU)"
    target = {"BM_GradientAt": "< 50 ns", "BM_Absorb/8192": ">= 300 M points/s",
              "BM_Absorb/1048576": ">= 300 M points/s"}.get(name, "")
    row(f"core_bench {name}", f"{wall_cpu(b)}{extra}", target)
for name, b in lesson.items():
    row(f"lesson_loop_bench {name}", wall_cpu(b))
for size in ("1e6", "1e7"):
    n = int(float(size))
    produce = load(f"produce_{size}.json")
    p = produce.get("summary", produce)
    row(f"CSV ingest {n:,} points: gradctl produce -> gradientd", f"{fmt(p['points_per_second'] / 1e6, 2)} M points/s")
    copy = float(pg[f"copy_seconds_{size}"])
    row(f"CSV ingest {n:,} points: psql \\copy -> PostgreSQL", f"{fmt(n / copy / 1e6, 2)} M points/s ({copy:.2f} s; "
        f"then VACUUM ANALYZE {float(pg[f'vacuum_seconds_{size}']):.2f} s)")
    q = load(f"query_{size}.json")
    row(f"gradient query at {n:,} points: gradientd round trip p50 / p99",
        f"{fmt(q['idle_query_p50_us'])} / {fmt(q['idle_query_p99_us'])} µs")
    for name in ("regr", "gradient_b", "gradient_both"):
        row(f"PostgreSQL {name} at {n:,} points (median)", f"{fmt(float(pg[f'query_ms_{name}_{size}']), 2)} ms")
    g = load(f"gradient_{size}.json")["gradient"]
    pg_db, pg_dm = (float(v) for v in pg[f"answer_gradient_both_{size}"].split("|"))
    row(f"the answer at {n:,} points, (m, b) = (2, 1): dL/db, dL/dm",
        f"gradientd {g['intercept_gradient']:.12g}, {g['slope_gradient']:.12g}; "
        f"PostgreSQL {pg_db:.12g}, {pg_dm:.12g}")

print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; {machine['os']}; "
      f"kernel {machine['kernel']} (TCP congestion control {machine.get('tcp_congestion_control', 'unknown')}); "
      f"{machine['compiler']}; PostgreSQL {pg['version']}")
print(f"Source: {machine.get('source', 'unknown')}")
print(f"Date: {machine['date']}; load average (1, 5, 15 min) before {machine['load_before']}, "
      f"after {machine['load_after']}")
print("1-minute load average as each stage started: " +
      ", ".join(f"{k[5:]} {v}" for k, v in machine.items()
                if k.startswith("load_") and k not in ("load_before", "load_after")))
print()
print("| measurement | result | target |")
print("| --- | --- | --- |")
for what, value, target in rows:
    print(f"| {what} | {value} | {target} |")
EOF
log "done: $results/summary.md"
