#!/bin/bash
# samepaged's command line on fake /proc and /sys trees: --once decides as
# ksmtuned's script would (numbers worked out below), /etc/ksmtuned.conf as
# shipped is accepted, --check-config / --print-effective, exit codes (2 usage,
# 3 bad configuration or plan, 4 no KSM or read-only sysfs), and the running
# daemon's signals: SIGUSR1 retunes, SIGHUP reloads (a bad file is refused and
# the old configuration kept), SIGTERM exits as SAMEPAGE_ON_EXIT says; under
# systemd it says READY=1 on NOTIFY_SOCKET.
set -euo pipefail
SD=$1
T=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A host: 8 GiB, KSM stopped at the kernel's defaults, two QEMU guests.
make_tree() { # dir
	local d=$1 k
	mkdir -p "$d/sys/kernel/mm/ksm" "$d/sys/devices/system/node/node0" "$d/proc/31" "$d/proc/1000" "$d/proc/1001" "$d/proc/1002"
	k="$d/sys/kernel/mm/ksm"
	for kv in run=0 pages_to_scan=100 sleep_millisecs=20 merge_across_nodes=1 use_zero_pages=0 \
		max_page_sharing=256 smart_scan=1 stable_node_chains_prune_millisecs=2000 pages_shared=0 \
		pages_sharing=0 pages_unshared=0 pages_volatile=0 full_scans=0 pages_scanned=0 pages_skipped=0 \
		ksm_zero_pages=0 stable_node_chains=0 stable_node_dups=0 general_profit=0; do
		echo "${kv#*=}" > "$k/${kv%%=*}"
	done
	printf 'MemTotal:        8388608 kB\nMemFree:          600000 kB\nMemAvailable:    1500000 kB\nBuffers:          100000 kB\nCached:           300000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n' > "$d/proc/meminfo"
	printf 'cow_ksm 3\n' > "$d/proc/vmstat"
	echo ksmd > "$d/proc/31/comm"
	echo "31 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 100 50 0 0 25 5 1 0 100 0 0" > "$d/proc/31/stat"
	echo qemu-system-x86 > "$d/proc/1000/comm"; printf 'VmRSS:\t 4000000 kB\n' > "$d/proc/1000/status"
	echo qemu-kvm > "$d/proc/1001/comm"; printf 'VmRSS:\t 3000000 kB\n' > "$d/proc/1001/status"
	printf 'ksm_rmap_items 100\nksm_merging_pages 42\n' > "$d/proc/1001/ksm_stat"
	echo sshd > "$d/proc/1002/comm"; printf 'VmRSS:\t 9000000 kB\n' > "$d/proc/1002/status"
}
make_tree "$T/h"
K="$T/h/sys/kernel/mm/ksm"
ROOTS=(--sysfs "$T/h/sys" --procfs "$T/h/proc")

# /etc/ksmtuned.conf as distributions ship it: commented defaults.
cat > "$T/ksmtuned.conf" <<'EOF'
# Configuration file for ksmtuned.

# How long ksmtuned should sleep between tuning adjustments
# KSM_MONITOR_INTERVAL=60

# Millisecond sleep between ksm scans for 16Gb server.
# Smaller servers sleep more, bigger sleep less.
# KSM_SLEEP_MSEC=10

# KSM_NPAGES_BOOST=300
# KSM_NPAGES_DECAY=-50
# KSM_NPAGES_MIN=64
# KSM_NPAGES_MAX=1250

# KSM_THRES_COEF=20
# KSM_THRES_CONST=2048

# uncomment the following if you want ksmtuned debug info

# LOGFILE=/var/log/ksmtuned
# DEBUG=1
EOF

# --once: thres = 8388608 x 20 / 100 = 1677721 KiB; committed 7000000 (sshd
# does not count) + thres >= 8388608: run.  free = 600000 + 100000 + 300000
# = 1000000 < thres: boost to 300.  sleep = 10 x 16777216 / 8388608 = 20.
START=$(date +%s%N)
OUT=$("$SD" --config "$T/ksmtuned.conf" "${ROOTS[@]}" --once)
END=$(date +%s%N)
echo "$OUT"
[ "$(cat "$K/run")" = 1 ] || fail "run not started"
[ "$(cat "$K/pages_to_scan")" = 300 ] || fail "pages_to_scan $(cat "$K/pages_to_scan") != 300"
[ "$(cat "$K/sleep_millisecs")" = 20 ] || fail "sleep_millisecs $(cat "$K/sleep_millisecs") != 20"
grep -q "committed 7000000 KiB" <<<"$OUT" || fail "--once does not print the committed memory"
[ $(( (END - START) / 1000000 )) -lt 1000 ] || fail "--once took $(( (END - START) / 1000000 )) ms"

# --dry-run on a fresh tree writes nothing.
make_tree "$T/d"
"$SD" --config "$T/ksmtuned.conf" --sysfs "$T/d/sys" --procfs "$T/d/proc" --once --dry-run | grep -q "would set pages_to_scan: 100 -> 300" ||
	fail "dry run does not say what it would do"
