#!/bin/bash
# Regenerates the synthetic sample traces shipped in this folder, byte for
# byte (the generator is deterministic; tests/cli/gen_deterministic.sh checks
# that it still is).  Usage: SIM=build/sim OUT=traces/samples make-samples.sh
set -euo pipefail
SIM=${SIM:-build/sim}
OUT=${OUT:-$(dirname "$0")}

# small: 4 guests x 32 MiB, 10 snapshots 1 s apart; half the non-zero pages
# shared (Zipf), 10% zero, 20% of the pages volatile.  The Quick start's trace.
"$SIM" trace gen -o "$OUT/small.sptrace" --guests 4 --pages 8192 --snapshots 10 \
	--interval-ms 1000 --shared-fraction 0.5 --zero-fraction 0.1 --write-rate 0.05 \
	--volatile-fraction 0.2 --seed 1 --format-version 1

# numa2: 4 guests on two NUMA nodes and two security domains, a quarter of
# the memory on huge pages, busier writes.
"$SIM" trace gen -o "$OUT/numa2.sptrace" --guests 4 --pages 4096 --snapshots 8 \
	--interval-ms 2000 --shared-fraction 0.6 --zero-fraction 0.15 --write-rate 0.2 \
	--volatile-fraction 0.3 --huge-fraction 0.25 --nodes 2 --domains 2 --seed 2 --format-version 1
