#!/bin/bash
# Benchmark: the `ksm` model against Debian's 6.1 and 6.12 kernels, full scan
# by full scan (issue 13).  Runs tests/real/ksm_proof.sh for each kernel (QEMU
# TCG guests; see that script for the traces and tunables) and prints one row
# per trace and tunable set: the kernel's pages_sharing after full scans 1, 2
# and 3 and at the steady state (the last scan), the model's error at each
# (the kernel's value is the anchor: error = (model - kernel) / kernel), and
# how many of all the counter values the kernel has (pages_shared,
# pages_unshared, pages_volatile, pages_scanned, ... at every scan) are equal.
# Needs qemu-system-x86_64, busybox-static, cpio and the kernel packages
# (traces/guestkit fetches them); takes 3-6 minutes; the load average is
# printed before and after (TCG guests are slowed by load, the full-scan
# counts are not).
# Usage: bench/bench_kproof.sh [BUILD_DIR]   (results: bench/README.md)
set -euo pipefail
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "load average before: $(cat /proc/loadavg)"
for k in 6.1 6.12; do
	rc=0
	KSM_PROOF_JOBS=${KSM_PROOF_JOBS:-3} bash "$ROOT/tests/real/ksm_proof.sh" "$k" "$B/sim" "$B/tests/ksm_guest" \
		"$T/$k.csv" > "$T/$k.out" 2>&1 || rc=$?
	[ $rc -eq 77 ] && { grep "^skip" "$T/$k.out"; continue; }
	grep "all counters" "$T/$k.out" > "$T/$k.all" || true
	grep -v "^6\.\|ok:" "$T/$k.out" || true
done
echo "load average after:  $(cat /proc/loadavg)"
echo
echo "| kernel | trace | tunables | scan 1: kernel (model err) | scan 2 | scan 3 | steady (scan N) | all counters equal |"
echo "|---|---|---|---|---|---|---|---|"
for k in 6.1 6.12; do
	[ -f "$T/$k.csv" ] || continue
	awk -F, -v allf="$T/$k.all" '
		BEGIN {
			while ((getline line < allf) > 0) {
				n = split(line, w, " ")
				# "6.1 static default all counters: 36 of 36 values equal[; x differs in n scans]"
				all[w[2] "," w[3]] = w[6] " of " w[8] (index(line, ";") ? " (" substr(line, index(line, ";") + 2) ")" : "")
			}
		}
		NR == 1 { next }
		{
			key = $2 "," $3
			if (!(key in first)) { first[key] = 1; order[++nk] = key; ser[key] = $1 }
			cell = sprintf("%d (%s)", $5, $5 == $6 ? "0" : $5 ? sprintf("%+.2f%%", 100 * ($6 - $5) / $5) : "model " $6)
			if ($4 <= 3) c[key, $4] = cell
			last[key] = cell; lastn[key] = $4
		}
		END {
			for (i = 1; i <= nk; i++) {
				key = order[i]; split(key, kt, ",")
				printf "| %s | %s | %s | %s | %s | %s | %s (scan %d) | %s |\n", ser[key], kt[1], kt[2],
					c[key, 1], c[key, 2], c[key, 3], last[key], lastn[key], all[key]
			}
		}' "$T/$k.csv"
done
