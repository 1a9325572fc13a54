#!/bin/bash
# Benchmark (issue 13): the cost model's CPU against ksmd's, like the counters.
# For each trace (PART) and tunables set - the defaults (pages_to_scan=100,
# sleep 20, 120 s) and two aggressive sets (1000/20, 2000/10, 20 s) - it
# takes /tmp/samepage-test.lock once (at most ~7.5 minutes), calibrates this
# host (`sim calibrate --save` into a file of its own, never the real costs
# file: the host drifts within minutes), then runs `sim validate` with those
# costs REPEAT times in a row (default 3: ksmd's own CPU varies by a quarter
# from run to run) and prints per run: ksmd's CPU against the modelled CPU,
# the modelled CPU without batch_read (the same costs, batch_read=0) and with
# the costs shipped before issue 13 (both by `sim run` on the same trace and
# tunables), full_scans kernel against simulated, the steady pages_sharing
# error, ksmd's wait for a CPU, and the load average before and after; then
# the median and range of the CPU and full_scans errors over the runs.  The
# kernel's own figures in the same run are the anchor of every error.
# Needs root and KSM; every tunable is restored (validate and calibrate do,
# also on Ctrl-C).
# Usage: [REPEAT=N] bench/bench_cost.sh [path/to/sim] PART...
#        PART: static, sample, writes  (results: bench/README.md "bench_cost.sh")
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

REPEAT=${REPEAT:-3}

# the modelled cpu (s) of `sim run` on the simulated side: trace p2s sleep duration sample cost-args...
model_cpu() {
	local tr=$1 p2s=$2 sleep=$3 dur=$4 sample=$5
	shift 5
	"$SIM" run --trace "$T/$tr.sptrace" --algo ksm --kernel "$(uname -r)" \
		--set pages_to_scan="$p2s" --set sleep_millisecs="$sleep" --duration-ms "$dur" \
		--sample-ms "$sample" "$@" | sed -n 's/^cpu *\([0-9.]*\) s.*/\1/p'
}

# One tunables set, holding the lock: calibrate, then REPEAT validate runs
# (trace p2s sleep duration sample); a row per run, then the median and range.
row() {
	local tr=$1 p2s=$2 sleep=$3 dur=$4 sample=$5 out=$T/$1-$2.out l0 l1 old nob cal r
	cal=$(SAMEPAGE_COSTS=$T/costs.conf "$SIM" calibrate --save 2>&1) ||
		{ echo "$tr $p2s/$sleep: calibrate failed: $(tail -1 <<<"$cal")"; return 0; }
	echo "$tr $p2s/$sleep calibrated ($(date -u +%T), load $(load)): $(grep '^--cost' <<<"$cal")" >>"$T/costs.log"
	# deterministic (no KSM): the old shipped costs, and these costs without batch_read
	old=$(SAMEPAGE_COSTS= model_cpu "$tr" "$p2s" "$sleep" "$dur" "$sample" --cost "$OLD")
	nob=$(SAMEPAGE_COSTS=$T/costs.conf model_cpu "$tr" "$p2s" "$sleep" "$dur" "$sample" --cost batch_read=0)
	: >"$T/errs"
	for r in $(seq "$REPEAT"); do
		l0=$(load)
		SAMEPAGE_COSTS=$T/costs.conf "$SIM" validate --trace "$T/$tr.sptrace" \
			--set pages_to_scan="$p2s" --set sleep_millisecs="$sleep" \
			--duration-ms "$dur" --sample-ms "$sample" -q >"$out" 2>&1 ||
			{ echo "$tr $p2s/$sleep run $r: validate failed: $(tail -1 "$out")"; continue; }
		l1=$(load)
		awk -v tr="$tr" -v tun="$p2s/$sleep" -v r="$r" -v old="$old" -v nob="$nob" -v l0="$l0" \
			-v l1="$l1" -v errs="$T/errs" '
			/^steady/ { se = $8 }
			/^cpu / { kc = $3; sc = $6; ce = $9 }
			/^full_scans/ { kf = $3; sf = $5; fe = $7 }
			/^ksmd wait/ { w = $3 }
			/^warning/ { warn = " (another process had mergeable memory: redo)" }
			function err(m) { return kc > 0 ? sprintf("%+.1f%%", 100 * (m - kc) / kc) : "n/a" }
			END { printf "| %s | %s | %s | %.3f | %.3f | %s | %.3f | %s | %.3f | %s | %s | %s | %s | %s | %s | %s / %s |%s\n",
				     tr, tun, r, kc, sc, ce, nob, err(nob), old, err(old), kf, sf, fe, se, w, l0, l1, warn
			      printf "%s %s\n", ce, fe >>errs }' "$out"
	done
	# the median and range of the errors over the runs
	awk -v tr="$tr" -v tun="$p2s/$sleep" '
		{ c[NR] = $1 + 0; f[NR] = $2 + 0 }
		function med(a, n,  i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
		END { if (NR) { mc = med(c, NR); lc = c[1]; hc = c[NR]; mf = med(f, NR); lf = f[1]; hf = f[NR]
			printf "| %s | %s | median of %d | | | **%+.1f%%** (%+.1f … %+.1f) | | | | | | | **%+.1f%%** (%+.1f … %+.1f) | | | |\n",
			       tr, tun, NR, mc, lc, hc, mf, lf, hf } }' "$T/errs"
}

part() {
	local tr=$1 set
	echo "## part $tr, $(date -u '+%F %T UTC'), Linux $(uname -r), load $(load), $REPEAT runs a row"
	: >"$T/costs.log"
	echo "| trace | p2s/sleep | run | ksmd cpu s | model s | error | no batch_read s | error | old defaults s | error | kernel full_scans | sim | error | pages_sharing error | ksmd wait s | load before / after |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for set in "100 20 120000 1000" "1000 20 20000 500" "2000 10 20000 500"; do
		exec 9>/tmp/samepage-test.lock
		flock 9 # each row holds the shared lock once, then lets the others in
		# shellcheck disable=SC2086
		row "$tr" $set
		flock -u 9
		exec 9>&-
	done
	cat "$T/costs.log"
}

for p in "$@"; do
	case $p in
	static | sample | writes) ;;
	*) echo "unknown part '$p' (static, sample, writes)" >&2; exit 2 ;;
	esac
	part "$p"
done
