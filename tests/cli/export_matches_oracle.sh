#!/bin/bash
# The oracle saves exactly what an independent count over `sim trace export`
# says: present pages minus distinct fingerprints, per snapshot.  The count is
# done here with awk on the CSV, sharing no code with the simulator.
set -euo pipefail
SIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$SIM" trace gen -o "$T/t.sptrace" --guests 3 --pages 5000 --snapshots 6 --interval-ms 1000 \
	--shared-fraction 0.6 --zero-fraction 0.15 --write-rate 0.3 --seed 11
"$SIM" trace export "$T/t.sptrace" --csv "$T/pages.csv"
"$SIM" run --trace "$T/t.sptrace" --algo oracle --sample-ms 1000 --duration-ms 5000 \
	--csv "$T/run.csv" -q

head -1 "$T/pages.csv" | grep -qx 'snapshot,time_ms,guest,page,fingerprint,zero,node,huge'

# expected: time_ms,present-distinct for each snapshot
awk -F, 'NR > 1 { n[$2]++; if (!seen[$2 "," $5]++) d[$2]++ }
	END { for (t in n) print t "," n[t] - d[t] }' "$T/pages.csv" | sort -n > "$T/expected"
# actual: time_ms,pages_sharing at the snapshot times
col=$(head -1 "$T/run.csv" | tr , '\n' | grep -nx pages_sharing | cut -d: -f1)
awk -F, -v c="$col" 'NR > 1 && $1 % 1000 == 0 { print $1 "," $c }' "$T/run.csv" | sort -n > "$T/actual"

if [ "$(wc -l < "$T/expected")" -ne 6 ]; then
	echo "expected 6 snapshots in the export, got $(wc -l < "$T/expected")"; exit 1
fi
if ! diff "$T/expected" "$T/actual"; then
	echo "FAIL: oracle pages_sharing differs from the independent count (< expected, > actual)"
	exit 1
fi
echo "oracle matches the independent count at all 6 snapshots:"
cat "$T/expected"
