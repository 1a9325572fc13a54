#!/bin/bash
# Benchmark: live merging (issues 5 and 15).  The ksm algorithm through the
# live backend (`sim real replay --mechanism user`) against the kernel's KSM
# (`--mechanism kernel`) on the same live memory (the same trace, its writes
# replayed on the wall clock) with the same tunables, pages_to_scan=2000
# sleep_millisecs=20 (ksmd, its batches slower, then makes fewer visits a second: CPU per visit is
# the like-for-like figure, printed after each table):
#  1. mostly unique pages (5% copies) with writes: CPU-seconds of the engine
#     thread and of ksmd over the run, final pages_sharing, time to 90% of it;
#     the engine with write tracking (write_tracking=1) and hashing every
#     visit (write_tracking=0);
#  2. half the pages shared, with writes: the same, and the CPU of the steady
#     state (from 10 s to the end);
#  3. merges: µs per merge and VMAs per merged page, in runs and with
#     --no-runs, on the trace of 2 and on a replay of the recorded QEMU sample;
#  4. fidelity: sim run's pages_sharing against the live engine's.
# The engine runs with COW events (merged pages' COW breaks found by write
# tracking's scans, or as write faults a thread answers without tracking,
# not polled; `sim real replay --cow-poll` to compare).
# Needs root, userfaultfd and KSM (parts 1 and 2 write /sys/kernel/mm/ksm:
# run them under `flock /tmp/samepage-test.lock` on a shared machine, about
# 2.5 minutes each; parts 3 and 4 leave KSM alone).
# Usage: bench/bench_real.sh [path/to/sim [PART...]]   (PART: 1 2 3 4, default all;
#        results: bench/README.md).  SIM_BEFORE=path/to/another/sim adds its
#        engine with write tracking to parts 1 and 2 (row "before"), for a
#        before/after comparison in one run.  With it, PAIRS=N (N > 1) runs
#        N alternating pairs (rows track, before, track2, before2, ...) and no
#        "hash" row, and prints each pair's means.  KEEP=dir keeps the runs'
#        CSVs and outputs there (a "tracking" line per row is printed).
#        Rows "paced1" and "paced" (PACED=0: left out): the engine with write
#        tracking at ksmd's visits a second, run after ksmd's row with
#        pages_to_scan scaled by ksmd's visits a second over the engine's
#        ("track") from 10 s, then once more over paced1's: the issue's
#        premise (the same visits a second) made true, so CPU over the run
#        and pages_sharing compare like for like.  SAMPLE_MS: the sample
#        period (default 100 ms; t90 interpolates between samples).
#        "host before/after": build/flush_cost's prices of a system call and
#        of a TLB flush at the start and the end (which machine a figure is from).
set -euo pipefail
SIM=${1:-build/sim}
shift || true
PARTS=" ${*:-1 2 3 4} "
part() { [[ $PARTS == *" $1 "* ]]; }
SAMPLE=$(dirname "$0")/../traces/samples/qemu4x512.sptrace
T=$(mktemp -d)
trap 'if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp "$T"/*.csv "$T"/*.out "$KEEP"/ 2>/dev/null; fi; rm -rf "$T"' EXIT
export SIM_NO_PROGRESS=1
col() { head -1 "$1" | tr , '\n' | grep -nx "$2" | cut -d: -f1; }
last() { tail -1 "$1" | cut -d, -f"$(col "$1" "$2")"; }
# Time (s) at which column pages_sharing reaches 90% of its final value: between the last
# sample below it and the first at or above it, interpolated linearly (a sample's resolution,
# SAMPLE_MS, is 5% of a ~2 s t90 at 100 ms; the samples alone would say the first at or above).
t90() {
	awk -F, -v c="$(col "$1" pages_sharing)" 'NR > 1 { t[NR] = $1; v[NR] = $c; n = NR }
		END { g = 0.9 * v[n]
			for (i = 2; i <= n; i++) if (v[i] >= g) {
				x = t[i]
				if (i > 2 && v[i] > v[i - 1]) x = t[i - 1] + (t[i] - t[i - 1]) * (g - v[i - 1]) / (v[i] - v[i - 1])
				printf "%.3f", x / 1000; exit } }' "$1"
}
# CPU seconds from the first sample at or after $2 ms to the last.
cpu_from() {
	awk -F, -v c="$(col "$1" measured_cpu_ns)" -v t0="$2" 'NR > 1 && $1 >= t0 && !s { s = 1; a = $c }
		NR > 1 { b = $c } END { printf "%.3f", (b - a) / 1e9 }' "$1"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
P2S=2000
SAMPLE_MS=${SAMPLE_MS:-100}
SET="--set pages_to_scan=$P2S --set sleep_millisecs=20"
DUR=30000
# replay NAME TRACE MECHANISM [extra args]: $T/NAME.csv and $T/NAME.out
replay() {
	local name=$1 trace=$2 mech=$3 sim=$SIM
	shift 3
	if [[ $name == *.before* ]]; then sim=$SIM_BEFORE; fi
	# shellcheck disable=SC2086
	"$sim" real replay --trace "$trace" --algo ksm --mechanism "$mech" $SET --duration-ms $DUR \
		--sample-ms "$SAMPLE_MS" --csv "$T/$name.csv" -q "$@" >"$T/$name.out" 2>&1 ||
		{ cat "$T/$name.out"; exit 1; }
	echo "  $name done (load $(load))"
}
# table TITLE STEADY_FROM_MS NAME...: one row per run, ratios against the kernel's.
table() {
	local title=$1 from=$2
	shift 2
	local kcpu ksh kt90 kss
	kcpu=$(last "$T/$title.kernel.csv" measured_cpu_ns)
	ksh=$(last "$T/$title.kernel.csv" pages_sharing)
	kt90=$(t90 "$T/$title.kernel.csv")
	kss=$(cpu_from "$T/$title.kernel.csv" "$from")
	printf "| %-22s | %13s | %9s | %9s | %11s | %15s | %11s |\n" run pages_sharing "t90 (s)" "CPU (s)" \
		"CPU / ksmd" "CPU from $((from / 1000)) s" "/ ksmd"
	for n in "$@"; do
		local f="$T/$title.$n.csv"
		awk -v n="$n" -v sh="$(last "$f" pages_sharing)" -v t="$(t90 "$f")" \
			-v cpu="$(last "$f" measured_cpu_ns)" -v ss="$(cpu_from "$f" "$from")" \
			-v ksh="$ksh" -v kt="$kt90" -v kcpu="$kcpu" -v kss="$kss" 'BEGIN {
			printf "| %-22s | %6d (%+.2f%%) | %5.3f (%+.1f%%) | %9.3f | 1/%-9.1f | %15.3f | 1/%-9.1f |\n",
				n, sh, 100 * (sh - ksh) / ksh, t, (kt > 0 ? 100 * (t - kt) / kt : 0), cpu / 1e9,
				kcpu / cpu, ss, kss / (ss > 0 ? ss : 1e-9) }'
	done
}
# Column $3's rate (per s) from the first sample at or after $2 ms to the last.
rate_from() {
	awk -F, -v c="$(col "$1" "$3")" -v t0="$2" 'NR > 1 && $1 >= t0 && !s { s = 1; a = $c; ta = $1 }
		NR > 1 { b = $c; tb = $1 } END { printf "%.0f", (tb > ta ? (b - a) * 1000 / (tb - ta) : 0) }' "$1"
}
# visits TITLE STEADY_FROM_MS NAME...: visits a second (pages_scanned: skipped pages apart, as
# ksmd counts them) and CPU per visit from the steady start, ratios against ksmd's.  The same
# tunables do not give the same visits a second: sleep_millisecs counts from a batch's end, so
# the faster batches of the engine make more of them; CPU per visit compares like for like.
visits() {
	local title=$1 from=$2
	shift 2
	local kv kss
	kv=$(rate_from "$T/$title.kernel.csv" "$from" pages_scanned)
	kss=$(cpu_from "$T/$title.kernel.csv" "$from")
	printf "| %-22s | %18s | %9s | %18s | %11s |\n" run "visits/s from $((from / 1000)) s" "/ ksmd" \
		"ns/visit from $((from / 1000)) s" "/ ksmd"
	for n in "$@"; do
		local f="$T/$title.$n.csv"
		awk -v n="$n" -v v="$(rate_from "$f" "$from" pages_scanned)" -v ss="$(cpu_from "$f" "$from")" \
			-v dur="$(((DUR - from) / 1000))" -v kv="$kv" -v kss="$kss" 'BEGIN {
			pv = v > 0 ? ss * 1e9 / (v * dur) : 0; kpv = kv > 0 ? kss * 1e9 / (kv * dur) : 0
			printf "| %-22s | %18d | %9.2f | %18.0f | 1/%-9.1f |\n", n, v, (kv > 0 ? v / kv : 0),
				pv, (pv > 0 ? kpv / pv : 0) }'
	done
}
summary() { grep -h "^live\|^vmas\|^tracking\|^cow" "$T/$1.out" | sed 's/^/    /'; }

