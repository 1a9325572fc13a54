#!/bin/bash
# Results do not move: `sim run` of two builds, byte for byte (issue 14's
# speed work on the ksm model).  Runs both builds on the three samples and on
# three generated traces (huge pages + 2 nodes + 2 domains; many shared
# contents + zero pages; writes + late guests) under the ksm model with 15
# settings, and the other algorithms at their defaults, and compares each
# pair's --csv output and summary (stdout); the CSV path echoed in a note is
# the only difference allowed (both runs write the same file name).
# Usage: bench/ksm_same.sh OLD_SIM NEW_SIM [workdir]
# Byte-identical release runs can miss a wrong hint that these traces do not
# reach (stop 28: a stale look-ahead walk before 6.11, caught only by the
# ASan run of ksm_proof_6.1).  For changes to the ksm model's look-ahead, run
# it once more with a Debug build as NEW_SIM (cmake -DCMAKE_BUILD_TYPE=Debug):
# Debug builds check every walk used against a fresh one and abort on a
# difference.
# Prints one line per difference and "N runs, M differ"; exit 1 if any differ.
set -euo pipefail
# shellcheck source=bench/same_lib.sh
. "$(dirname "$0")/same_lib.sh"
same_init "$@"
# Traces: generated once per workdir.
gen huge --guests 4 --pages 16384 --snapshots 4 --huge-fraction 0.3 --nodes 2 --domains 2 --seed 3
gen shared --guests 8 --pages 32768 --snapshots 3 --shared-contents 200 --zero-fraction 0.1 --seed 5
gen writes --guests 6 --pages 8192 --snapshots 6 --write-rate 0.2 --late-guests 2 --seed 7
TRACES=("$S/small.sptrace" "$S/qemu4x512.sptrace" "$S/numa2.sptrace"
	"$W/huge.sptrace" "$W/shared.sptrace" "$W/writes.sptrace")
SETTINGS=(
	""
	"--set pages_to_scan=2000"
	"--set pages_to_scan=10000 --set sleep_millisecs=0 --scans 4"
	"--kernel 6.1"
	"--kernel 5.14"
	"--set max_page_sharing=2"
	"--set max_page_sharing=3 --set stable_node_chains_prune_millisecs=100"
	"--set merge_across_nodes=0"
	"--set use_zero_pages=1"
	"--set use_zero_pages=1 --kernel 6.6"
	"--set smart_scan=0"
	"--set write_tracking=1"
	"--scans 8 --snapshot-scans 2"
	"--no-skip"
	"--set write_tracking=1 --set max_page_sharing=2 --set pages_to_scan=5000"
)
for t in "${TRACES[@]}"; do
	case $t in /*) tt=$t ;; *) tt=$PWD/$t ;; esac
	for s in "${SETTINGS[@]}"; do
		# shellcheck disable=SC2086
		one "ksm $(basename "$t") $s" --trace "$tt" --algo ksm $s
	done
	for a in oracle zero esx uksm cmd; do
		one "$a $(basename "$t")" --trace "$tt" --algo "$a"
	done
done
same_end
