#!/bin/bash
# Every corrupted copy of a shipped sample trace is rejected by `sim trace
# check` with exit 3 and a message naming the offset; `sim trace info` and
# `sim run` reject it too (checked on every 8th copy); no command is ever
# killed by a signal.
set -uo pipefail
SIM=$1
SAMPLES=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0 copies=0

expect_rejected() { # file what
	local out rc
	out=$("$SIM" trace check "$1" 2>&1); rc=$?
	if [ $rc -ne 3 ] || ! grep -q offset <<<"$out"; then
		echo "FAIL ($2): check exit $rc: $out"; fail=1
	fi
	# The other commands too, on every 8th copy (a replay of a large sample takes a while).
	[ $((copies % 8)) -eq 0 ] || { copies=$((copies + 1)); return; }
	for cmd in "trace info $1" "run --trace $1 --algo oracle -q --csv $T/out.csv"; do
		out=$($SIM $cmd 2>&1 >/dev/null); rc=$?
		if [ $rc -ge 128 ] || [ $rc -eq 0 ]; then
			echo "FAIL ($2): 'sim $cmd' exit $rc: $out"; fail=1
		fi
	done
	if [ -e "$T/out.csv" ]; then echo "FAIL ($2): a CSV was left behind"; fail=1; rm -f "$T/out.csv"; fi
	copies=$((copies + 1))
}

for s in "$SAMPLES"/*.sptrace; do
	"$SIM" trace check "$s" >/dev/null || { echo "FAIL: $s is not sound"; exit 1; }
	size=$(stat -c %s "$s")
	# truncations: 40 spread over the file, and every length in the last 40 bytes
	for n in $(seq 0 $((size / 40)) $((size - 1))) $(seq $((size - 40)) $((size - 1))); do
		head -c "$n" "$s" > "$T/cut.sptrace"
		expect_rejected "$T/cut.sptrace" "$(basename "$s") cut to $n"
	done
	# flipped bytes: 60 offsets spread over the file, and the first 64
	for off in $(seq 0 $((size / 60)) $((size - 1))) $(seq 0 63); do
		cp "$s" "$T/flip.sptrace"
		b=$(od -An -tu1 -j "$off" -N1 "$s" | tr -d ' ')
		printf "$(printf '\\%03o' $(( (b ^ 0x5a) & 255 )))" |
			dd of="$T/flip.sptrace" bs=1 seek="$off" conv=notrunc status=none
		expect_rejected "$T/flip.sptrace" "$(basename "$s") byte $off flipped"
	done
done
echo "$copies corrupted copies checked"
exit $fail
