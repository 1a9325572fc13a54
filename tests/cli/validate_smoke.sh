#!/bin/bash
# validate_smoke.sh SIM - live end-to-end check of `sim validate`: a small
# generated trace, aggressive tunables, ~10 s against the kernel's KSM.
# Checks exit 0, that the kernel merged something, that both series are in
# the CSV, and that every KSM tunable is as found afterwards.
# Skipped (77) when not root, the kernel has no KSM, another process drives
# it (samepaged's claim), or other processes have mergeable memory (the
# kernel's counters would include theirs).
set -u
sim=$1
ksm=/sys/kernel/mm/ksm
[ -d "$ksm" ] || { echo "SKIPPED: this kernel has no KSM ($ksm missing)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIPPED: sim validate needs root"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/ksm_tunables.sh"
tunables >"$tmp/before"

"$sim" trace gen -o "$tmp/t.sptrace" --guests 2 --pages 4096 --snapshots 3 --interval-ms 2000 \
	--seed 3 || { echo "FAIL: trace gen"; exit 1; }
algo=zero
"$sim" list | grep -qx ksm && algo=ksm

SIM_NO_PROGRESS=1 "$sim" validate --trace "$tmp/t.sptrace" --algo "$algo" \
	--set pages_to_scan=5000 --set sleep_millisecs=0 --duration-ms 10000 --sample-ms 500 \
	--csv "$tmp/out.csv" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
cat "$tmp/stdout" "$tmp/stderr"
tunables >"$tmp/after"
if ! diff "$tmp/before" "$tmp/after"; then
	echo "FAIL: KSM tunables not restored"
	exit 1
fi
if [ $rc = 4 ] && grep -q "driven by another process" "$tmp/stderr"; then
	echo "SKIPPED: another process drives KSM right now: $(cat "$tmp/stderr")"
	exit 77
fi
if [ $rc = 4 ] && grep -q "other process" "$tmp/stderr"; then
	echo "SKIPPED: other processes have KSM-mergeable memory right now: $(cat "$tmp/stderr")"
	exit 77
fi
[ $rc = 0 ] || { echo "FAIL: sim validate exited $rc"; exit 1; }
grep -q '^steady ' "$tmp/stdout" || { echo "FAIL: no summary"; exit 1; }

# The kernel's best pages_sharing, and a row count for both sides.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "kernel_pages_sharing") k = i; if ($i == "sim_pages_sharing") s = i } next }
	{ rows++; if ($k > best) best = $k; if ($s == "") missing++ }
	END { if (!k || !s) { print "FAIL: CSV columns missing"; exit 1 }
	      if (rows < 15) { print "FAIL: only " rows " samples"; exit 1 }
	      if (missing) { print "FAIL: sim series shorter than the kernel series"; exit 1 }
	      if (best <= 0) { print "FAIL: the kernel merged nothing"; exit 1 }
	      print "kernel pages_sharing peaked at " best " over " rows " samples" }' "$tmp/out.csv" || exit 1
exit 0
