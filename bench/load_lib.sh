# Shared by bench/load_http.sh and bench/load_grpc.sh (sourced, not run): the checks
# for binaries and tools, the processes a run starts (all killed and reaped on exit,
# with the scratch directories), and the results file the report is made from.
# The sourcing script sets load_name (its log prefix), py and helper first, and
# `results` (a file) before calling rec or note.

# Exits naming the first one missing: a path must be an executable file (a build
# product), a bare name a command on PATH (scripts/setup.sh installs those).
require() {  # executable...
  local b
  for b in "$@"; do
    if [[ $b == */* ]]; then
      [[ -x $b ]] || { echo "$load_name: $b not found (build it first: make build)" >&2; exit 1; }
    else
      command -v "$b" >/dev/null ||
        { echo "$load_name: $b missing (scripts/setup.sh installs it)" >&2; exit 1; }
    fi
  done
}

pids=()          # processes to kill on exit
scratch_dirs=()  # directories to remove on exit
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "${scratch_dirs[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

forget_pid() {
  local p keep=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}

rec() { echo "$1 $2 $3" >>"$results"; }  # scenario metric value
note() { echo "note - $*" >>"$results"; echo "$load_name: $*" >&2; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
proc_read() { "$py" "$helper" proc "$1"; }  # prints "cpu_ticks vmhwm_kib"
clk_tck=$(getconf CLK_TCK)

# Runs a command, then writes its user+sys CPU seconds (from wait4) to the file $1.
# Signals to the wrapper are passed on to the command.
cpu_run() {  # file cmd...
  "$py" -c '
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda n, _: os.kill(pid, n))  # passed on to the client
_, status, ru = os.wait4(pid, 0)
open(sys.argv[1], "w").write("%.3f\n" % (ru.ru_utime + ru.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))' "$@"
}
