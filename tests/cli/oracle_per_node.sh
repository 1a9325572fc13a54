#!/bin/bash
# The oracle with merge_across_nodes=0 saves exactly present pages minus
# distinct contents per (security domain, NUMA node), on a generated trace of
# 300 nodes: counted here with awk over `sim trace export` (each page's node)
# and `sim trace info` (each guest's domain), sharing no code with the
# simulator.  Nodes 0 and 256 both hold domain 0 guests: a partition key that
# keeps only the node's low 8 bits merges them and fails this check.
set -euo pipefail
SIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$SIM" trace gen -o "$T/t.sptrace" --guests 600 --pages 64 --snapshots 4 --interval-ms 1000 \
	--nodes 300 --domains 2 --shared-fraction 0.8 --zero-fraction 0.1 --write-rate 0.3 --seed 3
"$SIM" trace export "$T/t.sptrace" --csv "$T/pages.csv"
"$SIM" trace info "$T/t.sptrace" > "$T/info.txt"
"$SIM" run --trace "$T/t.sptrace" --algo oracle --set merge_across_nodes=0 --sample-ms 1000 \
	--duration-ms 3000 --csv "$T/run.csv" -q

head -1 "$T/pages.csv" | grep -qx 'snapshot,time_ms,guest,page,fingerprint,zero,node,huge'
# guest name -> domain, from the info's guest table
awk '$1 ~ /^guest[0-9]+$/ && $4 == "domain" { print $1 "," $5 }' "$T/info.txt" > "$T/domains"
[ "$(wc -l < "$T/domains")" -eq 600 ] || { echo "expected 600 guests in trace info"; exit 1; }
nodes=$(awk -F, 'NR > 1 { print $7 }' "$T/pages.csv" | sort -u | wc -l)
[ "$nodes" -ge 300 ] || { echo "expected >= 300 nodes in the export, got $nodes"; exit 1; }

# expected: time_ms,present-distinct with contents counted per (domain, node)
awk -F, 'FILENAME == ARGV[1] { dom[$1] = $2; next }
	FNR > 1 { n[$2]++; if (!seen[$2 "," dom[$3] "," $7 "," $5]++) d[$2]++ }
	END { for (t in n) print t "," n[t] - d[t] }' "$T/domains" "$T/pages.csv" | sort -n > "$T/expected"
col=$(head -1 "$T/run.csv" | tr , '\n' | grep -nx pages_sharing | cut -d: -f1)
awk -F, -v c="$col" 'NR > 1 && $1 % 1000 == 0 { print $1 "," $c }' "$T/run.csv" | sort -n > "$T/actual"

[ "$(wc -l < "$T/expected")" -eq 4 ] || { echo "expected 4 snapshots in the export"; exit 1; }
if ! diff "$T/expected" "$T/actual"; then
	echo "FAIL: oracle pages_sharing differs from the per-(domain, node) count (< expected, > actual)"
	exit 1
fi
# Per node the saving is smaller than across nodes: the partitions did split.
across=$(awk -F, 'NR > 1 { n[$2]++; if (!seen[$2 "," $5]++) d[$2]++ } END { for (t in n) s += n[t] - d[t]; print s }' "$T/pages.csv")
per_node=$(awk -F, '{ s += $2 } END { print s }' "$T/expected")
[ "$per_node" -lt "$across" ] || { echo "per-node saving $per_node not below across-node $across"; exit 1; }
echo "oracle per (domain, node) matches the independent count at all 4 snapshots:"
cat "$T/expected"
