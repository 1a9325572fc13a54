#!/bin/bash
# Benchmark (issue 13): the cost model's CPU against ksmd's, like the counters.
# Each part takes /tmp/samepage-test.lock once (about 5 minutes): before each
# run it calibrates this host (`sim calibrate --save` into a file of its own,
# never the real costs file: the host drifts within minutes), then runs
# `sim validate` with those costs on one trace under the default tunables
# (pages_to_scan=100, sleep 20) or one of two aggressive sets (1000/20,
# 2000/10), and prints per run: ksmd's CPU against the modelled
# CPU (and the modelled CPU with the previous shipped defaults, by `sim run` on
# the same trace and tunables), full_scans kernel against simulated, the
# steady pages_sharing error, and the load average before and after.  The
# kernel's own figures in the same run are the anchor of every error.
# Needs root and KSM; every tunable is restored (validate and calibrate do,
# also on Ctrl-C).
# Usage: bench/bench_cost.sh [path/to/sim] PART...   PART: static, sample, writes
#        (results: bench/README.md "bench_cost.sh")
set -euo pipefail
SIM=$(realpath "${1:-build/sim}")
shift || true
[ $# -gt 0 ] || set -- static sample writes
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# the costs shipped before issue 13 (sim/cost.c), for the "old" column
OLD=visit=430,checksum=600,compare=600,tree_step=400,merge=1550,cow_break=3900,first_visit=0
export SIM_NO_PROGRESS=1

"$SIM" trace gen -o "$T/static.sptrace" --guests 4 --pages 4096 --snapshots 1 --seed 7 >/dev/null
"$SIM" trace gen -o "$T/writes.sptrace" --guests 4 --pages 4096 --snapshots 31 --interval-ms 2000 \
	--write-rate 0.05 --volatile-fraction 0.2 --seed 8 >/dev/null
cp "$ROOT/traces/samples/small.sptrace" "$T/sample.sptrace"

load() { cut -d' ' -f1-3 /proc/loadavg; }

# one validate run, calibrated just before (the host drifts within minutes):
# trace tunables-name p2s sleep duration sample
one() {
	local tr=$1 name=$2 p2s=$3 sleep=$4 dur=$5 sample=$6 out=$T/$1-$2.out l0 l1 old cal
	cal=$(SAMEPAGE_COSTS=$T/costs.conf "$SIM" calibrate --save 2>&1) ||
		{ echo "$tr $name: calibrate failed: $(tail -1 <<<"$cal")"; return 0; }
	echo "$tr $p2s/$sleep calibrated: $(grep '^--cost' <<<"$cal")" >>"$T/costs.log"
	l0=$(load)
	SAMEPAGE_COSTS=$T/costs.conf "$SIM" validate --trace "$T/$tr.sptrace" \
		--set pages_to_scan="$p2s" --set sleep_millisecs="$sleep" \
		--duration-ms "$dur" --sample-ms "$sample" -q >"$out" 2>&1 ||
		{ echo "$tr $name: validate failed: $(tail -1 "$out")"; return 0; }
	l1=$(load)
	# the same simulated side with the old shipped costs (deterministic, no KSM)
	old=$(SAMEPAGE_COSTS= "$SIM" run --trace "$T/$tr.sptrace" --algo ksm --kernel "$(uname -r)" \
		--set pages_to_scan="$p2s" --set sleep_millisecs="$sleep" --duration-ms "$dur" \
		--sample-ms "$sample" --cost "$OLD" | sed -n 's/^cpu *\([0-9.]*\) s.*/\1/p')
	awk -v tr="$tr" -v tun="$p2s/$sleep" -v old="$old" -v l0="$l0" -v l1="$l1" '
		/^steady/ { se = $8 }
		/^cpu / { kc = $3; sc = $6; ce = $9 }
		/^full_scans/ { kf = $3; sf = $5; fe = $7 }
		/^ksmd wait/ { w = $3 }
		/^warning/ { warn = " (another process had mergeable memory: redo)" }
		END { oe = kc > 0 ? sprintf("%+.1f%%", 100 * (old - kc) / kc) : "n/a"
		      printf "| %s | %s | %.3f | %.3f | %s | %.3f | %s | %s | %s | %s | %s | %s | %s / %s |%s\n",
			     tr, tun, kc, sc, ce, old, oe, kf, sf, fe, se, w, l0, l1, warn }' "$out"
}

part() {
	local tr=$1
	echo "## part $tr, $(date -u '+%F %T UTC'), Linux $(uname -r), load $(load)"
	: >"$T/costs.log"
	echo "| trace | p2s/sleep | ksmd cpu s | model s | error | old defaults s | error | kernel full_scans | sim | error | pages_sharing error | ksmd wait s | load before / after |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	one "$tr" default 100 20 120000 1000
	one "$tr" aggr1 1000 20 20000 500
	one "$tr" aggr2 2000 10 20000 500
	cat "$T/costs.log"
}

for p in "$@"; do
	case $p in
	static | sample | writes) ;;
	*) echo "unknown part '$p' (static, sample, writes)" >&2; exit 2 ;;
	esac
	exec 9>/tmp/samepage-test.lock
	flock 9 # each part holds the shared lock once, then lets the others in
	part "$p"
	flock -u 9
	exec 9>&-
done
