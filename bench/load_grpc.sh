#!/usr/bin/env bash
# Benchmark of issue 4 section 4: the cost of the gRPC hop. One raw body of
# LOAD_GRPC_MIB (1 GiB) is uploaded (stream mode: over MAX_BODY_SIZE) over HTTP/1.1
# (curl -T) and HTTP/2 (h2load -n1, prior knowledge) on loopback
#   (a) into `spillwayd --sink=discard`, and
#   (b) into spillwayd with no sink and bench/grpc_discard_consumer attached
#       (LOAD_GRPC_STREAMS Consume streams, default 4; pulls every Chunk, replies 200),
# both with --file-upload-checksum=none --access-log=false. Every figure is the median of
# LOAD_RUNS runs (default 3), the scenarios interleaved run by run. Each upload gets a
# fresh spillwayd, so its VmHWM after the upload minus its VmHWM when idle (consumer
# attached, before the upload) is that upload's peak RSS growth. CPU figures are
# utime+stime (all threads) of the server and of the consumer over the upload, and of
# the client (curl or h2load) over its life: on a small, shared machine the MB/s depend
# on the load, the CPU seconds per upload much less.
# Prints MB/s per scenario, the ratio gRPC-hop / discard (target >= 0.60) and the peak
# RSS above idle (target < 64 MiB); and, as info, the HTTP/1.1 pair again with
# --stream-body-chunk-size=1Mi (part of the hop's cost is per Chunk).
# Usage: bench/load_grpc.sh [BUILD_DIR]   (default: build)
# Knobs: LOAD_RUNS (3), LOAD_GRPC_MIB (1024), LOAD_GRPC_STREAMS (4),
#        LOAD_EVENT_LOOPS (0 = cores), LOAD_GRPC_RESULTS_OUT (copy of the raw results).
set -euo pipefail

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
helper="$here/load_helper.py"
runs=${LOAD_RUNS:-3}
big_mib=${LOAD_GRPC_MIB:-1024}
streams=${LOAD_GRPC_STREAMS:-4}
event_loops=${LOAD_EVENT_LOOPS:-0}
client_timeout=120

bin="$build/server/spillwayd"
consumer_bin="$build/bench/grpc_discard_consumer"
load_name=load_grpc
source "$here/load_lib.sh"
require "$bin" "$consumer_bin" curl h2load

# The body lives in RAM (/dev/shm) so the client never waits on a disk.
work=$(mktemp -d /dev/shm/spillway-load-grpc.XXXXXX)
scratch_dirs+=("$work")

# Private copies: a concurrent rebuild of BUILD_DIR cannot swap a binary mid-run.
cp "$bin" "$work/spillwayd"
cp "$consumer_bin" "$work/grpc_discard_consumer"
results="$work/results"
: >"$results"
metric() {  # name: its value from /metrics, or empty
  curl -sf "http://127.0.0.1:$port/metrics" 2>/dev/null |
    awk -v n="$1" '$1 == n { print $2; exit }' || true
}

srv_pid="" port="" grpc_port=""
start_spillwayd() {
  "$work/spillwayd" --listen-address=127.0.0.1 --http-port=0 --grpc-port=0 \
    --file-upload-checksum=none --access-log=false --event-loops="$event_loops" "$@" \
    >"$work/srv.out" 2>"$work/srv.err" &
  srv_pid=$!
  pids+=("$srv_pid")
  port="" grpc_port=""
  local i line
  for i in $(seq 200); do
    line=$(grep -m1 '"event":"listening"' "$work/srv.out" 2>/dev/null || true)
    if [[ -n $line ]]; then
      port=$(grep -o '"http_port":[0-9]*' <<<"$line" | cut -d: -f2)
      grpc_port=$(grep -o '"grpc_port":[0-9]*' <<<"$line" | cut -d: -f2)
      break
    fi
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.05
  done
  local healthy=""
  if [[ -n $port && -n $grpc_port ]]; then
    for i in $(seq 40); do
      curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && { healthy=1; break; }
      sleep 0.05
    done
  fi
  if [[ -z $healthy ]]; then
    echo "load_grpc: spillwayd did not start:" >&2
    cat "$work/srv.out" "$work/srv.err" >&2
    exit 1
  fi
}

cons_pid=""
start_consumer() {
  "$work/grpc_discard_consumer" --target="127.0.0.1:$grpc_port" --streams="$streams" \
    >"$work/cons.out" 2>"$work/cons.err" &
  cons_pid=$!
  pids+=("$cons_pid")
  local i
  for i in $(seq 200); do
    [[ $(metric spillway_grpc_consumers_attached) == "$streams" ]] && return 0
    kill -0 "$cons_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "load_grpc: the consumer did not attach $streams streams:" >&2
  cat "$work/cons.err" >&2
  exit 1
}