[ "$(cat "$T/d/sys/kernel/mm/ksm/run")" = 0 ] || fail "dry run wrote run"

# --print-effective shows ksmtuned's defaults; its output loads back.
"$SD" --config "$T/ksmtuned.conf" --print-effective > "$T/eff.conf"
grep -qx "KSM_NPAGES_MAX=1250" "$T/eff.conf" || fail "print-effective lacks KSM_NPAGES_MAX=1250"
grep -qx "SAMEPAGE_ON_EXIT=keep" "$T/eff.conf" || fail "print-effective lacks SAMEPAGE_ON_EXIT=keep"
"$SD" --config "$T/eff.conf" --check-config | grep -q ": ok (policy ksmtuned" || fail "effective configuration does not load"
# The kernel: from --procfs's sys/kernel/osrelease under a fake tree (an old one here).
mkdir -p "$T/h/proc/sys/kernel" && echo 6.1.0-28-amd64 > "$T/h/proc/sys/kernel/osrelease"
"$SD" --config "$T/ksmtuned.conf" --procfs "$T/h/proc" --print-effective | grep -q "^# kernel: Linux 6.1 (without .*smart_scan" ||
	fail "print-effective does not show the kernel"

# Errors: usage 2, bad configuration 3 (naming the line), bad plan 3, no KSM 4.
rc=0; "$SD" --bogus 2>/dev/null || rc=$?; [ $rc = 2 ] || fail "unknown option: exit $rc"
# the error quotes the option escaped: ESC [ 2 J (clear screen) shows as \x1b[2J, never raw
rc=0; out=$("$SD" $'--bogus\e[2J' 2>&1 >/dev/null) || rc=$?
{ [ $rc = 2 ] && ! LC_ALL=C grep -q '[[:cntrl:]]' <<<"$out" && grep -qF '\x1b[2J' <<<"$out"; } ||
	fail "hostile option: exit $rc, stderr $(cat -v <<<"$out")"
printf 'KSM_NPAGES_MIN=64\nKSM_NPAGES_MAX=lots\n' > "$T/bad.conf"
rc=0; ERR=$("$SD" --config "$T/bad.conf" --check-config 2>&1) || rc=$?
[ $rc = 3 ] || fail "bad value: exit $rc"
grep -q "bad.conf:2: KSM_NPAGES_MAX=lots" <<<"$ERR" || fail "bad value message: $ERR"
printf 'SAMEPAGE_POLICY=plan\nPLAN_FORMAT=1\nSTEP="0 pages_to_scan=500 run=1"\nSTEP="60 pages_to_scan=abc"\n' > "$T/plan.conf"
rc=0; ERR=$("$SD" --config "$T/plan.conf" --check-config 2>&1) || rc=$?
[ $rc = 3 ] || fail "bad plan: exit $rc"
grep -q "plan.conf:4: STEP" <<<"$ERR" || fail "bad plan message: $ERR"
mkdir -p "$T/noksm/sys" && cp -r "$T/h/proc" "$T/noksm/proc"
rc=0; ERR=$("$SD" --config "$T/ksmtuned.conf" --sysfs "$T/noksm/sys" --procfs "$T/noksm/proc" --once 2>&1) || rc=$?
[ $rc = 4 ] || fail "no KSM: exit $rc"
[ "$(wc -l <<<"$ERR")" = 1 ] || fail "no KSM: more than one line: $ERR"

# A plan in the configuration file itself.
printf 'SAMEPAGE_POLICY=plan\nPLAN_FORMAT=1\nPLAN_SOURCE="sim plan on test"\nSTEP="0 pages_to_scan=500 sleep_millisecs=50 run=1"\nSAMEPAGE_METRICS=%s\n' "$T/plan.prom" > "$T/plan.conf"
make_tree "$T/p"
"$SD" --config "$T/plan.conf" --sysfs "$T/p/sys" --procfs "$T/p/proc" --once > /dev/null
[ "$(cat "$T/p/sys/kernel/mm/ksm/pages_to_scan")" = 500 ] || fail "plan not applied"
grep -q 'samepage_info{policy="plan",source="sim plan on test"' "$T/plan.prom" || fail "plan source not in the info metric"

