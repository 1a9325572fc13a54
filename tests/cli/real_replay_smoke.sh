#!/bin/bash
# real_replay_smoke.sh SIM - live end-to-end check of `sim real replay`
# (issue 5) on a small generated trace:
#   user:   the ksm algorithm through the live backend ends at the
#           pages_sharing `sim run` predicts (within 2%), and measured RSS
#           agrees with present - pages_sharing (within 1%);
#   kernel: the same replay handed to KSM merges, and every KSM tunable and
#           vm.max_map_count are as found afterwards; refused (exit 4) while
#           another process holds the KSM directory (samepaged's lock).
# Skipped (77) when not root or without userfaultfd; the kernel half is
# skipped when there is no KSM or other processes have mergeable memory.
set -u
sim=$1
[ "$(id -u)" = 0 ] || { echo "SKIPPED: sim real replay needs root"; exit 77; }
tmp=$(mktemp -d)
holder=
trap 'rm -rf "$tmp"; [ -z "$holder" ] || kill $holder 2>/dev/null' EXIT
ksm=/sys/kernel/mm/ksm
tunables() {
	cat /proc/sys/vm/max_map_count
	[ -d $ksm ] && grep . $ksm/run $ksm/pages_to_scan $ksm/sleep_millisecs $ksm/merge_across_nodes \
		$ksm/use_zero_pages $ksm/max_page_sharing $ksm/smart_scan $ksm/advisor_mode 2>/dev/null
}
tunables >"$tmp/before"
"$sim" trace gen -o "$tmp/t.sptrace" --guests 3 --pages 4096 --snapshots 4 --interval-ms 1000 \
	--seed 5 || { echo "FAIL: trace gen"; exit 1; }
sets="--set pages_to_scan=2000 --set sleep_millisecs=10"
"$sim" run --trace "$tmp/t.sptrace" --algo ksm $sets --duration-ms 8000 --csv "$tmp/sim.csv" -q \
	>/dev/null || { echo "FAIL: sim run"; exit 1; }
SIM_NO_PROGRESS=1 "$sim" real replay --trace "$tmp/t.sptrace" --algo ksm --mechanism user $sets \
	--duration-ms 8000 --sample-ms 1000 --csv "$tmp/user.csv" -q >"$tmp/user.out" 2>&1
rc=$?
cat "$tmp/user.out"
if [ $rc = 4 ]; then echo "SKIPPED: no userfaultfd"; exit 77; fi
[ $rc = 0 ] || { echo "FAIL: user replay exit $rc"; exit 1; }
col() { head -1 "$1" | tr , '\n' | grep -nx "$2" | cut -d: -f1; }
last() { tail -1 "$1" | cut -d, -f"$(col "$1" "$2")"; }
s=$(last "$tmp/sim.csv" pages_sharing)
u=$(last "$tmp/user.csv" pages_sharing)
echo "pages_sharing: sim run $s, live user $u"
awk -v s="$s" -v u="$u" 'BEGIN { d = s - u; if (d < 0) d = -d; exit !(s > 0 && d <= 0.02 * s) }' ||
	{ echo "FAIL: live pages_sharing not within 2% of sim run"; exit 1; }
grep -q "measured +0.0\|measured -0.0\|measured [+-]0\.[0-9]" "$tmp/user.out" ||
	{ echo "FAIL: measured RSS not within 1% of present - saved"; exit 1; }
tunables >"$tmp/mid"
diff "$tmp/before" "$tmp/mid" || { echo "FAIL: vm.max_map_count not restored"; exit 1; }

if [ -d $ksm ]; then
	# KSM driven by another process (samepaged's lock on the directory, held here by python): refused, untouched
	python3 -c 'import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX); time.sleep(60)' $ksm &
	holder=$!
	for _ in $(seq 1 200); do flock -n $ksm true || break; sleep 0.05; done
	SIM_NO_PROGRESS=1 "$sim" real replay --trace "$tmp/t.sptrace" --algo ksm --mechanism kernel \
		$sets --duration-ms 8000 --sample-ms 1000 -q >"$tmp/busy.out" 2>&1
	rc=$?
	kill $holder; wait $holder 2>/dev/null; h=$holder; holder=
	cat "$tmp/busy.out"
	[ $rc = 4 ] || { echo "FAIL: kernel replay beside another KSM driver: exit $rc, not 4"; exit 1; }
	grep -q "is driven by another process (pid $h, python3)" "$tmp/busy.out" ||
		{ echo "FAIL: the refusal does not name the holder"; exit 1; }
	tunables >"$tmp/busy"
	diff "$tmp/before" "$tmp/busy" || { echo "FAIL: the refused replay changed KSM"; exit 1; }
	SIM_NO_PROGRESS=1 "$sim" real replay --trace "$tmp/t.sptrace" --algo ksm --mechanism kernel \
		$sets --duration-ms 8000 --sample-ms 1000 --csv "$tmp/kernel.csv" -q >"$tmp/k.out" 2>&1
	rc=$?
	cat "$tmp/k.out"
	tunables >"$tmp/after"
	diff "$tmp/before" "$tmp/after" || { echo "FAIL: tunables not restored"; exit 1; }
	if [ $rc = 4 ]; then
		echo "kernel half skipped: $(tail -1 "$tmp/k.out")"
	else
		[ $rc = 0 ] || { echo "FAIL: kernel replay exit $rc"; exit 1; }
		k=$(last "$tmp/kernel.csv" pages_sharing)
		echo "pages_sharing: kernel KSM $k"
		[ "$k" -gt 0 ] || { echo "FAIL: the kernel merged nothing"; exit 1; }
	fi
fi
echo "OK"
