#!/bin/bash
# Benchmark: the `ksm` model against the kernel's KSM on this machine.
# For each generated trace and tunable set, `sim validate` runs kernel KSM on
# the materialised trace, then the simulator, and reports the error of the
# steady-state pages_sharing and of the time to reach 90% of it.
# Needs root and KSM; takes about 15 minutes; run on an idle machine.
# Usage: bench/bench_validate.sh [path/to/sim]   (results: bench/README.md)
#        ONLY='1GiB-writes aggressive' bench/bench_validate.sh ...   (a regex: some runs)
set -euo pipefail
SIM=${1:-build/sim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
AGGR="--set pages_to_scan=5000 --set sleep_millisecs=0"

printf "%-34s %-10s %10s %10s %7s %8s %8s %7s\n" trace tunables "k sharing" "s sharing" err "k t90" "s t90" err
run() { # name genargs tunables duration sample
	local name=$1 gen=$2 tun=$3 dur=$4 sample=$5 set=""
	[[ "$name $tun" =~ ${ONLY:-.} ]] || return 0
	[ "$tun" = aggressive ] && set=$AGGR
	# shellcheck disable=SC2086
	"$SIM" trace gen -o "$T/$name.sptrace" $gen
	# shellcheck disable=SC2086
	"$SIM" validate --trace "$T/$name.sptrace" $set --duration-ms "$dur" --sample-ms "$sample" -q \
		> "$T/out" 2>&1 || { echo "$name $tun: validate failed: $(tail -1 "$T/out")"; return; }
	awk -v n="$name" -v t="$tun" '
		/^steady/ { ks = $4; ss = $6; se = $8 }
		/^to 90%/ { kt = $4; st = $7; te = $10 }
		END { printf "%-34s %-10s %10s %10s %7s %7ss %7ss %7s\n", n, t, ks, ss, se, kt, st, te }' "$T/out"
	grep -q "other mergeable" "$T/out" && grep "other mergeable" "$T/out" || true
}

S256="--guests 4 --pages 16384"
S1G="--guests 4 --pages 65536"
STATIC="--snapshots 1 --seed 7"
WRITES="--snapshots 8 --interval-ms 5000 --write-rate 0.05 --volatile-fraction 0.2 --seed 8"

run 256MiB-static "$S256 $STATIC" aggressive 30000 100
run 256MiB-static "$S256 $STATIC" default 60000 500
run 256MiB-writes "$S256 $WRITES" aggressive 50000 100
run 256MiB-writes "$S256 $WRITES" default 100000 500
run 1GiB-static "$S1G $STATIC" aggressive 40000 100
run 1GiB-static "$S1G $STATIC" default 200000 1000
run 1GiB-writes "$S1G $WRITES" aggressive 60000 100
run 1GiB-writes "$S1G $WRITES" default 240000 1000
