#!/bin/bash
# Benchmark: `sim run --algo ksm` speed in simulated page scans per second of
# user CPU (issue target: >= 5 M/s on one core), on 8 guests x 131072 pages
# (4 GiB), 5 snapshots, aggressive tunables so that the scanner never rests.
# Usage: bench/bench_ksm.sh [path/to/sim]   (results: bench/README.md)
set -euo pipefail
SIM=${1:-build/sim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$SIM" trace gen -o "$T/big.sptrace" --guests 8 --pages 131072 --snapshots 5 --seed 1
col() { head -1 "$T/run.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }
for i in 1 2 3; do
	/usr/bin/time -f "%U %M" -o "$T/time" "$SIM" run --trace "$T/big.sptrace" --algo ksm \
		--set pages_to_scan=10000 --set sleep_millisecs=0 -q --csv "$T/run.csv"
	read -r user rss < "$T/time"
	scanned=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_scanned)")
	skipped=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_skipped)")
	awk -v u="$user" -v s="$scanned" -v k="$skipped" -v r="$rss" -v i="$i" 'BEGIN {
		printf "run %d: %.2f s user, %d pages_scanned (%.1f M/s), %d more skipped (%.1f M visits/s), peak RSS %.0f MiB\n",
			i, u, s, s / u / 1e6, k, (s + k) / u / 1e6, r / 1024 }'
done
