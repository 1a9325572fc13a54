#!/bin/bash
# Benchmark: `sim run --algo oracle` replay speed and memory.
#   speed:  page states replayed (pages x snapshots) per second of user CPU,
#           on 8 guests x 256k pages x 20 snapshots (issue target: >= 20M/s);
#   memory: peak RSS as the trace gets longer (should stay flat) and as the
#           number of distinct contents grows (should grow).
# Usage: bench/bench_oracle.sh [path/to/sim]   (results: bench/README.md)
set -euo pipefail
SIM=${1:-build/sim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

run() { # trace -> "user_s max_rss_kib page_states records"
	/usr/bin/time -f "%U %M" -o "$T/time" "$SIM" run --trace "$1" --algo oracle --tail-ms 0 \
		> "$T/out"
	local states records
	states=$(grep -o '[0-9]* page states' "$T/out" | cut -d' ' -f1)
	records=$(grep -o '[0-9]* page records' "$T/out" | cut -d' ' -f1)
	echo "$(cat "$T/time") $states $records"
}

echo "== speed: 8 guests x 262144 pages x 20 snapshots"
"$SIM" trace gen -o "$T/big.sptrace" --guests 8 --pages 262144 --snapshots 20 --seed 1
ls -l "$T/big.sptrace" | awk '{ printf "trace size %.1f MB\n", $5 / 1e6 }'
for i in 1 2 3; do
	read -r user rss states records <<<"$(run "$T/big.sptrace")"
	awk -v u="$user" -v r="$rss" -v s="$states" -v n="$records" 'BEGIN {
		printf "run %d: %.2f s user, %.1f M page states/s, %.1f M records/s, peak RSS %.0f MiB\n",
			'"$i"', u, s / u / 1e6, n / u / 1e6, r / 1024 }'
done

echo "== memory against trace length (4 guests x 65536 pages)"
for snaps in 5 20 80; do
	"$SIM" trace gen -o "$T/len.sptrace" --guests 4 --pages 65536 --snapshots "$snaps" --seed 1
	read -r user rss states records <<<"$(run "$T/len.sptrace")"
	echo "snapshots $snaps: peak RSS $((rss / 1024)) MiB, $records records"
done

echo "== memory against distinct contents (4 guests x 65536 pages, 20 snapshots)"
for shared in 0.95 0.5 0.0; do
	"$SIM" trace gen -o "$T/d.sptrace" --guests 4 --pages 65536 --snapshots 20 \
		--shared-fraction "$shared" --zero-fraction 0 --write-rate 0.5 --volatile-fraction 1 --seed 1
	read -r user rss states records <<<"$(run "$T/d.sptrace")"
	distinct=$("$SIM" trace info "$T/d.sptrace" | tail -1 | awk '{ print $7 }')
	echo "shared-fraction $shared: $distinct distinct at the end, peak RSS $((rss / 1024)) MiB"
done