# What a system call and a TLB flush cost now (build/flush_cost beside the sim, or beside this
# script's build): the engine's merges and scans pay flushes that ksmd does not, and on this VM
# their price moves ~5x within minutes and more between boots; printed before and after.
FLUSH_COST=$(dirname "$SIM")/flush_cost
[[ -x $FLUSH_COST ]] || FLUSH_COST=$(dirname "$0")/../build/flush_cost
host() { [[ ! -x $FLUSH_COST ]] || echo "host $1: $("$FLUSH_COST")"; }
echo "load before: $(load); $(uname -r); parts:$PARTS"
host before
ROWS="track hash kernel"
PAIRS=${PAIRS:-1}
if [[ -n ${SIM_BEFORE:-} ]]; then
	ROWS="track before hash kernel"
	if ((PAIRS > 1)); then
		ROWS="track before"
		for ((i = 2; i <= PAIRS; i++)); do ROWS="$ROWS track$i before$i"; done
		ROWS="$ROWS kernel"
	fi
fi
# engine_rows TITLE TRACE: the rows of ROWS run through the live engine, in order.
engine_rows() {
	for n in $ROWS; do
		case $n in
		kernel | paced*) ;;
		hash) replay "$1.hash" "$2" user --set write_tracking=0 ;;
		*) replay "$1.$n" "$2" user --set write_tracking=1 ;;
		esac
	done
}
# means TITLE: with pairs, the mean of the track rows and of the before rows (CPU, CPU from 10 s).
means() {
	((PAIRS > 1)) || return 0
	local t="" b=""
	for n in $ROWS; do
		case $n in
		track*) t="$t $(last "$T/$1.$n.csv" measured_cpu_ns) $(cpu_from "$T/$1.$n.csv" 10000) $(last "$T/$1.$n.csv" pages_sharing)" ;;
		before*) b="$b $(last "$T/$1.$n.csv" measured_cpu_ns) $(cpu_from "$T/$1.$n.csv" 10000) $(last "$T/$1.$n.csv" pages_sharing)" ;;
		esac
	done
	echo
	for x in "track:$t" "before:$b"; do
		echo "${x#*:}" | awk -v n="${x%%:*}" '{ for (i = 1; i <= NF; i += 3) { c += $i; s += $(i + 1); p += $(i + 2); k++ } }
			END { printf "mean of %d %-6s: CPU %.3f s, from 10 s %.3f s, pages_sharing %.0f\n", k, n, c / k / 1e9, s / k, p / k }'
	done
}
# trackline TITLE: each engine row's "tracking" line (KEEP set).
trackline() {
	[[ -n ${KEEP:-} ]] || return 0
	for n in $ROWS; do
		if [[ -f $T/$1.$n.out ]] && grep -q "^tracking" "$T/$1.$n.out"; then
			grep -h "^tracking" "$T/$1.$n.out" | sed "s/^/  $n: /"
		fi
	done
	return 0
}

