#!/bin/bash
# bench_idle.sh ANCHOR_SIM NEW_SIM [RUNS] - the idle fast-forward (issue 10):
#  1. ordinary traces must not get slower: user CPU of `sim run` on every
#     bundled sample with every algorithm, the anchor build (e.g. main before
#     the change) and the new one interleaved RUNS times (default 5), medians
#     and their ratio new/anchor;
#  2. idle gaps get fast: a generated trace with 10-minute gaps, the new
#     build with and without --no-skip (the anchor of that ratio).
# Prints a Markdown table; state `cat /proc/loadavg` with it (printed too).
set -euo pipefail
A=${1:?anchor sim binary}
N=${2:?new sim binary}
RUNS=${3:-5}
SAMPLES="$(dirname "$0")/../traces/samples"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

cpu() { # cpu REPS CMD...: user+sys CPU seconds of REPS runs of CMD (10 ms clock: short runs are repeated)
	local reps=$1
	shift
	/usr/bin/time -f "%U %S" -o "$T/t" bash -c 'for _ in $(seq "$0"); do "$@" >/dev/null || exit 1; done' "$reps" "$@"
	awk '{ printf "%.3f\n", $1 + $2 }' "$T/t"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "load average before: $(cat /proc/loadavg)"
echo
echo "| trace | algo | anchor CPU s (20 runs) | new CPU s (20 runs) | new/anchor |"
echo "|-------|------|--------------|-----------|------------|"
# the bundled samples, and the generator's default trace (4 x 16384 pages, 10 snapshots a second apart)
"$N" trace gen -o "$T/gen-default.sptrace" >/dev/null
for tr in "$SAMPLES"/*.sptrace "$T/gen-default.sptrace"; do
	for algo in oracle zero ksm esx uksm cmd; do
		: >"$T/a"
		: >"$T/n"
		for _ in $(seq "$RUNS"); do
			cpu 20 "$A" run --trace "$tr" --algo "$algo" --csv "$T/a.csv" >>"$T/a"
			cpu 20 "$N" run --trace "$tr" --algo "$algo" --csv "$T/n.csv" >>"$T/n"
		done
		cmp -s "$T/a.csv" "$T/n.csv" || echo "NOTE: $(basename "$tr") $algo: CSVs differ" >&2
		a=$(median <"$T/a")
		n=$(median <"$T/n")
		printf '| %s | %s | %s | %s | %s |\n' "$(basename "$tr")" "$algo" "$a" "$n" \
			"$(awk -v a="$a" -v n="$n" 'BEGIN { if (a > 0) printf "%.2f", n / a; else print "-" }')"
	done
done
# heavier scanning on the generated trace: pages_to_scan=4000 (millions of page visits)
for algo in zero ksm uksm cmd; do
	: >"$T/a"
	: >"$T/n"
	for _ in $(seq "$RUNS"); do
		cpu 1 "$A" run --trace "$T/gen-default.sptrace" --algo "$algo" --set pages_to_scan=4000 --csv "$T/a.csv" >>"$T/a"
		cpu 1 "$N" run --trace "$T/gen-default.sptrace" --algo "$algo" --set pages_to_scan=4000 --csv "$T/n.csv" >>"$T/n"
	done
	cmp -s "$T/a.csv" "$T/n.csv" || echo "NOTE: gen-default $algo p2s=4000: CSVs differ" >&2
	a=$(median <"$T/a")
	n=$(median <"$T/n")
	printf '| gen-default.sptrace, pages_to_scan=4000 | %s | %s | %s | %s |\n' "$algo" "$a" "$n" \
		"$(awk -v a="$a" -v n="$n" 'BEGIN { if (a > 0) printf "%.2f", n / a; else print "-" }')"
done
echo
"$N" trace gen -o "$T/gaps.sptrace" --guests 4 --pages 4096 --snapshots 4 --interval-ms 600000 >/dev/null
echo "| gaps.sptrace (4 x 4096 pages, 3 gaps of 600 s) | algo | --no-skip CPU s (5 runs) | skip CPU s (5 runs) | skip/no-skip |"
echo "|------|------|------|------|------|"
for algo in oracle zero ksm; do
	: >"$T/a"
	: >"$T/n"
	for _ in $(seq "$RUNS"); do
		cpu 5 "$N" run --no-skip --trace "$T/gaps.sptrace" --algo "$algo" --csv "$T/a.csv" >>"$T/a"
		cpu 5 "$N" run --trace "$T/gaps.sptrace" --algo "$algo" --csv "$T/n.csv" >>"$T/n"
	done
	cmp -s "$T/a.csv" "$T/n.csv" || echo "NOTE: gaps $algo: CSVs differ" >&2
	a=$(median <"$T/a")
	n=$(median <"$T/n")
	printf '| | %s | %s | %s | %s |\n' "$algo" "$a" "$n" \
		"$(awk -v a="$a" -v n="$n" 'BEGIN { if (a > 0) printf "%.3f", n / a; else print "-" }')"
done
echo
echo "load average after: $(cat /proc/loadavg)"
