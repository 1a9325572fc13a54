#!/bin/bash
# bench_samepaged.sh - samepaged's own CPU on this host, per decision cycle
# and as a share of one core at ksmtuned's 60 s interval, against an anchor
# measured in the same run: one adjust() of the ksmtuned script (the
# commands it runs each minute: pgrep for QEMU, ps for their RSS, awk over
# meminfo), as /bin/sh runs them.
#
#   bench/bench_samepaged.sh build/samepaged [SECONDS]
#
# samepaged runs --dry-run (nothing is written) on the real /proc and /sys
# with SAMEPAGE_POLL_SEC=0.01, so it does a cycle every 10 ms for SECONDS
# (default 10); its CPU (user + system, from the kernel's rusage of the child)
# divided by samepage_cycles_total is the cost of one cycle.  A cycle reads
# meminfo, every /proc/PID/comm (plus status and ksm_stat of QEMU processes),
# vmstat, ksmd's stat, the KSM directory, and writes the metrics textfile.
set -euo pipefail
SD=$1
SECS=${2:-10}
command -v python3 >/dev/null || { echo "needs python3"; exit 2; }
[ -d /sys/kernel/mm/ksm ] || { echo "needs /sys/kernel/mm/ksm"; exit 4; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat > "$T/conf" <<CONF
KSM_MONITOR_INTERVAL=60
SAMEPAGE_POLL_SEC=0.01
SAMEPAGE_METRICS=$T/m.prom
CONF
echo "load average before: $(cat /proc/loadavg)"
echo "processes in /proc: $(ls -d /proc/[0-9]* | wc -l)"
python3 - "$SD" "$T/conf" "$T/m.prom" "$SECS" <<'PY'
import os, re, resource, signal, subprocess, sys, time
sd, conf, prom, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

# The anchor: ksmtuned's adjust(), as the script runs it (committed_memory + free_memory).
adjust = ("pidlist=$(pgrep -f -d ' ' '^qemu-system.*-enable-kvm'); "
          "if [ -n \"$pidlist\" ]; then ps -p \"$pidlist\" -o rsz=; fi | awk '{ sum += $1 }; END { print 0+sum }' >/dev/null; "
          "awk '/^(MemFree|Buffers|Cached):/ {free += $2}; END {print free}' /proc/meminfo >/dev/null")
n_anchor = 200
c0 = children_cpu()
for _ in range(n_anchor):
    subprocess.run(["/bin/sh", "-c", adjust], check=True)
anchor = (children_cpu() - c0) / n_anchor

c0 = children_cpu()
p = subprocess.Popen([sd, "--config", conf, "--dry-run", "--foreground"], stderr=subprocess.DEVNULL)
time.sleep(secs)
p.send_signal(signal.SIGTERM)
p.wait()
cpu = children_cpu() - c0
cycles = int(re.search(r"^samepage_cycles_total (\d+)", open(prom).read(), re.M).group(1))
per_cycle = cpu / cycles
# At ksmtuned's 60 s interval with the default SAMEPAGE_POLL_SEC=10: one
# cycle every 10 s (the policy's own tick falls on one of them).
share = per_cycle * 6 / 60 * 100
print(f"anchor: ksmtuned adjust() {anchor * 1e3:.3f} ms CPU ({n_anchor} runs)")
print(f"samepaged: {cycles} cycles in {secs:g} s, {cpu:.3f} s CPU: {per_cycle * 1e6:.1f} us per cycle "
      f"= {per_cycle / anchor:.3f} x the anchor")
print(f"samepaged at a 60 s interval, a cycle every 10 s: {share:.5f}% of one core "
      f"(ksmtuned's script, one adjust a minute: {anchor / 60 * 100:.5f}%)")
PY
echo "load average after: $(cat /proc/loadavg)"