# rescale N KSMD_RATE CSV: pages_to_scan N scaled by ksmd's visits a second over the run CSV's
# (from 10 s), at least 1.
rescale() {
	awk -v n="$1" -v k="$2" -v e="$(rate_from "$3" 10000 pages_scanned)" \
		'BEGIN { p = int(n * k / (e > 0 ? e : k) + 0.5); print (p < 1 ? 1 : p) }'
}
# paced TITLE TRACE: the rows "paced1" and "paced" (see PACED above).  The engine's visits a second
# do not scale with pages_to_scan (batches that end a full scan are cut short, and shorter
# batches cross fewer tick boundaries), so the first step (paced1: P2S scaled by ksmd's visits a
# second over track's) lands off ksmd's rate (1.14 of it at the stop-28 anchor); the second
# (paced) scales paced1's pages_to_scan by ksmd's visits a second over paced1's.
paced() {
	[[ ${PACED:-1} != 0 ]] || return 0
	local kv pts1 pts
	kv=$(rate_from "$T/$1.kernel.csv" 10000 pages_scanned)
	pts1=$(rescale "$P2S" "$kv" "$T/$1.track.csv")
	replay "$1.paced1" "$2" user --set write_tracking=1 --set pages_to_scan="$pts1"
	pts=$(rescale "$pts1" "$kv" "$T/$1.paced1.csv")
	echo "$pts1 $pts" >"$T/$1.paced.pts"
	replay "$1.paced" "$2" user --set write_tracking=1 --set pages_to_scan="$pts"
}
if [[ ${PACED:-1} != 0 ]]; then ROWS="$ROWS paced1 paced"; fi
# pacing TITLE: the paced rows' pages_to_scan and the engine's CPU at ksmd's rate (at_rate).
pacing() {
	local p1 p2
	[[ -f $T/$1.paced.pts ]] || return 0
	read -r p1 p2 <"$T/$1.paced.pts"
	echo "paced1: pages_to_scan=$p1 (ksmd's visits a second over track's, from 10 s, x $P2S); paced: $p2 (over paced1's, x $p1)"
	at_rate "$1"
}
# at_rate TITLE: the engine's CPU (over the run, from 10 s) at exactly ksmd's visits a second,
# linear between paced1 and paced (neither lands on it: the rate moves in steps with pages_to_scan).
at_rate() {
	[[ -f $T/$1.paced.csv && -f $T/$1.paced1.csv ]] || return 0
	awk -v kv="$(rate_from "$T/$1.kernel.csv" 10000 pages_scanned)" \
		-v v1="$(rate_from "$T/$1.paced1.csv" 10000 pages_scanned)" \
		-v v2="$(rate_from "$T/$1.paced.csv" 10000 pages_scanned)" \
		-v c1="$(last "$T/$1.paced1.csv" measured_cpu_ns)" -v c2="$(last "$T/$1.paced.csv" measured_cpu_ns)" \
		-v s1="$(cpu_from "$T/$1.paced1.csv" 10000)" -v s2="$(cpu_from "$T/$1.paced.csv" 10000)" \
		-v kc="$(last "$T/$1.kernel.csv" measured_cpu_ns)" -v ks="$(cpu_from "$T/$1.kernel.csv" 10000)" 'BEGIN {
		if (v1 == v2) exit
		f = (kv - v1) / (v2 - v1); c = (c1 + (c2 - c1) * f) / 1e9; x = s1 + (s2 - s1) * f
		printf "at ksmd'"'"'s visits a second (%d; %s between paced1 and paced): CPU %.3f s (1/%.1f of ksmd'"'"'s), from 10 s %.3f s (1/%.1f)\n",
			kv, (f >= 0 && f <= 1 ? "linear" : "extrapolated"), c, kc / 1e9 / c, x, ks / x }'
}

