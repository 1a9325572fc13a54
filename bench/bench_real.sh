#!/bin/bash
# Benchmark: live merging (issue 5).  On generated traces, `sim real replay`
#  1. --mechanism user (the ksm algorithm through the live backend) against
#     the pages_sharing `sim run` predicts, and its measured RSS against
#     present - pages_sharing;
#  2. the same replay with --mechanism kernel (the kernel's KSM, same
#     tunables): pages saved, and pages scanned per CPU-second of the engine
#     thread and of ksmd on a trace whose pages are mostly unique.
# Needs root, userfaultfd and KSM; about 4 minutes; run on an idle machine.
# Usage: bench/bench_real.sh [path/to/sim]   (results: bench/README.md)
set -euo pipefail
SIM=${1:-build/sim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SIM_NO_PROGRESS=1
col() { head -1 "$1" | tr , '\n' | grep -nx "$2" | cut -d: -f1; }
last() { tail -1 "$1" | cut -d, -f"$(col "$1" "$2")"; }
uptime

# 1 + 2: 4 guests x 64 MiB, half of the pages copies (the generator's defaults), writes every 2 s.
"$SIM" trace gen -o "$T/f.sptrace" --guests 4 --pages 16384 --snapshots 6 --interval-ms 2000 --seed 11
SET="--set pages_to_scan=5000 --set sleep_millisecs=20"
DUR=40000
# shellcheck disable=SC2086
"$SIM" run --trace "$T/f.sptrace" --algo ksm $SET --duration-ms $DUR --csv "$T/sim.csv" -q >/dev/null
for mech in user kernel; do
	# shellcheck disable=SC2086
	"$SIM" real replay --trace "$T/f.sptrace" --algo ksm --mechanism $mech $SET --duration-ms $DUR \
		--csv "$T/$mech.csv" -q > "$T/$mech.out" 2>&1 || { cat "$T/$mech.out"; exit 1; }
	echo "--- $mech"; cat "$T/$mech.out"
done
s=$(last "$T/sim.csv" pages_sharing)
u=$(last "$T/user.csv" pages_sharing)
k=$(last "$T/kernel.csv" pages_sharing)
echo
echo "fidelity (4 x 64 MiB, $SET, $((DUR / 1000)) s)"
awk -v s="$s" -v u="$u" -v k="$k" 'BEGIN {
	printf "  pages_sharing  sim run %d  live user %d (%+.2f%%)  kernel KSM %d (user vs kernel %+.2f%%)\n",
		s, u, 100 * (u - s) / s, k, 100 * (u - k) / k }'
grep -h "^memory" "$T/user.out" "$T/kernel.out" | sed 's/^/  /'

# 3: mostly unique pages (5% copies), aggressive scanning: pages per CPU-second.
"$SIM" trace gen -o "$T/u.sptrace" --guests 4 --pages 16384 --snapshots 1 --shared-fraction 0.05 \
	--zero-fraction 0 --seed 12
SET="--set pages_to_scan=10000 --set sleep_millisecs=0"
for mech in user kernel; do
	# shellcheck disable=SC2086
	"$SIM" real replay --trace "$T/u.sptrace" --algo ksm --mechanism $mech $SET --duration-ms 20000 \
		--csv "$T/u$mech.csv" -q > "$T/u$mech.out" 2>&1 || { cat "$T/u$mech.out"; exit 1; }
done
echo
echo "scan rate, mostly unique pages (4 x 64 MiB, 5% copies, $SET, 20 s)"
for mech in user kernel; do
	sc=$(last "$T/u$mech.csv" pages_scanned); cpu=$(last "$T/u$mech.csv" measured_cpu_ns)
	sh=$(last "$T/u$mech.csv" pages_sharing)
	awk -v m="$mech" -v sc="$sc" -v cpu="$cpu" -v sh="$sh" 'BEGIN {
		printf "  %-6s pages_scanned %10d  cpu %6.2f s  %9.0f pages per CPU-second  pages_sharing %d\n",
			m, sc, cpu / 1e9, sc / (cpu / 1e9), sh }'
done
uptime
