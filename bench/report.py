#!/usr/bin/env python3
"""Prints median throughput of Google Benchmark JSON results and the target ratios."""
import json
import sys

# (label, numerator benchmark, denominator benchmark, target ratio or None)
RATIOS = [
    ("parse 100 MiB part / memchr", "BM_ParseOneLargePart", "BM_Memchr", 0.7),
    ("parse 4 KiB parts / memchr", "BM_ParseManySmallParts", "BM_Memchr", 0.4),
    ("spill, checksum none / write()", "BM_SpillChecksumNone", "BM_PlainWriteLoop", 0.67),
    ("spill, sha256 / write()", "BM_SpillSha256", "BM_PlainWriteLoop", None),
    ("spill, crc32c / write()", "BM_SpillCrc32c", "BM_PlainWriteLoop", None),
]


def main(paths):
    medians = {}
    for path in paths:
        with open(path) as f:
            for b in json.load(f)["benchmarks"]:
                if b.get("aggregate_name", "median") != "median":
                    continue
                name = b["run_name"].split("/")[0]
                medians[name] = b
    print(f"{'benchmark':<34}{'median':>14}{'items/s':>14}")
    for name, b in sorted(medians.items()):
        bps = b.get("bytes_per_second")
        rate = f"{bps / 1e9:9.2f} GB/s" if bps else ""
        ips = b.get("items_per_second")
        items = f"{ips:12.0f}" if ips else ""
        print(f"{name:<34}{rate:>14}{items:>14}")
    print()
    for label, num, den, target in RATIOS:
        if num not in medians or den not in medians:
            continue
        ratio = medians[num]["bytes_per_second"] / medians[den]["bytes_per_second"]
        verdict = ""
        if target is not None:
            verdict = f"(target >= {target}: {'met' if ratio >= target else 'MISSED'})"
        print(f"{label:<34}{ratio:8.2f}x  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
