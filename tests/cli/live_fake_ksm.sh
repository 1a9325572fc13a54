#!/bin/bash
# live_fake_ksm.sh SIM SAMPLES - the live commands' KSM side on a fake KSM
# directory and meminfo ($SAMEPAGE_SYSFS, $SAMEPAGE_PROCFS): the real
# /sys/kernel/mm/ksm is never written.
#  - Inputs before the claim: a truncated trace is exit 3 naming the trace,
#    also while another process holds the claim (flock on the directory, as
#    samepaged); a sound one is then refused, exit 4, naming the claim.
#  - The headroom before any run=2 (samepaged's check): with other processes'
#    pages merged (fake pages_sharing 1,000,000 = 3.8 GiB) and 976 MiB of
#    MemAvailable + SwapFree, validate, real replay --mechanism kernel and
#    calibrate refuse in one line, exit 5, nothing written, and so they do
#    when the host's pages fit but not with the run's own memory on top (the
#    trace's 2 MiB, calibrate's 8 MiB: 1 MiB short); when the headroom
#    goes during a run, the run=2 at the end is skipped with a note and every
#    tunable is still put back.
set -uo pipefail
sim=$1
samples=$2
T=$(mktemp -d)
fail() { echo "FAIL: $*"; exit 1; }
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/fake_ksm_tree.sh"
meminfo 1000000
snapshot > "$T/before"

"$sim" trace gen -o "$T/t.sptrace" --guests 2 --pages 256 --snapshots 2 --interval-ms 500 --seed 3 ||
	fail "trace gen"
head -c 20000 "$samples/small.sptrace" > "$T/cut.sptrace"

# 1. A truncated trace while another process holds the claim: exit 3, the trace's error.
exec 9<"$K"
flock -x 9 # this shell holds the claim; the commands open the directory anew
flock -n "$K" true && fail "the claim is not held"
for cmd in "validate" "real replay --mechanism kernel"; do
	rc=0; err=$($sim $cmd --trace "$T/cut.sptrace" --allow-others 2>&1 >/dev/null) || rc=$?
	echo "$cmd, truncated trace, claim held: exit $rc: $err"
	[ $rc = 3 ] || fail "$cmd on a truncated trace under a held claim: exit $rc, not 3: $err"
	grep -q "cut.sptrace" <<<"$err" || fail "$cmd: the error does not name the trace: $err"
	[ "$(wc -l <<<"$err")" = 1 ] || fail "$cmd: more than one line: $err"
done
# A sound trace: now the claim refuses.
rc=0; err=$("$sim" validate --trace "$T/t.sptrace" --allow-others 2>&1 >/dev/null) || rc=$?
echo "validate, claim held: exit $rc: $err"
[ $rc = 4 ] && grep -q "driven by another process" <<<"$err" || fail "held claim: exit $rc: $err"
exec 9<&-
snapshot | diff "$T/before" - || fail "the fake KSM directory was written"

# 2. No headroom for unmerging the host's 1,000,000 KSM pages: exit 5, one line, nothing written.
for cmd in "validate --trace $T/t.sptrace" "real replay --mechanism kernel --trace $T/t.sptrace" \
	"calibrate --pages 1024"; do
	rc=0; err=$(timeout 120 $sim $cmd --allow-others 2>&1 >/dev/null) || rc=$?
	echo "$cmd, no headroom: exit $rc: $err"
	[ $rc = 5 ] || fail "$cmd without headroom: exit $rc, not 5: $err"
	grep -q "refused run=2 at the start .*: a full unshare needs up to 3906 MiB (pages_sharing 1000000 + ksm_zero_pages 0) on top of this run's [28] MiB, but MemAvailable + SwapFree - reserve leaves 566 MiB" <<<"$err" ||
		fail "$cmd: message: $err"
	[ "$(wc -l <<<"$err")" = 1 ] || fail "$cmd: more than one line: $err"
	snapshot | diff "$T/before" - || fail "$cmd wrote the fake KSM directory without headroom"
done

# 2b. Headroom for the host's KSM pages but not for them and this run's own
# memory on top (validate and real replay map the trace's 2 MiB after their
# run=2, calibrate 2 x 1024 pages before its run=2): MemAvailable 4420455 kB
# leaves 3907 MiB (1 MiB over the 3906 of pages_sharing): exit 5, nothing written.
meminfo 4420455
for cmd in "validate --trace $T/t.sptrace --duration-ms 1000" \
	"real replay --mechanism kernel --trace $T/t.sptrace --duration-ms 1000" "calibrate --pages 1024"; do
	rc=0; err=$(timeout 60 $sim $cmd --allow-others 2>&1 >/dev/null) || rc=$?
	echo "$cmd, headroom short by this run's memory: exit $rc: $err"
	[ $rc = 5 ] || fail "$cmd with no headroom for its own memory: exit $rc, not 5: $err"
	grep -q "refused run=2 at the start .*: a full unshare needs up to 3906 MiB (pages_sharing 1000000 + ksm_zero_pages 0) on top of this run's [28] MiB, but MemAvailable + SwapFree - reserve leaves 3907 MiB" <<<"$err" ||
		fail "$cmd: message: $err"
	snapshot | diff "$T/before" - || fail "$cmd wrote the fake KSM directory without headroom"
done

# 3. Headroom at the start (64 GiB), gone by the end: validate runs, the
# run=2 at the end is refused with a note, every tunable is put back.
meminfo 67108864
"$sim" validate --trace "$T/t.sptrace" --allow-others --duration-ms 4000 --sample-ms 500 \
	--set pages_to_scan=777 --set merge_across_nodes=0 > "$T/out" 2> "$T/err" &
V=$!
for _ in $(seq 400); do [ "$(cat "$K/pages_to_scan")" = 777 ] && break; sleep 0.05; done
[ "$(cat "$K/pages_to_scan")" = 777 ] || { kill "$V"; fail "validate did not set pages_to_scan: $(cat "$T/err")"; }
meminfo 100000
rc=0; wait "$V" || rc=$?
cat "$T/err"
[ $rc = 0 ] || fail "validate with the headroom gone at the end: exit $rc"
grep -q "note: refused run=2 at the end: a full unshare needs up to 3906 MiB .*; other processes' KSM pages stay merged" "$T/err" ||
	fail "no note of the refused unmerge"
snapshot | diff "$T/before" - || fail "validate did not put every tunable back"
echo "PASS"