# One upload of the big body; records mbps, failed, server CPU, consumer CPU and the
# server's VmHWM growth over its idle value.
upload() {  # scen proto(h1|h2)
  local scen=$1 proto=$2
  local t0 t1 h0 h1 c0=0 c1=0 _ secs="" code=""
  rm -f "$work/client_cpu"
  sleep 0.2  # let start-up settle before the idle reading
  read -r t0 h0 < <(proc_read "$srv_pid")
  [[ -n $cons_pid ]] && read -r c0 _ < <(proc_read "$cons_pid")
  # The client runs in the background and is waited for, so that a signal reaches the
  # traps at once (and the client is killed with the rest).
  local client
  if [[ $proto == h1 ]]; then
    cpu_run "$work/client_cpu" timeout "$client_timeout" curl -sS -o "$work/resp" \
      -w '%{http_code} %{time_total}' -T "$big" -X POST \
      -H 'content-type: application/octet-stream' "http://127.0.0.1:$port/raw" \
      >"$work/curl.out" 2>&1 &
    client=$!
    pids+=("$client")
    wait "$client" || true
    forget_pid "$client"
    read -r code secs <"$work/curl.out" || true
  else
    rm -f "$work/h2load.log"
    cpu_run "$work/client_cpu" timeout "$client_timeout" h2load -n1 -c1 -m1 \
      --log-file="$work/h2load.log" -d "$big" -H 'content-type: application/octet-stream' \
      "http://127.0.0.1:$port/raw" >"$work/h2load.out" 2>&1 &
    client=$!
    pids+=("$client")
    wait "$client" || true
    forget_pid "$client"
    # log line: start_us status duration_us
    read -r _ code secs < <(awk '{ print $1, $2, $3 / 1e6 }' "$work/h2load.log" 2>/dev/null ||
      echo "0 none 0")
  fi
  read -r t1 h1 < <(proc_read "$srv_pid")
  [[ -n $cons_pid ]] && read -r c1 _ < <(proc_read "$cons_pid")
  if [[ ! $code =~ ^2 ]] || ! awk -v s="${secs:-0}" 'BEGIN { exit !(s + 0 > 0) }'; then
    echo "load_grpc: $scen got HTTP ${code:-none}" >&2
    if [[ $proto == h2 ]]; then tail -5 "$work/h2load.out" >&2; else cat "$work/curl.out" >&2; fi
    rec "$scen" failed 1
  else
    rec "$scen" failed 0
    rec "$scen" mbps "$(calc "$big_bytes / $secs / 1e6")"
  fi
  rec "$scen" idle_kib "$h0"
  rec "$scen" hwm_growth_kib "$((h1 - h0))"
  rec "$scen" srv_cpu_s "$(calc "($t1 - $t0) / $clk_tck")"
  [[ -s $work/client_cpu ]] && rec "$scen" client_cpu_s "$(cat "$work/client_cpu")"
  [[ -n $cons_pid ]] && rec "$scen" cons_cpu_s "$(calc "($c1 - $c0) / $clk_tck")"
  return 0
}

scen_discard() {  # proto [scenario-suffix spillwayd-args...]
  local scen="discard_$1${2:-}"
  cons_pid=""
  start_spillwayd --sink=discard "${@:3}"
  upload "$scen" "$1"
  stop_pid "$srv_pid"
}

scen_grpc() {  # proto [scenario-suffix spillwayd-args...]
  local scen="grpc_$1${2:-}"
  start_spillwayd "${@:3}"
  start_consumer
  upload "$scen" "$1"
  stop_pid "$cons_pid"
  local got
  got=$(grep -o '"bytes":[0-9]*' "$work/cons.out" 2>/dev/null | cut -d: -f2 || true)
  [[ $got == "$big_bytes" ]] || note "$scen: consumer counted ${got:-no} bytes, not $big_bytes"
  cons_pid=""
  stop_pid "$srv_pid"
}

big="$work/big.bin"
big_bytes=$((big_mib * 1024 * 1024))
head -c "$big_bytes" /dev/zero >"$big"

note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores; $runs runs per figure"
note "body: ${big_mib} MiB raw (stream mode), checksum none; consumer: $streams Consume streams"
start_time=$(date +%s)
for r in $(seq "$runs"); do
  echo "load_grpc: run $r/$runs (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  scen_discard h1
  scen_grpc h1
  scen_discard h2
  scen_grpc h2
  # Info: part of the hop's cost is per Chunk (a write and a thread hand-off inside
  # gRPC); same pair with STREAM_BODY_CHUNK_SIZE 1 MiB.
  scen_discard h1 _1m --stream-body-chunk-size=1Mi
  scen_grpc h1 _1m --stream-body-chunk-size=1Mi
