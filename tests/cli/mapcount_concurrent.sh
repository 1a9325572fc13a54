#!/bin/bash
# mapcount_concurrent.sh SIM - two `sim real replay --mechanism user` at once
# on the real vm.max_map_count (real/mapcount.h): each trace needs a raise
# above 65530, B's above A's.
#   1. A raises, B raises further, A ends normally first: the limit B runs
#      under stays; B ends (SIGTERM): the original is back.
#   2. A and B as before, A ends by SIGINT: B's limit stays; B is killed
#      (SIGKILL): the raise stays (a crash leaves at worst the raised
#      value); a third run C that needs no raise adopts it and, the last to
#      end, puts the original back.
# "The last to end" counts other tests' engines (ctest -j2 runs test_live
# beside this test; each engine holds the sysctl): the final values are read
# once every holder has let go (LOCK_EX on /run/samepage/max_map_count).
# A is stopped (SIGSTOP) while B starts, so A cannot end before B raised,
# however slow the host.  The test sets the sysctl to 65530 for its run and
# puts the value it found back on every exit.  Skipped (77) when not root or
# without userfaultfd.  Under ctest's RESOURCE_LOCK ksm_sysfs.
set -u
sim=$1
f=/proc/sys/vm/max_map_count
[ "$(id -u)" = 0 ] || { echo "SKIPPED: sim real replay needs root"; exit 77; }
tmp=$(mktemp -d)
found=$(cat $f)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	echo "$found" > $f
	rm -rf "$tmp"
}
trap cleanup EXIT
echo 65530 > $f || { echo "SKIPPED: cannot write $f"; exit 77; }
fail=0
err() { echo "FAIL: $*"; fail=1; }
# 2 x 16000 pages: needs 2 x 32000 + 4096 = 68096; 2 x 17000: 72096
"$sim" trace gen -o "$tmp/a.sptrace" --guests 2 --pages 16000 --snapshots 2 --interval-ms 500 --seed 1 &&
"$sim" trace gen -o "$tmp/b.sptrace" --guests 2 --pages 17000 --snapshots 2 --interval-ms 500 --seed 2 &&
"$sim" trace gen -o "$tmp/c.sptrace" --guests 2 --pages 256 --snapshots 2 --interval-ms 500 --seed 3 ||
	{ echo "FAIL: trace gen"; exit 1; }

# replay NAME DURATION_MS: starts a replay in the background (SIGINT back to default), its pid in $pid
replay() {
	: >"$tmp/$1.out"
	SIM_NO_PROGRESS=1 python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
		"$sim" real replay --trace "$tmp/$1.sptrace" --algo ksm --mechanism user \
		--set pages_to_scan=2000 --set sleep_millisecs=10 --duration-ms "$2" --sample-ms 500 -q \
		>"$tmp/$1.out" 2>&1 &
	pid=$!
	pids+=("$pid")
}
# raised NAME PID: waits until the replay said it raised the limit (it must not end first)
raised() {
	for _ in $(seq 1 1200); do
		grep -q "raised vm.max_map_count" "$tmp/$1.out" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	cat "$tmp/$1.out"
	grep -q "userfaultfd" "$tmp/$1.out" && { echo "SKIPPED: no userfaultfd"; exit 77; }
	echo "FAIL: $1 never raised vm.max_map_count"
	exit 1
}
now() { cat $f; }
# The value once every holder has let go: engines of other tests (ctest -j) may hold the sysctl too,
# and the last of them puts the original back; LOCK_EX on the record is granted only after that.
settled() {
	flock -w 280 -x /run/samepage/max_map_count true || echo "(still held after 280 s)"
	cat $f
}

echo "== 1: A ends normally under B"
replay a 2000; a=$pid
raised a "$a"
kill -STOP "$a"
[ "$(now)" = 68096 ] || err "A's raise: $(now), not 68096"
replay b 600000; b=$pid
raised b "$b"
[ "$(now)" = 72096 ] || err "B's raise: $(now), not 72096"
kill -CONT "$a"
wait "$a"; rc=$?
cat "$tmp/a.out"
[ $rc = 0 ] || err "A exit $rc"
[ "$(now)" = 72096 ] || err "A's end lowered the limit under B: $(now), not 72096"
kill -0 "$b" 2>/dev/null || err "B ended early: $(cat "$tmp/b.out")"
kill -TERM "$b"
wait "$b"; rc=$?
cat "$tmp/b.out"
[ $rc = 143 ] || err "B exit $rc after SIGTERM"
v=$(settled)
[ "$v" = 65530 ] || err "after both (and any other holder): $v, not the original 65530"

echo "== 2: A ends by SIGINT under B, B crashes, C puts the original back"
[ "$(now)" = 65530 ] || echo 65530 > $f # part 1 failed: start part 2 from the same value
replay a 600000; a=$pid
raised a "$a"
kill -STOP "$a"
replay b 600000; b=$pid
raised b "$b"
kill -CONT "$a"
kill -INT "$a"
wait "$a"; rc=$?
cat "$tmp/a.out"
[ $rc = 130 ] || err "A exit $rc after SIGINT"
[ "$(now)" = 72096 ] || err "A's SIGINT lowered the limit under B: $(now), not 72096"
kill -KILL "$b"
wait "$b" 2>/dev/null
[ "$(now)" = 72096 ] || err "B killed: $(now), not its raise 72096 (at worst the raised value)"
replay c 1000; c=$pid
wait "$c"; rc=$?
cat "$tmp/c.out"
[ $rc = 0 ] || err "C exit $rc"
v=$(settled)
[ "$v" = 65530 ] || err "after C (and any other holder): $v, not the original 65530"

[ $fail = 0 ] && echo OK
exit $fail
