# Sourced by the live commands' fake-tree tests, with $T a fresh scratch
# directory: builds a fake KSM directory K=$T/sys/kernel/mm/ksm (run=1,
# 1,000,000 pages_sharing of other processes, the rest the kernel's defaults)
# and $T/proc for meminfo, points the live commands at them
# ($SAMEPAGE_SYSFS, $SAMEPAGE_PROCFS) and defines
#   meminfo KB  - writes $T/proc/meminfo with MemAvailable KB and no swap
#   snapshot    - every file of K as path:value, sorted (advisor_mode as a
#                 write leaves it: a plain file does not bracket the choice)
# Without a scratch directory the fake tree would be the host's own
# /sys/kernel/mm/ksm and /proc/meminfo ("$T/sys" = "/sys"): it stops before
# anything is written.
[ -n "${T:-}" ] && [ -d "$T" ] || { echo "FAIL: no scratch directory (mktemp -d)"; exit 1; }
K="$T/sys/kernel/mm/ksm"
mkdir -p "$K" "$T/proc"
for kv in run=1 pages_to_scan=100 sleep_millisecs=20 merge_across_nodes=1 use_zero_pages=0 \
	max_page_sharing=256 smart_scan=1 stable_node_chains_prune_millisecs=2000 pages_shared=9000 \
	pages_sharing=1000000 pages_unshared=0 pages_volatile=0 full_scans=7 pages_scanned=0 \
	pages_skipped=0 ksm_zero_pages=0 stable_node_chains=0 stable_node_dups=0 general_profit=0; do
	echo "${kv#*=}" > "$K/${kv%%=*}"
done
echo "[none] scan-time" > "$K/advisor_mode"
meminfo() {
	printf 'MemTotal:        8388608 kB\nMemFree:          500000 kB\nMemAvailable:    %s kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n' "$1" > "$T/proc/meminfo"
}
snapshot() { grep -r . "$K" | sed 's/^\(.*advisor_mode:\)\[none\] scan-time$/\1none/' | sort; }
export SAMEPAGE_SYSFS="$T/sys" SAMEPAGE_PROCFS="$T/proc" SIM_NO_PROGRESS=1