done
note "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); took $(($(date +%s) - start_time)) s"
if [[ -n ${LOAD_GRPC_RESULTS_OUT:-} ]]; then cp "$results" "$LOAD_GRPC_RESULTS_OUT"; fi

"$py" - "$results" <<'EOF'
import statistics
import sys

runs, notes = {}, []
for line in open(sys.argv[1]):
    parts = line.split(None, 2)
    if len(parts) < 3:
        continue
    if parts[0] == "note":
        notes.append(parts[2].strip())
    else:
        runs.setdefault((parts[0], parts[1]), []).append(float(parts[2]))


def med(s, m):
    v = runs.get((s, m))
    return statistics.median(v) if v else None


def fmt(v, spec):
    w = int(spec.split(".")[0])
    return "-".rjust(w) if v is None else format(v, spec)


print()
print("Spillway gRPC-hop benchmark (issue 4 section 4; medians; MB = 10^6 bytes)")
for n in notes:
    print("  " + n)
print()
hdr = (f"{'scenario':<44}{'runs':>5}{'MB/s':>8}{'RSS+ MiB':>10}{'idle MiB':>10}"
       f"{'srv CPU s':>11}{'cons CPU s':>12}{'client CPU s':>14}{'fail':>6}")
print(hdr)
print("-" * len(hdr))
labels = [
    ("discard_h1", "HTTP/1.1 curl -T -> --sink=discard"),
    ("grpc_h1", "HTTP/1.1 curl -T -> gRPC discard consumer"),
    ("discard_h2", "HTTP/2 h2load -> --sink=discard"),
    ("grpc_h2", "HTTP/2 h2load -> gRPC discard consumer"),
    ("discard_h1_1m", "HTTP/1.1 -> discard, 1 MiB chunks (info)"),
    ("grpc_h1_1m", "HTTP/1.1 -> gRPC, 1 MiB chunks (info)"),
]
for s, label in labels:
    n = max((len(v) for (sc, _), v in runs.items() if sc == s), default=0)
    if not n:
        continue
    g, i = med(s, "hwm_growth_kib"), med(s, "idle_kib")
    print(f"{label:<44}{n:>5}{fmt(med(s, 'mbps'), '8.0f')}"
          f"{fmt(None if g is None else g / 1024, '10.1f')}"
          f"{fmt(None if i is None else i / 1024, '10.1f')}"
          f"{fmt(med(s, 'srv_cpu_s'), '11.2f')}{fmt(med(s, 'cons_cpu_s'), '12.2f')}"
          f"{fmt(med(s, 'client_cpu_s'), '14.2f')}"
          f"{fmt(med(s, 'failed'), '6.0f')}")
print()
print("Targets (issue 4 section 4):")
for proto, name in (("h1", "HTTP/1.1"), ("h2", "HTTP/2")):
    d, g = med(f"discard_{proto}", "mbps"), med(f"grpc_{proto}", "mbps")
    if d and g:
        r = g / d
        print(f"  {name + ' gRPC hop / discard':<36}{r:>12.2f}x   >= 0.60x  "
              f"{'met' if r >= 0.60 else 'MISSED'}")
    # Load-independent companion: CPU seconds per upload, server + consumer + client.
    cpu = {k: sum(med(f"{k}_{proto}", m) or 0
                  for m in ("srv_cpu_s", "cons_cpu_s", "client_cpu_s"))
           for k in ("discard", "grpc")}
    if cpu["discard"] and cpu["grpc"]:
        pair = f"{cpu['discard']:.2f} / {cpu['grpc']:.2f}"
        print(f"  {name + ' CPU s, discard / gRPC hop':<36}{pair:>13}    (info: server + "
              f"consumer + client)")
    if proto == "h1":
        d1, g1 = med("discard_h1_1m", "mbps"), med("grpc_h1_1m", "mbps")
        if d1 and g1:
            print(f"  {'HTTP/1.1 hop / discard, 1 MiB chunks':<36}{g1 / d1:>12.2f}x   (info: "
                  f"--stream-body-chunk-size=1Mi)")
    growth = med(f"grpc_{proto}", "hwm_growth_kib")
    if growth is not None:
        print(f"  {name + ' gRPC peak RSS above idle':<36}{growth / 1024:>9.1f} MiB   < 64 MiB  "
              f"{'met' if growth < 64 * 1024 else 'MISSED'}")
EOF
