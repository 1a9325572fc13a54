#!/bin/bash
# Benchmark: the simulator at host size (issue 14).  For each size it
# generates a trace (3 snapshots; 2 at 256 M pages), then measures
#   decode:  `sim trace check` (the reader alone) and `sim run --algo oracle`
#            (reader + simulated memory + oracle counts): page records per
#            second of user CPU;
#   ksm:     `sim run --algo ksm` with ksmd never resting: pages_scanned per
#            second of user CPU (whole run, decoding included);
#   memory:  peak RSS (/usr/bin/time -v "Maximum resident set size") in bytes
#            per guest page, for oracle and ksm each.
# Generated traces are deleted as soon as their size is done.
# Usage: bench/bench_scale.sh [path/to/sim] [sizes...]
#   sizes: 1M 8M 32M 256M (default: 1M 8M 32M); the load average is printed
#   with every size, since timings on a shared machine depend on it.
# Results: bench/README.md
set -euo pipefail
SIM=${1:-build/sim}
shift || true
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1M 8M 32M)
DIR=${BENCH_DIR:-$(dirname "$SIM")}
T=$(mktemp -d "$DIR/bench_scale.XXXXXX")
trap 'rm -rf "$T"' EXIT

# "cpu_s max_rss_kib" of a command (GNU time -v; CPU = user + system: reading the
# file and faulting in the tables are system time).
timed() {
	/usr/bin/time -v -o "$T/time" "$@" > "$T/out"
	local u r
	u=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$T/time")
	r=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$T/time")
	echo "$u $r"
}
col() { head -1 "$T/run.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }

for size in "${SIZES[@]}"; do
	case $size in
	1M) guests=8; pages=131072; snaps=3 ;;
	8M) guests=8; pages=1048576; snaps=3 ;;
	32M) guests=32; pages=1048576; snaps=3 ;;
	256M) guests=64; pages=4194304; snaps=2 ;;
	*) echo "unknown size $size (1M 8M 32M 256M)" >&2; exit 2 ;;
	esac
	total=$((guests * pages))
	tr="$T/s.sptrace"
	echo "== $size: $guests guests x $pages pages, $snaps snapshots; load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$SIM" trace gen -o "$tr" --guests "$guests" --pages "$pages" --snapshots "$snaps" --seed 1
	ls -l "$tr" | awk '{ printf "trace size %.1f MB\n", $5 / 1e6 }'

	read -r user rss <<<"$(timed "$SIM" trace check "$tr")"
	records=$(grep -o '[0-9]* page records' "$T/out" | cut -d' ' -f1)
	awk -v u="$user" -v n="$records" 'BEGIN {
		printf "trace check: %d records, %.2f s CPU, %.1f M records/s\n", n, u, n / u / 1e6 }'

	read -r user rss <<<"$(timed "$SIM" run --trace "$tr" --algo oracle --tail-ms 0)"
	ocpu=$user
	awk -v u="$user" -v n="$records" -v r="$rss" -v p="$total" 'BEGIN {
		printf "oracle: %.2f s CPU, %.1f M records/s, peak RSS %.0f MiB = %.1f B/page\n",
			u, n / u / 1e6, r / 1024, r * 1024 / p }'

	# ksmd never resting scans ~150k pages per simulated second here: simulate
	# about one full scan of every page (at least 20 s).
	ksm_ms=$((total / 150 > 20000 ? total / 150 : 20000))
	read -r user rss <<<"$(timed "$SIM" run --trace "$tr" --algo ksm --duration-ms "$ksm_ms" \
		--set pages_to_scan=10000 --set sleep_millisecs=0 -q --csv "$T/run.csv")"
	scanned=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_scanned)")
	awk -v u="$user" -v o="$ocpu" -v s="$scanned" -v r="$rss" -v p="$total" -v ms="$ksm_ms" 'BEGIN {
		printf "ksm: %d ms simulated, %.2f s CPU, %d pages_scanned, %.1f M scans/s (%.1f M/s net of the oracle run\x27s decoding), peak RSS %.0f MiB = %.1f B/page\n",
			ms, u, s, s / u / 1e6, s / (u - o) / 1e6, r / 1024, r * 1024 / p }'
	rm -f "$tr"
	echo "load after $size: $(cut -d' ' -f1-3 /proc/loadavg)"
done
