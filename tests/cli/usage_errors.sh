#!/bin/bash
# Wrong options and bad files give a one-line error and the documented exit
# code (2 usage, 3 bad input, 1 failure), and leave no output file behind.
set -uo pipefail
SIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

err() { echo "FAIL: $*"; fail=1; }
. "$(dirname "$0")/expect.sh"

"$SIM" trace gen -o "$T/ok.sptrace" --guests 2 --pages 100 --snapshots 2
expect 2 "valid: oracle, zero" run --trace "$T/ok.sptrace" --algo nonesuch
expect 2 "--algo is required" run --trace "$T/ok.sptrace"
expect 2 "valid: merge_across_nodes, use_zero_pages" run --trace "$T/ok.sptrace" --algo oracle --set bogus=1
expect 2 "out of range \[1, 1e+07\]" run --trace "$T/ok.sptrace" --algo zero --set pages_to_scan=0
expect 2 "unknown option '--frobnicate'" run --algo oracle --frobnicate
expect 2 "invalid value 'soon' for --duration-ms" run --algo oracle --duration-ms soon
expect 2 "unknown command" fly
expect 2 "--shared-fraction" trace gen -o "$T/x.sptrace" --shared-fraction 2
expect 2 "invalid value" trace gen -o "$T/x.sptrace" --guests -3
expect 1 "No such file" run --trace "$T/missing.sptrace" --algo oracle
echo "hello" > "$T/text.sptrace"
expect 3 "not a samepage trace" trace check "$T/text.sptrace"
expect 3 "not a samepage trace" run --trace "$T/text.sptrace" --algo oracle --csv "$T/out.csv"
[ -e "$T/out.csv" ] && { echo "FAIL: out.csv left after a failed run"; fail=1; }
[ -e "$T/x.sptrace" ] && { echo "FAIL: x.sptrace written despite bad options"; fail=1; }
expect 1 "cannot create" run --trace "$T/ok.sptrace" --algo oracle --csv "$T/no/such/dir/out.csv"
expect 2 "must end in .png or .svg" run --trace "$T/ok.sptrace" --algo oracle --csv "$T/p.csv" --plot "$T/p.gif"
expect 2 "--plot needs --csv" run --trace "$T/ok.sptrace" --algo oracle --plot "$T/p.png"
expect 2 "--snapshot-scans needs --scans" run --trace "$T/ok.sptrace" --algo ksm --snapshot-scans 2
expect 2 "only 0 of the 3 full scans" run --trace "$T/ok.sptrace" --algo ksm --scans 3 --duration-ms 10
expect 2 "--late-guests" trace gen -o "$T/x.sptrace" --guests 2 --late-guests 2
# and success paths produce complete outputs
"$SIM" run --trace "$T/ok.sptrace" --algo oracle --csv "$T/p.csv" --plot "$T/p.png" -q || fail=1
[ "$(head -c 4 "$T/p.png" | tail -c 3)" = "PNG" ] || { echo "FAIL: no PNG written"; fail=1; }
"$SIM" run --trace "$T/ok.sptrace" --algo zero --csv "$T/good.csv" -q || fail=1
# counting in full scans: one row per full scan, 1..N
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --scans 4 --snapshot-scans 1 --csv "$T/scans.csv" -q || fail=1
[ "$(awk -F, 'NR > 1 { printf "%s ", $6 }' "$T/scans.csv")" = "1 2 3 4 " ] || { echo "FAIL: --scans rows: $(cat "$T/scans.csv")"; fail=1; }
[ "$(head -1 "$T/good.csv" | cut -d, -f1-3)" = "time_ms,pages_shared,pages_sharing" ] || { echo "FAIL: CSV header"; fail=1; }
ls "$T" | grep -q tmp- && { echo "FAIL: temporary files left: $(ls "$T")"; fail=1; }
"$SIM" --help | grep -q "usage: sim" || fail=1
"$SIM" run --help | grep -q -- "--sample-ms" || fail=1
exit $fail
