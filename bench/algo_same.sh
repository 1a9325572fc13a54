#!/bin/bash
# Results do not move: `sim run` of two builds, byte for byte, for the
# algorithms other than ksm and oracle (issue 14's speed work on zero, uksm,
# cmd and esx; bench/ksm_same.sh does the same for the ksm model).  Runs
# both builds on the three samples and on five generated traces (static;
# writes + late guests; huge pages; 2 nodes + 2 domains; many shared contents
# + zero pages) under each of zero, uksm, cmd and esx with their defaults and
# other settings (fast scans to a scan count, snapshots at scan ends, other
# kernels, across-node and zero-page settings, long idle tails that the
# idle fast-forward skips, and the same with --no-skip), and compares each
# pair's --csv output and summary (stdout).
# Usage: bench/algo_same.sh OLD_SIM NEW_SIM [workdir]
#   ALGOS: the algorithms (default "zero uksm cmd esx").
# Prints one line per difference and "N runs, M differ"; exit 1 if any differ.
set -euo pipefail
ALGOS=${ALGOS:-zero uksm cmd esx}
# shellcheck source=bench/same_lib.sh
. "$(dirname "$0")/same_lib.sh"
same_init "$@"
# Traces: generated once per workdir.
gen static --guests 4 --pages 16384 --snapshots 3 --write-rate 0 --seed 2
gen writes --guests 6 --pages 8192 --snapshots 6 --write-rate 0.2 --late-guests 2 --seed 7
gen huge --guests 4 --pages 16384 --snapshots 4 --huge-fraction 0.3 --seed 3
gen numa --guests 4 --pages 8192 --snapshots 3 --nodes 2 --domains 2 --seed 4
gen shared --guests 8 --pages 32768 --snapshots 3 --shared-contents 200 --zero-fraction 0.1 \
	--late-guests 2 --seed 5
TRACES=("$S/small.sptrace" "$S/qemu4x512.sptrace" "$S/numa2.sptrace"
	"$W/static.sptrace" "$W/writes.sptrace" "$W/huge.sptrace" "$W/numa.sptrace" "$W/shared.sptrace")
# Settings per algorithm (one run each, on every trace).
settings() {
	echo ""
	echo "--tail-ms 600000"
	echo "--tail-ms 600000 --no-skip"
	case $1 in
	esx)
		echo "--set share_scan_vm=5000 --set share_scan_total=20000 --duration-ms 30000"
		echo "--set use_zero_pages=1 --set merge_across_nodes=0 --set share_large_pages=1 --set share_scan_vm=2000 --seed 9"
		echo "--kernel 6.1 --set share_scan_total=50000"
		;;
	*)
		echo "--scans 3 --set pages_to_scan=2000"
		echo "--scans 8 --snapshot-scans 2 --set pages_to_scan=5000"
		echo "--kernel 6.1 --scans 4 --set pages_to_scan=5000"
		echo "--set pages_to_scan=100000 --set sleep_millisecs=0 --snapshot-scans 1 --scans 6"
		;;
	esac
	case $1 in
	cmd) echo "--set merge_across_nodes=0 --set use_zero_pages=1 --set history=4 --set classes=2" ;;
	uksm) echo "--set merge_across_nodes=0 --set use_zero_pages=0 --set region_pages=64 --set levels=3"
	      echo "--set adaptive_hash=0 --set level_stride=8 --set pages_to_scan=3000" ;;
	esac
}
for t in "${TRACES[@]}"; do
	case $t in /*) tt=$t ;; *) tt=$PWD/$t ;; esac
	for a in $ALGOS; do
		while IFS= read -r s; do
			# shellcheck disable=SC2086
			one "$a $(basename "$t") $s" --trace "$tt" --algo "$a" $s
		done < <(settings "$a")
	done
done
same_end
