#!/bin/bash
# Benchmark: `sim trace record` throughput -- GB/s of memory read and
# fingerprinted on one core (the recorder is single-threaded; issue target:
# >= 1.5 GB/s), for the two ways of reading another process's memory
# (/proc/PID/mem pread and process_vm_readv), keyed and unkeyed.
#   1. a local process holding 1 GiB of non-zero memory (no QEMU needed);
#   2. if qemu-system-x86_64 is there: 4 real guests x 512 MiB booted by
#      traces/guestkit (TCG or KVM), running their workload while recorded.
# GB/s = page bytes read / wall time spent reading + hashing them (printed by
# `sim trace record`); "cpu" is the user+sys time of the whole command.
# Usage (root): bench/bench_record.sh [path/to/sim]   (results: bench/README.md)
set -euo pipefail
SIM=${1:-build/sim}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
HELPER= GUESTPIDS=()
cleanup() {
	[ -n "$HELPER" ] && kill "$HELPER" 2>/dev/null || true
	for p in "${GUESTPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

run() { # label, record args...
	local label=$1; shift
	for i in 1 2 3; do
		/usr/bin/time -f "%U %S" -o "$T/time" "$SIM" trace record -o "$T/b.sptrace" "$@" > "$T/out"
		read -r mib secs gbs < <(sed -E 's/.* ([0-9.]+) MiB read and fingerprinted in ([0-9.]+) s \(([0-9.]+) GB\/s\).*/\1 \2 \3/' "$T/out")
		read -r usr sys < "$T/time"
		awk -v l="$label" -v i="$i" -v m="$mib" -v s="$secs" -v g="$gbs" -v u="$usr" -v y="$sys" 'BEGIN {
			printf "%-28s run %d: %7.0f MiB in %.3f s = %.2f GB/s (cpu %.2f s)\n", l, i, m, s, g, u + y }'
	done
}

echo "== 1. a process with 1 GiB of non-zero memory, 5 snapshots"
python3 -c '
import os, sys, time
b = bytearray(os.urandom(1 << 20)) * 1024
sys.stdout.write("ready\n"); sys.stdout.flush()
time.sleep(3600)' > "$T/helper.out" &
HELPER=$!
until grep -q ready "$T/helper.out" 2>/dev/null; do sleep 0.2; done
for reader in vm_readv mem; do
	run "pid, $reader, keyed" --pid "$HELPER" --count 5 --interval-ms 1 --reader "$reader"
	run "pid, $reader, unkeyed" --pid "$HELPER" --count 5 --interval-ms 1 --reader "$reader" --no-salt
done
kill "$HELPER"; HELPER=

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "== 2. skipped: no qemu-system-x86_64"
	exit 0
fi
echo "== 2. 4 QEMU guests x 512 MiB (traces/guestkit), 5 snapshots, guests running"
"$ROOT/traces/guestkit/guestkit.sh" --boot-only --guests 4 --mem 512 > "$T/guests"
pidargs=()
while read -r _ _ pid _ sock; do GUESTPIDS+=("$pid"); pidargs+=(--pid "$pid"); RUNDIR=$(dirname "$sock"); done < "$T/guests"
trap 'cleanup; rm -rf "$RUNDIR"' EXIT
sleep 5
for reader in vm_readv mem; do
	run "qemu, $reader, keyed" --qemu "${pidargs[@]}" --count 5 --interval-ms 1 --reader "$reader"
done
run "qemu, vm_readv, keyed, --pause" --qemu "${pidargs[@]}" --count 5 --interval-ms 1 --pause
