#!/bin/bash
# The mutation test of issue 10: COUNT random mutants of a rich trace (bit
# flips, truncations, splices from itself and from another trace, half of
# them with every chunk checksum recomputed so the damage reaches the
# parsers) through trace check, trace info, trace export, run and compare.
# Every command must answer with an exit code of the README's table
# (0 for a sound mutant, 3 for a rejected one; 1 or 4 only with a message),
# no sanitizer report, no signal, and no hang (TIMEOUT seconds each).
#   mutation.sh SIM MUTATE_TRACE [COUNT] [SEED]
set -uo pipefail
SIM=$1 MUTATE=$2 COUNT=${3:-40} SEED=${4:-$(date +%s)}
TIMEOUT=60
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "seed $SEED, $COUNT mutants (rerun: $0 $SIM $MUTATE $COUNT $SEED)"
# rich: several guests, nodes and domains, huge pages, zero pages, shared and volatile pages
"$SIM" trace gen -o "$T/rich.sptrace" --guests 3 --pages 96 --snapshots 5 --interval-ms 2000 \
	--shared-fraction 0.5 --zero-fraction 0.1 --volatile-fraction 0.3 --write-rate 0.5 \
	--huge-fraction 0.5 --nodes 2 --domains 2 --seed 7 || exit 1
"$SIM" trace gen -o "$T/donor.sptrace" --guests 2 --pages 40 --snapshots 3 --seed 8 || exit 1
mkdir "$T/m"
"$MUTATE" "$SEED" "$COUNT" "$T/rich.sptrace" "$T/donor.sptrace" "$T/m" > "$T/what" || exit 1
fail=0 sound=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
one() { # mutant label args...
	local m=$1 label=$2 rc; shift 2
	timeout -s KILL $TIMEOUT "$SIM" "$@" > "$T/out" 2> "$T/err"; rc=$?
	if [ $rc -eq 137 ]; then
		echo "FAIL: $m ($(grep "^$m " "$T/what")): $label hung (killed after ${TIMEOUT}s)"; fail=1
	elif [ $rc -gt 4 ]; then
		echo "FAIL: $m ($(grep "^$m " "$T/what")): $label exit $rc"; head -5 "$T/err"; fail=1
	elif grep -qE "AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehavior" "$T/err"; then
		echo "FAIL: $m ($(grep "^$m " "$T/what")): $label: sanitizer report"; head -5 "$T/err"; fail=1
	elif [ $rc -ne 0 ] && [ ! -s "$T/err" ]; then
		echo "FAIL: $m: $label exit $rc without a message"; fail=1
	fi
	return $rc
}
for f in "$T"/m/m-*.sptrace; do
	m=$(basename "$f" .sptrace)
	one "$m" check trace check "$f"; c=$?
	one "$m" info trace info "$f"
	one "$m" export trace export "$f" --csv "$T/x.csv"
	one "$m" run run --trace "$f" --algo ksm --duration-ms 30000 -q
	one "$m" compare compare --trace "$f" --algos ksm,oracle,uksm --duration-ms 30000 \
		--report "$T/r" --jobs 2 -q
	if [ $c -eq 0 ]; then sound=$((sound + 1)); fi
	rm -rf "$T/r" "$T/x.csv"
done
echo "$COUNT mutants, $sound still sound traces, the rest rejected"
exit $fail
