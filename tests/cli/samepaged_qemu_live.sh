#!/bin/bash
# Live check of samepaged on this host (slow; root, QEMU and KSM; the kernel
# package traces/guestkit downloads): three TCG guests boot; samepaged with a
# ksmtuned configuration that forces KSM on (KSM_THRES_COEF=100: the free-memory
# threshold is all of RAM, so committed + threshold always exceeds it and free
# memory is always below it) starts KSM; pages_sharing rises; the metrics file
# shows the saving; SIGTERM with SAMEPAGE_ON_EXIT=keep leaves the pages merged;
# and every KSM tunable is put back as it was, also on failure.
# Exit 77 (skip) with the reason when root, QEMU or KSM is missing.
set -euo pipefail
SD=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
K=/sys/kernel/mm/ksm
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
[ -w $K/run ] || { echo "skip: no writable $K (no KSM in this kernel?)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu-system-x86_64"; exit 77; }
T=$(mktemp -d)
PIDS=() DPID= RUNDIR=
# Every writable tunable, to put back (merge_across_nodes/max_page_sharing are not touched).
SAVED=()
for f in run pages_to_scan sleep_millisecs use_zero_pages smart_scan advisor_mode; do
	[ -w "$K/$f" ] || continue
	v=$(cat "$K/$f")
	[ "$f" = advisor_mode ] && v=$(sed 's/.*\[\(.*\)\].*/\1/' <<<"$v")
	SAVED+=("$f=$v")
done
restore() { # run last, as the kernel needs
	local kv
	for kv in "${SAVED[@]}"; do
		if [ "${kv%%=*}" != run ]; then
			echo "${kv#*=}" > "$K/${kv%%=*}" 2>/dev/null || echo "warning: could not restore ${kv%%=*}"
		fi
	done
	for kv in "${SAVED[@]}"; do
		if [ "${kv%%=*}" = run ]; then
			echo "${kv#*=}" > "$K/run" || echo "warning: could not restore run"
		fi
	done
	return 0
}
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	# QEMU removes its QMP socket as it exits: let it finish before the directory goes.
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
	done
	restore
	[ -n "$RUNDIR" ] && rm -rf "$RUNDIR"
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

rc=0
"$ROOT/traces/guestkit/guestkit.sh" --print-kernel > /dev/null || rc=$?
[ $rc = 0 ] || { echo "skip: the guest kernel package cannot be fetched (guestkit exit $rc)"; exit 77; }
GUESTKIT_ACCEL=tcg "$ROOT/traces/guestkit/guestkit.sh" --boot-only --guests 3 --mem 256 > "$T/guests"
cat "$T/guests"
while read -r _ _ pid _ sock; do PIDS+=("$pid"); RUNDIR=$(dirname "$sock"); done < "$T/guests"
[ ${#PIDS[@]} = 3 ] || fail "three guests did not boot"

# KSM starts from stopped, with nothing merged by an earlier user.
echo 0 > $K/run
before=$(cat $K/pages_sharing)
cat > "$T/samepaged.conf" <<CONF
# ksmtuned's keys, forcing KSM on and fast
KSM_MONITOR_INTERVAL=5
KSM_THRES_COEF=100
KSM_NPAGES_BOOST=5000
KSM_NPAGES_MAX=10000
SAMEPAGE_ON_EXIT=keep
SAMEPAGE_POLL_SEC=1
SAMEPAGE_METRICS=$T/samepage.prom
SAMEPAGE_CSV=$T/samepaged.csv
CONF
"$SD" --config "$T/samepaged.conf" --foreground 2> "$T/samepaged.log" &
DPID=$!
ok=
for _ in $(seq 300); do
	sharing=$(cat $K/pages_sharing)
	if [ "$sharing" -gt $((before + 2000)) ] && grep -q '^samepage_saved_bytes [1-9]' "$T/samepage.prom" 2>/dev/null; then
		ok=1; break
	fi
	kill -0 $DPID 2>/dev/null || { cat "$T/samepaged.log"; fail "samepaged exited"; }
	sleep 1
done
cat "$T/samepaged.log"
[ -n "$ok" ] || fail "pages_sharing did not rise (before $before, now $(cat $K/pages_sharing))"
[ "$(cat $K/run)" = 1 ] || fail "KSM not running"
grep -q "start KSM (run=1)" "$T/samepaged.log" || fail "no start decision logged"
grep -q 'samepage_guests 3' "$T/samepage.prom" || fail "the metrics do not count three guests"
grep '^samepage_saved_bytes\|^samepage_ksm{file="pages_sharing"}\|^samepage_decisions_total{kind="start"}' "$T/samepage.prom"
kill -TERM $DPID
wait $DPID || fail "samepaged exit status $?"
DPID=
after=$(cat $K/pages_sharing)
[ "$after" -gt $((before + 2000)) ] || fail "SAMEPAGE_ON_EXIT=keep: pages_sharing fell to $after"
[ "$(cat $K/run)" = 1 ] || fail "SAMEPAGE_ON_EXIT=keep: KSM was stopped"
restore
for kv in "${SAVED[@]}"; do
	v=$(cat "$K/${kv%%=*}")
	[ "${kv%%=*}" = advisor_mode ] && v=$(sed 's/.*\[\(.*\)\].*/\1/' <<<"$v")
	[ "$v" = "${kv#*=}" ] || fail "${kv%%=*} is $v, was ${kv#*=}"
done
echo "ok: pages_sharing $before -> $after; every tunable restored"
