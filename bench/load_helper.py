#!/usr/bin/python3
"""Helper for bench/load_http.sh: bodies, /proc readings, h2load parsing, report.

Subcommands:
  freeport                         print a free loopback TCP port
  multipart OUT BOUNDARY SIZE...   write a multipart/form-data body: one text field and
                                   one file part of each SIZE bytes (random content)
  proc PID                         print "cpu_ticks vmhwm_kib": utime+stime of all threads,
                                   and VmHWM, of PID and its child processes added up
                                   (nginx's workers are children of its master; their
                                   shared pages count once per process)
  h2load STDOUT LOGFILE            print "reqs ok rps p50_us p99_us" from an h2load run
                                   (req/s from its summary; latency percentiles from the
                                   per-request --log-file, which h2load 1.52 does not print)
  report RESULTS                   medians of every (scenario, metric) over the runs, with
                                   the issue's targets and ratios
"""
import os
import re
import statistics
import socket
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def multipart(out, boundary, *sizes):
    b = boundary.encode()
    with open(out, "wb") as f:
        f.write(b"--" + b + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nbench\r\n')
        for i, size in enumerate(sizes):
            f.write(b"--" + b + b'\r\nContent-Disposition: form-data; name="file%d"; '
                    b'filename="f%d.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
                    % (i, i))
            left = int(size)
            while left:
                n = min(left, MIB)
                f.write(os.urandom(n))
                left -= n
            f.write(b"\r\n")
        f.write(b"--" + b + b"--\r\n")


def proc_stat(pid):
    """(ppid, utime + stime ticks) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])  # fields 4, 14, 15


def proc_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def proc(pid):
    family = [int(pid)]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != int(pid):
            try:
                if proc_stat(entry)[0] == int(pid):
                    family.append(int(entry))
            except OSError:  # gone meanwhile
                pass
    ticks = hwm = 0
    for p in family:
        try:
            ticks += proc_stat(p)[1]
            hwm += proc_hwm(p)
        except OSError:
            pass
    print(ticks, hwm)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def h2load(stdout_path, log_path):
    text = open(stdout_path).read()
    m = re.search(r"finished in [^,]+, ([\d.]+) req/s", text)
    rps = float(m.group(1)) if m else float("nan")
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", text)
    total, ok = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    m = re.search(r"status codes: (\d+) 2xx", text)
    ok2xx = int(m.group(1)) if m else 0
    lat = []
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1].startswith("2"):
                    lat.append(int(parts[2]))
    lat.sort()
    print(total, min(ok, ok2xx), rps, percentile(lat, 50), percentile(lat, 99))


# Report. Each results line: scenario metric value.
# (scenario, label) in print order.
SCENARIOS = [
    ("tcp", "(a) loopback TCP, iperf3 -n body (reference)"),
    ("tcp_3s", "(a) loopback TCP, iperf3 -t 3 (info)"),
    ("a_h1_client", "(a) big raw, HTTP/1.1 iperf3-like, none"),
    ("a_h1", "(a) big raw, HTTP/1.1 curl -T, checksum none"),
    ("a_h1_h2load", "(a) big raw, HTTP/1.1 h2load --h1, none"),
    ("a_h1_sha", "(a) big raw, HTTP/1.1 curl -T, sha256"),
    ("a_h2", "(a) big raw, HTTP/2 h2load, checksum none"),
    ("a_h2_sha", "(a) big raw, HTTP/2 h2load, sha256"),
    ("a_nghttpd", "(a) big raw, HTTP/2 h2load -> nghttpd (ref)"),
    ("a_h1_tls", "(a) big raw, HTTP/1.1 over TLS, h2load --h1"),
    ("a_h2_tls", "(a) big raw, HTTP/2 over TLS (ALPN), h2load"),
    ("a_nghttpd_tls", "(a) big raw, HTTP/2 over TLS -> nghttpd (ref)"),
    ("b", "(b) 64 clients, 1 MiB + 8 MiB multipart"),
    ("b_1m", "(b) 64 clients, 1 MiB file only (info)"),
    ("b_8m", "(b) 64 clients, 8 MiB file only (info)"),
    ("c_h1", "(c) 4 KiB multipart, 100 conns, HTTP/1.1"),
    ("c_h2", "(c) 4 KiB multipart, 100 conns, HTTP/2"),
    ("c_h1_tls", "(c) the same, HTTP/1.1 over TLS (info)"),
    ("c_h2_tls", "(c) the same, HTTP/2 over TLS (info)"),
    ("ref_b_go", "(b) the same -> Go ParseMultipartForm (ref)"),
    ("ref_c_h1_go", "(c) HTTP/1.1 -> Go ParseMultipartForm (ref)"),
    ("ref_c_h2_go", "(c) HTTP/2 -> Go, h2c (ref)"),
    ("ref_c_h1_nginx", "(c) HTTP/1.1 -> nginx, no parsing (ref)"),
    ("ref_c_h2_nginx", "(c) HTTP/2 -> nginx, no parsing (ref)"),
]

# The reference servers' figures that issue 3 quotes for scale, from the machine its
# targets were set on: (scenario, metric) -> value.
ISSUE_REFERENCE = {
    ("ref_b_go", "rps"): 128,
    ("ref_c_h1_go", "rps"): 33000,
    ("ref_c_h1_go", "cpu_us_per_upload"): 41,
    ("ref_c_h2_go", "rps"): 20000,
    ("ref_c_h2_go", "cpu_us_per_upload"): 72,
    ("ref_c_h1_nginx", "rps"): 133000,
}

# Issue 3's (b) and (c) targets restated as ratios to those references:
# (label, spillwayd scenario, reference scenario, metric, target value, higher is better).
SCALED_TARGETS = [
    ("(b) req/s / Go", "b", "ref_b_go", "rps", 250, True),
    ("(c) HTTP/1.1 uploads/s / Go", "c_h1", "ref_c_h1_go", "rps", 66000, True),
    ("(c) HTTP/1.1 uploads/s / nginx", "c_h1", "ref_c_h1_nginx", "rps", 66000, True),
    ("(c) HTTP/1.1 CPU/upload / Go", "c_h1", "ref_c_h1_go", "cpu_us_per_upload", 15, False),
    ("(c) HTTP/2 uploads/s / Go", "c_h2", "ref_c_h2_go", "rps", 60000, True),
    ("(c) HTTP/2 CPU/upload / Go", "c_h2", "ref_c_h2_go", "cpu_us_per_upload", 15, False),
]


def fmt(v, spec):
    width = int(re.match(r"\d*", spec).group(0) or 0)
    return "-".rjust(width) if v is None else format(v, spec)


def fmt_cpu(us):
    if us is None:
        return "-"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e4:
        return f"{us / 1e3:.1f} ms"
    return f"{us:.1f} us"


def verdict(ok):
    return "met" if ok else "MISSED"


def report(path):
    runs = {}
    notes = []
    with open(path) as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) < 3:
                continue
            if parts[0] == "note":
                notes.append(parts[2].strip())
                continue
            runs.setdefault((parts[0], parts[1]), []).append(float(parts[2]))

    def med(s, m):
        v = runs.get((s, m))
        return statistics.median(v) if v else None

    def nruns(s):
        return max((len(v) for (sc, _), v in runs.items() if sc == s), default=0)

    print()
    print("Spillway load benchmark (medians over runs; MB = 10^6 bytes)")
    for n in notes:
        print("  " + n)
    print()
    hdr = f"{'scenario':<48}{'runs':>5}{'MB/s':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}" \
          f"{'RSS MiB':>9}{'CPU/upl':>11}{'h2load':>10}{'fail':>6}"
    print(hdr)
    print("-" * len(hdr))
    for s, label in SCENARIOS:
        if not nruns(s):
            continue
        cpu_s = fmt_cpu(med(s, "cpu_us_per_upload"))
        client_cpu_s = fmt_cpu(med(s, "client_cpu_us_per_upload"))
        p50, p99 = med(s, "p50_us"), med(s, "p99_us")
        rss = med(s, "hwm_kib")
        fail = med(s, "failed")
        print(f"{label:<48}{nruns(s):>5}{fmt(med(s, 'mbps'), '9.0f')}"
              f"{fmt(med(s, 'rps'), '10.1f')}"
              f"{fmt(None if p50 is None else p50 / 1000, '9.2f')}"
              f"{fmt(None if p99 is None else p99 / 1000, '9.2f')}"
              f"{fmt(None if rss is None else rss / 1024, '9.1f')}{cpu_s:>11}"
              f"{client_cpu_s:>10}{fmt(fail, '6.0f')}")
    print("  (CPU/upl: the server's CPU per upload; h2load: the load generator's)")
    print()
    print("Targets (issue 3 section 6):")
    rows = []
    tcp, h1, h1s = med("tcp", "mbps"), med("a_h1_client", "mbps"), med("a_h1_sha", "mbps")
    h2, h2s, ng = med("a_h2", "mbps"), med("a_h2_sha", "mbps"), med("a_nghttpd", "mbps")
    if tcp and h1:
        r = h1 / tcp
        rows.append(("(a) HTTP/1.1 iperf3-like / iperf3", f"{r:.2f}x", ">= 1.0x",
                     verdict(r >= 1.0)))
        h1c = med("a_h1", "mbps")
        if h1c:
            rows.append(("(a) HTTP/1.1 curl -T / iperf3", f"{h1c / tcp:.2f}x", "(info)", ""))
        t3 = med("tcp_3s", "mbps")
        if t3:
            rows.append(("(a) HTTP/1.1 iperf3-like / iperf3 -t3", f"{h1 / t3:.2f}x", "(info)",
                         ""))
        if h1s:
            rows.append(("(a) HTTP/1.1 sha256 / iperf3", f"{h1s / tcp:.2f}x", "(info)", ""))
        h1h = med("a_h1_h2load", "mbps")
        if h1h:
            rows.append(("(a) HTTP/1.1 h2load --h1 / iperf3", f"{h1h / tcp:.2f}x", "(info)", ""))
    if ng and h2:
        r = h2 / ng
        rows.append(("(a) HTTP/2 / nghttpd", f"{r:.2f}x", ">= 1.2x", verdict(r >= 1.2)))
        if h2s:
            rows.append(("(a) HTTP/2 sha256 / nghttpd", f"{h2s / ng:.2f}x", "(info)", ""))
    for s, name in (("a_h1_client", "HTTP/1.1"), ("a_h2", "HTTP/2"),
                    ("a_h1_sha", "HTTP/1.1 sha256"),
                    ("a_h2_sha", "HTTP/2 sha256")):
        rss = med(s, "hwm_kib")
        if rss is not None:
            rows.append((f"(a) peak RSS {name}", f"{rss / 1024:.1f} MiB", "< 32 MiB",
                         verdict(rss < 32 * 1024)))
    b_rps, b_rss = med("b", "rps"), med("b", "hwm_kib")
    if b_rps is not None:
        rows.append(("(b) req/s", f"{b_rps:.1f}", ">= 250", verdict(b_rps >= 250)))
        rows.append(("(b) peak RSS", f"{b_rss / 1024:.1f} MiB", "< 200 MiB",
                     verdict(b_rss < 200 * 1024)))
        srv, cli = med("b", "cpu_us_per_upload"), med("b", "client_cpu_us_per_upload")
        if srv and cli:
            # Two cores run both sides: no server could go faster than this without
            # spending less CPU per request itself.
            rows.append(("(b) 2 cores / (server + h2load CPU)",
                         f"{2e6 / (srv + cli):.1f}", "(info)", ""))
            # h2load cannot send faster than its own threads turn over requests.
            threads = med("b", "client_threads") or 1
            rows.append((f"(b) h2load alone: {threads:.0f} thread(s) / its CPU",
                         f"{threads * 1e6 / cli:.1f}", "(info)", ""))
    for s, name in (("b_1m", "1 MiB only"), ("b_8m", "8 MiB only")):
        rps, rss = med(s, "rps"), med(s, "hwm_kib")
        if rps is not None:
            rows.append((f"(b) {name} req/s, RSS", f"{rps:.0f}, {rss / 1024:.0f} MiB",
                         "(info)", ""))
    for s, name, target in (("c_h1", "HTTP/1.1", 66000), ("c_h2", "HTTP/2", 60000)):
        rps = med(s, "rps")
        if rps is None:
            continue
        rows.append((f"(c) {name} uploads/s", f"{rps:.0f} ({rps / target:.2f}x)",
                     f">= {target}", verdict(rps >= target)))
        p99 = med(s, "p99_us")
        rows.append((f"(c) {name} p99", f"{p99 / 1000:.2f} ms", "< 5 ms",
                     verdict(p99 < 5000)))
        cpu = med(s, "cpu_us_per_upload")
        rows.append((f"(c) {name} server CPU/upload", f"{cpu:.1f} us ({cpu / 15:.2f}x)",
                     "<= 15 us", verdict(cpu <= 15)))
    h2t, ngt = med("a_h2_tls", "mbps"), med("a_nghttpd_tls", "mbps")
    if h2t and ngt:
        rows.append(("(a) HTTP/2 over TLS / nghttpd over TLS", f"{h2t / ngt:.2f}x", "(info)",
                     ""))
    for s, plain, name in (("c_h1_tls", "c_h1", "HTTP/1.1"), ("c_h2_tls", "c_h2", "HTTP/2")):
        cpu, cpu_plain = med(s, "cpu_us_per_upload"), med(plain, "cpu_us_per_upload")
        if cpu and cpu_plain:
            rows.append((f"(c) {name} over TLS CPU/upload", f"{cpu:.1f} us ({cpu / cpu_plain:.2f}x)",
                         "(info)", ""))
    for name, value, target, v in rows:
        print(f"  {name:<36}{value:>18}   {target:<10}{v}")

    if not any(nruns(s) for s, _ in ISSUE_REFERENCE):
        return 0
    print()
    print("This machine against the one the targets were set on (the reference servers'")
    print("figures here / the issue's figures for them):")
    for (s, m), theirs in ISSUE_REFERENCE.items():
        ours = med(s, m)
        if ours is not None:
            label = dict(SCENARIOS)[s].replace(" (ref)", "") + (
                " CPU/upload" if m == "cpu_us_per_upload" else " req/s")
            shown = fmt_cpu(ours) if m == "cpu_us_per_upload" else f"{ours:.0f}"
            print(f"  {label:<52}{shown:>10} / {theirs:<7}{ours / theirs:.2f}x")
    print()
    print("Targets as ratios to the references (target / the issue's reference figure),")
    print("against spillwayd / the reference measured in this run:")
    for label, s, ref, m, target, higher in SCALED_TARGETS:
        ours, theirs = med(s, m), med(ref, m)
        if ours is None or not theirs:
            continue
        want = target / ISSUE_REFERENCE[(ref, m)]
        r = ours / theirs
        sign = ">=" if higher else "<="
        print(f"  {label:<36}{r:>17.3f}x   {sign} {want:.3f}x  "
              f"{verdict(r >= want if higher else r <= want)}")
    for label, s, ref, m in (
            ("(b) peak RSS / Go", "b", "ref_b_go", "hwm_kib"),
            ("(c) HTTP/2 uploads/s / nginx", "c_h2", "ref_c_h2_nginx", "rps"),
            ("(c) HTTP/1.1 CPU/upload / nginx", "c_h1", "ref_c_h1_nginx", "cpu_us_per_upload"),
            ("(c) HTTP/2 CPU/upload / nginx", "c_h2", "ref_c_h2_nginx", "cpu_us_per_upload")):
        ours, theirs = med(s, m), med(ref, m)
        if ours is not None and theirs:
            print(f"  {label:<36}{ours / theirs:>17.3f}x   (info)")
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        freeport()
    elif cmd == "multipart":
        multipart(*args)
    elif cmd == "proc":
        proc(*args)
    elif cmd == "h2load":
        h2load(*args)
    elif cmd == "report":
        return report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
