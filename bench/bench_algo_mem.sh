#!/bin/bash
# Benchmark: memory per page of each registered algorithm, and of `sim
# compare` running them all (issue 14).  One generated trace (default 4 x 1 Mi
# pages = 4 M pages, 3 snapshots); each algorithm is run with scanning fast
# enough to visit about every page (its per-page state is then touched) for
# about one full scan at ksmd's modelled rate (at least 30 simulated
# seconds); peak RSS from GNU time (esx samples 50k pages per second per
# guest, 200k in all).  Then `sim compare`
# of all six with --jobs 1 and --jobs 2 over the same trace and duration: the
# decoded trace is held once and read by every thread (trace_mem), so its
# peak is the trace plus the runs in flight at a time.
# Usage: bench/bench_algo_mem.sh [path/to/sim] [guests] [pages per guest]
# Results: bench/README.md
set -euo pipefail
SIM=${1:-build/sim}
G=${2:-4}
P=${3:-1048576}
DIR=${BENCH_DIR:-$(dirname "$SIM")}
T=$(mktemp -d "$DIR/bench_algo_mem.XXXXXX")
trap 'rm -rf "$T"' EXIT
total=$((G * P))
DUR=$((total / 130 > 30000 ? total / 130 : 30000)) # about one full scan at ksmd's modelled rate

# "peak_rss_kib cpu_s wall_s" of a command
measure() {
	/usr/bin/time -f '%M %U %S %e' -o "$T/time" "$@" > /dev/null
	awk '{ printf "%d %.2f %.2f\n", $1, $2 + $3, $4 }' "$T/time"
}
row() { # name rss_kib cpu wall
	awk -v n="$1" -v r="$2" -v c="$3" -v w="$4" -v p="$total" 'BEGIN {
		printf "| %-24s | %8.0f MiB | %6.1f B/page | %6.2f s | %6.2f s |\n", n, r / 1024, r * 1024 / p, c, w }'
}

"$SIM" trace gen -o "$T/t.sptrace" --guests "$G" --pages "$P" --snapshots 3 --seed 1 > /dev/null
recs=$("$SIM" trace check "$T/t.sptrace" | grep -o '[0-9]* page records' | cut -d' ' -f1)
echo "trace: $G x $P pages, 3 snapshots, $recs page records, $(stat -c %s "$T/t.sptrace") bytes"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run                      | peak RSS     | per page      | CPU      | wall     |"
echo "|--------------------------|--------------|---------------|----------|----------|"
fast_scan="--set pages_to_scan=100000 --set sleep_millisecs=0"
for a in oracle zero ksm esx uksm cmd; do
	case $a in
	oracle) sets="" ;;
	esx) sets="--set share_scan_vm=50000 --set share_scan_total=200000" ;;
	*) sets=$fast_scan ;;
	esac
	# shellcheck disable=SC2086
	read -r r c w <<<"$(measure "$SIM" run --trace "$T/t.sptrace" --algo "$a" $sets --duration-ms $DUR -q)"
	row "sim run --algo $a" "$r" "$c" "$w"
done
sets="--set ksm.pages_to_scan=100000 --set ksm.sleep_millisecs=0 --set zero.pages_to_scan=100000"
sets="$sets --set zero.sleep_millisecs=0 --set uksm.pages_to_scan=100000 --set uksm.sleep_millisecs=0"
sets="$sets --set cmd.pages_to_scan=100000 --set cmd.sleep_millisecs=0"
sets="$sets --set esx.share_scan_vm=50000 --set esx.share_scan_total=200000"
for j in 1 2; do
	# shellcheck disable=SC2086
	read -r r c w <<<"$(measure "$SIM" compare --trace "$T/t.sptrace" --algos oracle,zero,ksm,esx,uksm,cmd \
		$sets --duration-ms $DUR --jobs $j --report "$T/rep$j" -q)"
	row "sim compare, --jobs $j" "$r" "$c" "$w"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
