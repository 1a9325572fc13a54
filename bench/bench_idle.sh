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

# row LABEL REPS ANCHOR_CMD... -- NEW_CMD...: RUNS interleaved timings of REPS runs each, one table row
# (the commands get --csv FILE appended; the CSVs are compared)
row() {
	local label=$1 reps=$2 a n
	shift 2
	local -a ca=() cn=()
	while [ "$1" != "--" ]; do ca+=("$1"); shift; done
	shift
	cn=("$@")
	: >"$T/a"
	: >"$T/n"
	for _ in $(seq "$RUNS"); do
		cpu "$reps" "${ca[@]}" --csv "$T/a.csv" >>"$T/a"
		cpu "$reps" "${cn[@]}" --csv "$T/n.csv" >>"$T/n"
	done
	cmp -s "$T/a.csv" "$T/n.csv" || echo "NOTE: $label: the CSVs differ" >&2
	a=$(median <"$T/a")
	n=$(median <"$T/n")
	printf '| %s | %s | %s | %s |\n' "$label" "$a" "$n" \
		"$(awk -v a="$a" -v n="$n" 'BEGIN { if (a > 0) printf "%.2f", n / a; else print "-" }')"
}

echo "load average before: $(cat /proc/loadavg)"
echo
echo "| trace, algo | anchor CPU s | new CPU s | new/anchor |"
echo "|-------------|--------------|-----------|------------|"
# the bundled samples, and the generator's default trace (4 x 16384 pages, 10 snapshots a second apart),
# in format version 1 when the new build writes version 2 (an anchor before it reads only 1)
V1=()
"$N" help trace gen 2>&1 | grep -q -- --format-version && V1=(--format-version 1)
"$N" trace gen -o "$T/gen-default.sptrace" "${V1[@]}" >/dev/null
for tr in "$SAMPLES"/*.sptrace "$T/gen-default.sptrace"; do
	for algo in oracle zero ksm esx uksm cmd; do
		row "$(basename "$tr") $algo (20 runs)" 20 "$A" run --trace "$tr" --algo "$algo" -- \
			"$N" run --trace "$tr" --algo "$algo"
	done
done
# heavier scanning on the generated trace: pages_to_scan=4000 (millions of page visits)
for algo in zero ksm uksm cmd; do
	row "gen-default.sptrace $algo pages_to_scan=4000" 1 \
		"$A" run --trace "$T/gen-default.sptrace" --algo "$algo" --set pages_to_scan=4000 -- \
		"$N" run --trace "$T/gen-default.sptrace" --algo "$algo" --set pages_to_scan=4000
done
echo
"$N" trace gen -o "$T/gaps.sptrace" --guests 4 --pages 4096 --snapshots 4 --interval-ms 600000 >/dev/null
echo "| gaps.sptrace (4 x 4096 pages, 3 gaps of 600 s), algo | --no-skip CPU s | skip CPU s | skip/no-skip |"
echo "|------|------|------|------|"
for algo in oracle zero ksm cmd; do
	row "$algo (5 runs)" 5 "$N" run --no-skip --trace "$T/gaps.sptrace" --algo "$algo" -- \
		"$N" run --trace "$T/gaps.sptrace" --algo "$algo"
done
echo
echo "load average after: $(cat /proc/loadavg)"
