#!/usr/bin/env bash
# `make bench`: runs every Google Benchmark binary (medians of 5 repetitions, JSON
# kept in BUILD/bench-results/) and prints throughput and the ratios the targets are
# stated in; then the HTTP load benchmark (bench/load_http.sh: spillwayd under curl and
# h2load beside iperf3 and nghttpd, about 2-3 minutes), then the gRPC-hop benchmark
# (bench/load_grpc.sh: a 1 GiB upload into a gRPC discard consumer beside --sink=discard,
# about 1 minute). Usage: bench/run.sh BUILD_DIR
# BENCH_LOAD=0 skips both load parts.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
out=$build/bench-results
mkdir -p "$out"
reps=${BENCH_REPETITIONS:-5}

for bin in "$build"/bench/*_bench; do
  name=$(basename "$bin")
  echo "== $name (median of $reps)" >&2
  "$bin" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
    --benchmark_format=json --benchmark_out="$out/$name.json" \
    --benchmark_out_format=json >/dev/null
done
/usr/bin/python3 "$here/report.py" "$out"/*.json

if [[ "${BENCH_LOAD:-1}" != 0 ]]; then
  echo "== load_http.sh (HTTP load against spillwayd --sink=discard)" >&2
  bash "$here/load_http.sh" "$build"
  echo "== load_grpc.sh (1 GiB upload: gRPC discard consumer vs --sink=discard)" >&2
  bash "$here/load_grpc.sh" "$build"
fi