# 1: mostly unique pages, 5% copies, 20% of the pages volatile (5% rewritten every 2 s).
if part 1; then
	"$SIM" trace gen -o "$T/u.sptrace" --guests 4 --pages 16384 --snapshots 15 --interval-ms 2000 \
		--shared-fraction 0.05 --zero-fraction 0 --seed 12 >/dev/null
	engine_rows u "$T/u.sptrace"
	replay u.kernel "$T/u.sptrace" kernel
	paced u "$T/u.sptrace"
fi

# 2: half the pages shared (the generator's default), the same writes.
if part 2 || part 3 || part 4; then
	"$SIM" trace gen -o "$T/h.sptrace" --guests 4 --pages 16384 --snapshots 15 --interval-ms 2000 \
		--seed 11 >/dev/null
fi
if part 2; then
	engine_rows h "$T/h.sptrace"
	replay h.kernel "$T/h.sptrace" kernel
	paced h "$T/h.sptrace"
fi

# 3: merges on the trace of 2 with and without runs, and on the recorded QEMU sample.
if part 3; then
	[[ -f $T/h.track.out ]] || replay h.track "$T/h.sptrace" user --set write_tracking=1
	replay h.noruns "$T/h.sptrace" user --set write_tracking=1 --no-runs
	DUR=20000
	replay q.runs "$SAMPLE" user --set write_tracking=1
	replay q.noruns "$SAMPLE" user --set write_tracking=1 --no-runs
	DUR=30000
fi

# 4: the simulator's prediction for the trace of 2.
if part 4; then
	[[ -f $T/h.track.out ]] || replay h.track "$T/h.sptrace" user --set write_tracking=1
	# shellcheck disable=SC2086
	"$SIM" run --trace "$T/h.sptrace" --algo ksm $SET --duration-ms $DUR --csv "$T/h.sim.csv" -q >/dev/null
fi

echo "load after: $(load)"
host after
if part 1; then
	echo
	echo "1 - mostly unique pages (4 x 64 MiB, 5% copies, writes every 2 s), $SET, $((DUR / 1000)) s"
	# shellcheck disable=SC2086
	table u 10000 $ROWS
	echo
	# shellcheck disable=SC2086
	visits u 10000 $ROWS
	means u
	pacing u
	trackline u
fi
if part 2; then
	echo
	echo "2 - half the pages shared (4 x 64 MiB, writes every 2 s), $SET, $((DUR / 1000)) s"
	# shellcheck disable=SC2086
	table h 10000 $ROWS
	echo
	# shellcheck disable=SC2086
	visits h 10000 $ROWS
	means h
	pacing h
	trackline h
fi
if part 3; then
	echo
	echo "3 - merges"
	for n in h.track h.noruns q.runs q.noruns; do
		echo "  $n"
		summary "$n"
	done
fi
if part 4; then
	echo
	s=$(last "$T/h.sim.csv" pages_sharing)
	u=$(last "$T/h.track.csv" pages_sharing)
	awk -v s="$s" -v u="$u" 'BEGIN {
		printf "4 - fidelity: pages_sharing sim run %d, live engine %d (%+.2f%%)\n", s, u, 100 * (u - s) / s }'
fi
