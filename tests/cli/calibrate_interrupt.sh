#!/bin/bash
# calibrate_interrupt.sh SIM - `sim calibrate` under the signal guard (issue
# 13): interrupted (SIGINT, then SIGTERM) while ksmd runs with its settings,
# it exits 128 + signal and every KSM tunable is as found.  Skipped (77)
# when not root, without KSM, or when calibrate never reached ksmd.
# Changes /sys/kernel/mm/ksm while it runs.
set -u
SIM=$1 ksm=/sys/kernel/mm/ksm
[ -d "$ksm" ] || { echo "SKIPPED: this kernel has no KSM ($ksm missing)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIPPED: sim calibrate's ksmd part needs root"; exit 77; }
T=$(mktemp -d) fail=0 pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$T"' EXIT
. "$(dirname "$0")/ksm_tunables.sh"
tunables >"$T/before"
# calibrate sets sleep_millisecs=0: make sure that is a change we can see
grep -qx "sleep_millisecs=0" "$T/before" && { echo "SKIPPED: sleep_millisecs is 0 already"; exit 77; }

for sig in INT TERM; do
	SAMEPAGE_COSTS="$T/costs.conf" SIM_NO_PROGRESS=1 "$SIM" calibrate --pages 65536 --save \
		>"$T/out" 2>"$T/err" &
	pid=$!
	seen=0
	for _ in $(seq 1 1200); do # up to 60 s for the userspace part
		if [ "$(cat "$ksm/sleep_millisecs")" = 0 ]; then seen=1; break; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ $seen = 0 ]; then
		wait "$pid"; rc=$? pid=
		echo "SKIPPED: calibrate never reached ksmd (exit $rc): $(cat "$T/err")"
		exit 77
	fi
	kill -"$sig" "$pid"
	wait "$pid"; rc=$? pid=
	want=$((128 + $(kill -l "$sig")))
	if [ $rc = 0 ]; then # ksmd's part takes seconds; a poll this late means a stalled machine
		echo "SKIPPED: calibrate finished before SIG$sig reached it"
		exit 77
	fi
	[ $rc = $want ] || { echo "FAIL: SIG$sig: exit $rc, want $want: $(cat "$T/err")"; fail=1; }
	grep -q "interrupted; settings restored" "$T/err" || { echo "FAIL: SIG$sig: $(cat "$T/err")"; fail=1; }
	[ -e "$T/costs.conf" ] && { echo "FAIL: SIG$sig: an interrupted calibrate saved costs"; fail=1; }
	tunables >"$T/after"
	diff "$T/before" "$T/after" || { echo "FAIL: SIG$sig: KSM tunables not restored"; fail=1; }
done
exit $fail
