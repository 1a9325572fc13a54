#!/bin/bash
# Benchmark: the simulator at host size (issue 14).  For each size it
# generates a trace (3 snapshots; 2 at 256 M pages), then measures
#   decode:  `sim trace check` (the reader alone) and `sim run --algo oracle`
#            (reader + simulated memory + oracle counts): page records per
#            second of user CPU;
#   ksm:     `sim run --algo ksm` with ksmd never resting, to the end of the
#            first full scan that ends after the last snapshot (`--scans N`:
#            the same work whatever the cost model's pace in simulated time;
#            N = 1 from 8M pages up) and of the next one: pages_scanned per
#            CPU second of the whole run, of the scan to N alone (the
#            difference from a run that stops at the last snapshot: same
#            decoding, same tables) and of scan N+1 alone (the difference
#            between the two runs: the steady state, where unchanged pages
#            search the stable and unstable trees);
#   memory:  peak RSS (/usr/bin/time -v "Maximum resident set size") in bytes
#            per guest page, for oracle and ksm (one and two scans) each;
#   others:  ALGOS (default "zero uksm cmd esx"; empty: none), the new build
#            only, the same work per page at every size, so that the cost per
#            page at size can be set beside the 1M figure: each scans fast
#            (pages_to_scan=100000 sleep_millisecs=0) with `--snapshot-scans 1`
#            (snapshot i right after full scan i), once to the end of scan 3
#            (the three scans that each see a snapshot: scan 1 hashes every
#            page) and once to the end of scan 3 + S, S steady scans (S: 64 M
#            page visits, at least 2: 64 at 1M, 8 at 8M, 2 at 32M).  esx has
#            no full scans: it samples 200k pages a simulated second, to 3
#            and to 3 + S samples a page after the last snapshot (its
#            "scans 1-3" and "4-": before the last snapshot it samples
#            0.4 / 0.05 / 0.01 times a page at 1M / 8M / 32M).  Printed: user CPU per page
#            scanned of the three snapshot scans beyond the oracle's replay of
#            the same trace, of the steady scans alone (the difference between
#            the two runs), and peak RSS per page.  (Until the tenth round one
#            run of 64 M visits: at 1M 62 of cmd's 64 scans were steady ones,
#            at 32M one of two was scan 1 - not the same work.)
# Generated traces are deleted as soon as their size is done.
# Usage: [ANCHOR=path/to/other/sim] bench/bench_scale.sh [path/to/sim] [sizes...]
#   sizes: 1M 8M 32M 256M (default: 1M 8M 32M); the load average is printed
#   with every size, since timings on a shared machine depend on it.
#   ANCHOR: a second build (e.g. main before a change) measured the same way
#   right after each measurement, on the same trace, so that the ratio
#   between the two holds even when the machine's load moves the timings.
#   SETTLE (seconds, default 10): pause before each timed run.  In this VM
#   memory freed by one process and touched again by the next within ~2 s
#   costs ~0.15 s of system time per GiB, fresh memory (given back to the
#   host by free page reporting) 2-3 s per GiB: without the pause a run
#   right after another pays far less system time than the first of a pair.
# Results: bench/README.md
set -euo pipefail
SIM=${1:-build/sim}
shift || true
SIZES=("$@")
ALGOS=${ALGOS-zero uksm cmd esx}
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1M 8M 32M)
DIR=${BENCH_DIR:-$(dirname "$SIM")}
T=$(mktemp -d "$DIR/bench_scale.XXXXXX")
trap 'rm -rf "$T"' EXIT

