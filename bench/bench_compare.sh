#!/bin/bash
# Benchmark: `sim compare` of six algorithms (one decoded trace, parallel
# threads) against the same six runs one after another with `sim run`
# (issue target: compare takes at most 60% of the sequential wall time).
# Trace: 8 guests x 131072 pages (4 GiB), 30 snapshots.  The six are the
# registered algorithms when there are six (oracle zero ksm esx uksm cmd),
# else ksm variants fill the list through NAME@ALIAS entries.
# Usage: bench/bench_compare.sh [path/to/sim] [repetitions]   (results: bench/README.md)
set -euo pipefail
SIM=${1:-build/sim}
REPS=${2:-3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$SIM" trace gen -o "$T/big.sptrace" --guests 8 --pages 131072 --snapshots 30 --seed 1
mapfile -t REG < <("$SIM" list | awk '/^control policies/ { exit } /^[a-z]/ { print $1 }')
ALGOS=("${REG[@]:0:6}")
SETS=()
declare -A RUNSET=()
variants=(ksm@fast:pages_to_scan=1000 ksm@zero:use_zero_pages=1 ksm@nosmart:smart_scan=0)
while [ ${#ALGOS[@]} -lt 6 ]; do
	v=${variants[$(( ${#ALGOS[@]} - ${#REG[@]} ))]}
	ALGOS+=("${v%%:*}")
	SETS+=(--set "${v%%:*}.${v#*:}")
	RUNSET[${v%%:*}]=${v#*:}
done
list=$(IFS=,; echo "${ALGOS[*]}")
# wall, user and system seconds of a command, appended to file $1
timed() { local f=$1; shift; /usr/bin/time -a -o "$f" -f "%e %U %S" "$@"; }
echo "algorithms: $list; $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$REPS"); do
	: > "$T/seq.t"; : > "$T/cmp.t"
	for a in "${ALGOS[@]}"; do
		extra=()
		[ -n "${RUNSET[$a]:-}" ] && extra=(--set "${RUNSET[$a]}")
		timed "$T/seq.t" "$SIM" run --trace "$T/big.sptrace" --algo "${a%@*}" "${extra[@]}" -q --csv "$T/seq-$a.csv"
	done
	timed "$T/cmp.t" "$SIM" compare --trace "$T/big.sptrace" --algos "$list" "${SETS[@]}" --report "$T/cmp" -q
	# same series either way
	for a in "${ALGOS[@]}"; do cmp -s "$T/seq-$a.csv" "$T/cmp/$a.csv" || echo "warning: $a differs"; done
	awk -v r="$r" -v l="$(cut -d' ' -f1 /proc/loadavg)" '
		FILENAME ~ /seq.t$/ { sw += $1; sc += $2 + $3; next } { cw = $1; cc = $2 + $3 }
		END { printf "rep %d: six sim runs %.2f s wall (%.2f s CPU), sim compare %.2f s wall (%.2f s CPU, report included): %.0f%% (load %s)\n",
			r, sw, sc, cw, cc, 100 * cw / sw, l }' "$T/seq.t" "$T/cmp.t"
done