# Read-only sysfs (root: a read-only bind mount in a private mount namespace).
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
	rc=0
	ERR=$(unshare -m bash -c "mount --bind '$T/h/sys' '$T/h/sys' && mount -o remount,ro,bind '$T/h/sys' &&
		exec '$SD' --config '$T/ksmtuned.conf' ${ROOTS[*]} --once" 2>&1) || rc=$?
	[ $rc = 4 ] || fail "read-only sysfs: exit $rc ($ERR)"
	[ "$(wc -l <<<"$ERR")" = 1 ] || fail "read-only sysfs: more than one line: $ERR"
else
	echo "note: read-only sysfs case not run (needs root and unshare -m)"
fi

# The running daemon.  NOTIFY_SOCKET: a Python listener records what it hears.
command -v python3 >/dev/null || { echo "skip: the daemon part needs python3"; exit 77; }
make_tree "$T/r"
K="$T/r/sys/kernel/mm/ksm"
cat > "$T/run.conf" <<EOF
KSM_MONITOR_INTERVAL=3600
SAMEPAGE_ON_EXIT=stop
SAMEPAGE_POLL_SEC=0.1
SAMEPAGE_METRICS=$T/r.prom
SAMEPAGE_CSV=$T/r.csv
LOGFILE=$T/r.log
EOF
python3 - "$T/notify.sock" "$T/notify.txt" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(20)
with open(sys.argv[2], "a") as f:
    try:
        while True:
            f.write(s.recv(4096).decode() + "\n"); f.flush()
    except socket.timeout:
        pass
EOF
LISTENER=$!
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$T/notify.sock" "$SD" --config "$T/run.conf" --sysfs "$T/r/sys" --procfs "$T/r/proc" 2> "$T/r.err" &
PID=$!
wait_for() { # what command...
	local what=$1; shift
	for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
	fail "timed out waiting for $what"
}
wait_for "READY=1" grep -q READY=1 "$T/notify.txt"
# KSM started as the ksm service does; ksmtuned's first adjustment is an
# interval away (an hour here), as the script's: SIGUSR1 makes it now.
[ "$(cat "$K/run")" = 1 ] || fail "daemon: KSM not started"
[ "$(cat "$K/pages_to_scan")" = 100 ] || fail "daemon: adjusted before the interval"
kill -USR1 $PID
wait_for "the first retune" grep -qx 300 "$K/pages_to_scan"
# More memory free: SIGUSR1 retunes now (decay: 300 - 50 = 250), not in an hour.
sed -i 's/^MemFree:.*/MemFree:         3000000 kB/' "$T/r/proc/meminfo"
kill -USR1 $PID
wait_for "the retune" grep -qx 250 "$K/pages_to_scan"
# A bad configuration at SIGHUP is refused; the old one stays.
cp "$T/run.conf" "$T/run.good"
echo "KSM_THRES_COEF=abc" >> "$T/run.conf"
kill -HUP $PID
wait_for "the refusal" grep -q "configuration refused, keeping the old one" "$T/r.err"
grep -q "run.conf:7: KSM_THRES_COEF=abc" "$T/r.err" || fail "the refusal does not name the line"
# A good one is taken and applied at once: npages restarts from 0, decay -> 64.
cp "$T/run.good" "$T/run.conf"; echo "KSM_NPAGES_MIN=100" >> "$T/run.conf"
kill -HUP $PID
wait_for "the reload" grep -qx 100 "$K/pages_to_scan"
wait_for "the metrics file" grep -q 'samepage_decisions_total{kind="pages_to_scan"} 3' "$T/r.prom"
grep -q 'samepage_guest_ksm_merging_pages{pid="1001",comm="qemu-kvm"} 42' "$T/r.prom" || fail "per-guest ksm_stat missing"
grep -q "SIGHUP: configuration reloaded" "$T/r.log" || fail "LOGFILE lacks the reload"
# A second samepaged on the same KSM is refused (exit 4), naming the first; KSM untouched.
rc=0
"$SD" --once --config "$T/run.conf" --sysfs "$T/r/sys" --procfs "$T/r/proc" > "$T/second.out" 2>&1 || rc=$?
[ $rc = 4 ] || fail "a second samepaged: exit $rc, not 4: $(cat "$T/second.out")"
grep -q "driven by another process (pid $PID, samepaged)" "$T/second.out" ||
	fail "the refusal does not name the first: $(cat "$T/second.out")"
[ "$(cat "$K/pages_to_scan")" = 100 ] || fail "the refused samepaged changed pages_to_scan"
kill -TERM $PID
wait $PID || fail "daemon exit status $?"
PID=
[ "$(cat "$K/run")" = 0 ] || fail "SAMEPAGE_ON_EXIT=stop did not stop KSM"
# The CSV: sim run --csv's columns with the tunables; the last row as the last cycle left KSM.
head -1 "$T/r.csv" | grep -q '^time_ms,pages_shared,pages_sharing,.*,run,pages_to_scan,sleep_millisecs$' ||
	fail "SAMEPAGE_CSV header: $(head -1 "$T/r.csv")"
tail -1 "$T/r.csv" | grep -q ',1,100,20$' || fail "SAMEPAGE_CSV last row: $(tail -1 "$T/r.csv")"
[ "$(wc -l < "$T/r.csv")" -gt 3 ] || fail "SAMEPAGE_CSV has too few rows"
grep -q "STOPPING=1" "$T/notify.txt" || fail "no STOPPING=1"
kill $LISTENER 2>/dev/null || true
echo "ok"