# "cpu_s max_rss_kib" of a command (GNU time -v; CPU = user + system: reading the
# file and faulting in the tables are system time).
timed() {
	sleep "${SETTLE:-10}"
	/usr/bin/time -v -o "$T/time" "$@" > "$T/out"
	local u r
	u=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$T/time")
	r=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$T/time")
	echo "$u $r"
}
col() { head -1 "$T/run.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }

# The figures of one build ($1) on the current trace.
measure() {
	local sim=$1 user user0 rss records scanned scanned0 u s
	echo "load $(cut -d" " -f1 /proc/loadavg)"
	read -r user rss <<<"$(timed "$sim" trace check "$tr")"
	records=$(grep -o '[0-9]* page records' "$T/out" | cut -d' ' -f1)
	awk -v u="$user" -v n="$records" 'BEGIN {
		if (u < 0.01) printf "trace check: %d records, under 0.01 s CPU\n", n
		else printf "trace check: %d records, %.2f s CPU, %.1f M records/s\n", n, u, n / u / 1e6 }'

	# Up to the last snapshot: every record is replayed, nothing simulated after.
	read -r user rss <<<"$(timed "$sim" run --trace "$tr" --algo oracle --duration-ms "$last_ms")"
	records=$(grep -o '[0-9]* page records' "$T/out" | cut -d' ' -f1)
	read -r u s <<<"$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u, s }' "$T/time")"
	awk -v u="$user" -v uu="$u" -v n="$records" -v r="$rss" -v p="$total" 'BEGIN {
		printf "oracle: %d records, %.2f s CPU (%.2f user), %.1f M records/s (%.1f M per user second), peak RSS %.0f MiB = %.1f B/page\n",
			n, u, uu, n / u / 1e6, n / uu / 1e6, r / 1024, r * 1024 / p }'

	oracle_user=$u
	ksm() {
		timed "$sim" run --trace "$tr" --algo ksm "$@" \
			--set pages_to_scan=10000 --set sleep_millisecs=0 -q --csv "$T/run.csv"
	}
	read -r user0 rss <<<"$(ksm --duration-ms "$last_ms")"
	scanned0=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_scanned)")
	scans0=$(tail -1 "$T/run.csv" | cut -d, -f"$(col full_scans)")
	for n in $((scans0 + 1)) $((scans0 + 2)); do
		read -r user rss <<<"$(ksm --scans "$n")"
		scanned=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_scanned)")
		ms=$(tail -1 "$T/run.csv" | cut -d, -f1)
		awk -v u="$user" -v u0="$user0" -v s="$scanned" -v s0="$scanned0" -v r="$rss" -v p="$total" \
			-v ms="$ms" -v n="$n" 'BEGIN {
			printf "ksm --scans %d: %d ms simulated, %.2f s CPU, %d pages_scanned, %.1f M scans/s; scan %d alone %.1f M scans/s; peak RSS %.0f MiB = %.1f B/page\n",
				n, ms, u, s, s / u / 1e6, n, (s - s0) / (u - u0) / 1e6, r / 1024, r * 1024 / p }'
		user0=$user scanned0=$scanned
	done
	[ "$sim" = "$SIM" ] || return 0
	for a in $ALGOS; do
		others "$sim" "$a"
	done
}

# One of the other algorithms ($2) of build $1: user CPU per page scanned
# beyond the oracle's replay ($oracle_user) of scans 1-3 (each sees a
# snapshot), of the S steady scans after them alone; peak RSS per page.
others() {
	local sim=$1 a=$2 n c rss u s u0 s0 steady=$((total < 33554432 ? 67108864 / total : 2))
	for n in 3 $((3 + steady)); do
		if [ "$a" = esx ]; then
			read -r c rss <<<"$(timed "$sim" run --trace "$tr" --algo esx --duration-ms $((last_ms + n * total / 200)) \
				--set share_scan_vm=50000 --set share_scan_total=200000 -q --csv "$T/run.csv")"
		else
			read -r c rss <<<"$(timed "$sim" run --trace "$tr" --algo "$a" --snapshot-scans 1 --scans "$n" \
				--set pages_to_scan=100000 --set sleep_millisecs=0 -q --csv "$T/run.csv")"
		fi
		u=$(awk -F': ' '/User time/ { print $2 }' "$T/time")
		s=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_scanned)")
		if [ "$n" = 3 ]; then
			awk -v a="$a" -v c="$c" -v u="$u" -v o="$oracle_user" -v s="$s" -v r="$rss" -v p="$total" 'BEGIN {
				printf "%s scans 1-3: %.2f s CPU (%.2f user), %d pages_scanned, %.0f ns user CPU per page beyond the replay; peak RSS %.0f MiB = %.1f B/page\n",
					a, c, u, s, (u - o) * 1e9 / s, r / 1024, r * 1024 / p }'
		else
			awk -v a="$a" -v n="$n" -v u="$u" -v u0="$u0" -v s="$s" -v s0="$s0" -v r="$rss" -v p="$total" 'BEGIN {
				printf "%s scans 4-%d alone: %.2f s user, %d pages_scanned, %.0f ns user CPU per page; peak RSS %.0f MiB = %.1f B/page\n",
					a, n, u - u0, s - s0, (u - u0) * 1e9 / (s - s0), r / 1024, r * 1024 / p }'
		fi
		u0=$u s0=$s
	done
}

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
	last_ms=$(((snaps - 1) * 1000))

	for sim in "$SIM" ${ANCHOR:+"$ANCHOR"}; do
		[ "$sim" = "$SIM" ] || echo "-- anchor $ANCHOR (load $(cut -d' ' -f1 /proc/loadavg))"
		measure "$sim"
	done
	rm -f "$tr"
	echo "load after $size: $(cut -d' ' -f1-3 /proc/loadavg)"
done
