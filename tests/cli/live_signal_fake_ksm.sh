#!/bin/bash
# live_signal_fake_ksm.sh SIM SAMPLES - the live commands' signal guard on a
# fake KSM directory and meminfo ($SAMEPAGE_SYSFS, $SAMEPAGE_PROCFS): the
# restore a SIGINT, SIGTERM or SIGHUP starts at once (in the handler) makes
# the headroom check before its run=2 as every other unmerge does.
#   sim validate --set merge_across_nodes=0 (the fake tree says 1) with
#   1,000,000 KSM pages on the host (3906 MiB) and 64 GiB of MemAvailable at
#   the start; the memory goes (976 MiB) and SIGINT comes: the handler puts
#   merge_across_nodes back, which needs every KSM page unmerged first, and
#   must not write run=2 without the headroom (its write()s are traced with
#   strace -y); the end, its own pages freed, refuses with a note; exit 130,
#   every other tunable as found.  With the headroom kept, the handler's
#   restore and the end both unmerge before merge_across_nodes goes back.
# Skipped (77) without strace.  The real /sys/kernel/mm/ksm is never written.
set -uo pipefail
sim=$1
samples=$2
command -v strace >/dev/null || { echo "SKIPPED: needs strace to see the handler's writes"; exit 77; }
T=$(mktemp -d) S=
fail() { echo "FAIL: $*"; exit 1; }
trap '[ -n "$S" ] && kill -KILL "$S" 2>/dev/null; rm -rf "$T"' EXIT
. "$(dirname "$0")/fake_ksm_tree.sh"
snapshot > "$T/before"
"$sim" trace gen -o "$T/t.sptrace" --guests 2 --pages 256 --snapshots 2 --interval-ms 500 --seed 3 ||
	fail "trace gen"

# room: MemAvailable in kB when the signal comes
for case in INT:1000000 TERM:1000000 HUP:1000000 INT:67108864; do
	sig=${case%:*} room=${case#*:}
	meminfo 67108864
	# LeakSanitizer cannot run under ptrace (an ASan build): leaks are checked by the other tests
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -y -qq -e trace=write -e signal=SIG$sig -o "$T/strace" \
		"$sim" validate --trace "$T/t.sptrace" --allow-others --duration-ms 60000 --sample-ms 500 \
		--set pages_to_scan=777 --set merge_across_nodes=0 > "$T/out" 2> "$T/err" &
	S=$!
	for _ in $(seq 400); do [ "$(cat "$K/pages_to_scan")" = 777 ] && break; sleep 0.05; done
	[ "$(cat "$K/pages_to_scan")" = 777 ] || fail "validate did not set pages_to_scan: $(cat "$T/err")"
	[ "$(cat "$K/merge_across_nodes")" = 0 ] || fail "validate did not set merge_across_nodes"
	V=$(pgrep -P "$S") || fail "no validate under strace"
	meminfo "$room" # 1000000: 976 MiB, no room for 3906 MiB
	kill -"$sig" "$V"
	rc=0; wait "$S" || rc=$?
	S=
	cat "$T/err"
	want=$((128 + $(kill -l "$sig")))
	[ $rc = $want ] || fail "SIG$sig: exit $rc, want $want"
	# every write to the fake run file after the signal
	after=$(sed -n "/--- SIG$sig /,\$p" "$T/strace" | grep -o 'ksm/run>, "[0-9]"' | tr -d '\n')
	echo "SIG$sig: writes to run after the signal: $after"
	if [ "$room" = 1000000 ]; then
		grep -q '"2"' <<<"$after" && fail "SIG$sig: run=2 written without the headroom for it ($after)"
		grep -q "note: refused run=2 at the end" "$T/err" || fail "SIG$sig: no note of the refused unmerge"
	else # with the room, the handler unmerges before it puts merge_across_nodes back, and so does the end
		[ "$after" = 'ksm/run>, "2"ksm/run>, "1"ksm/run>, "2"ksm/run>, "1"' ] ||
			fail "SIG$sig with the headroom: writes to run after the signal: $after"
	fi
	# merge_across_nodes is put back (a plain file takes it; a kernel with KSM pages would say EBUSY)
	snapshot | diff "$T/before" - || fail "SIG$sig: not every tunable put back"
done
echo "PASS"
