#!/bin/bash
# --kernel: bad versions and behaviours are usage errors naming the token; a
# tunable or controller the version lacks is refused with the version and
# commit that added it; counters it lacks are left out of the CSV with a
# note each; the version changes the ksm model's numbers and is in reports.
set -uo pipefail
SIM=$1 T=$(mktemp -d) fail=0
trap 'rm -rf "$T"' EXIT
err() { echo "FAIL: $*"; fail=1; } && . "$(dirname "$0")/expect.sh"

"$SIM" trace gen -o "$T/ok.sptrace" --guests 2 --pages 300 --snapshots 2 --zero-fraction 0.2 || exit 1
expect 2 "covers Linux 5.14" run --trace "$T/ok.sptrace" --algo ksm --kernel 4.19
expect 2 "no behaviour 'turbo'; valid: general_profit" run --trace "$T/ok.sptrace" --algo ksm --kernel 6.1,turbo=1
expect 2 "expected MAJOR.MINOR" run --trace "$T/ok.sptrace" --algo ksm --kernel 6
expect 2 "Linux 6.1 has no smart_scan (added in 6.7, 5e924ff54d08" \
	run --trace "$T/ok.sptrace" --algo ksm --kernel 6.1 --set smart_scan=1
expect 2 "Linux 6.6 has no advisor (added in 6.8" \
	run --trace "$T/ok.sptrace" --algo ksm --kernel 6.6 --controller advisor
expect 2 "Linux 6.1 has no smart_scan" \
	sweep --trace "$T/ok.sptrace" --algo ksm --kernel 6.1 --vary smart_scan=0,1 --report "$T/sw" -q
[ -e "$T/sw/index.html" ] && err "sweep wrote a report despite the refusal"
# A backported behaviour is accepted.
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --kernel 6.1,smart_scan=1 --set smart_scan=1 -q || err "6.1,smart_scan=1 refused"

header() { head -1 "$1" | tr ',' '\n' | sort | tr '\n' ' '; }
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --csv "$T/new.csv" -q 2>"$T/new.err" || err "default run failed"
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --kernel 6.1 --csv "$T/old.csv" -q 2>"$T/old.err" || err "6.1 run failed"
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --kernel 6.6 --csv "$T/mid.csv" -q 2>"$T/mid.err" || err "6.6 run failed"
[ -s "$T/new.err" ] && err "default run printed: $(cat "$T/new.err")"
for c in pages_scanned pages_skipped ksm_zero_pages general_profit; do
	header "$T/new.csv" | grep -qw "$c" || err "default CSV lacks $c"
	header "$T/old.csv" | grep -qw "$c" && err "6.1 CSV has $c"
	grep -q "Linux 6.1 has no $c .*left out of" "$T/old.err" || err "no note for $c"
done
[ "$(wc -l <"$T/old.err")" -eq 4 ] || err "6.1 notes: $(cat "$T/old.err")"
header "$T/mid.csv" | grep -qw pages_skipped && err "6.6 CSV has pages_skipped"
header "$T/mid.csv" | grep -qw ksm_zero_pages || err "6.6 CSV lacks ksm_zero_pages"
[ "$(wc -l <"$T/old.csv")" -eq "$(wc -l <"$T/new.csv")" ] || err "6.1 and default CSVs differ in rows"
# Every 6.1 row has as many fields as its header.
awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad }' "$T/old.csv" || err "6.1 CSV rows and header disagree"
# 6.6 counts pages_scanned per batch (pages_to_scan + 1), 6.10 per visit: the columns differ.
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --kernel 6.10 --csv "$T/fix.csv" -q || err "6.10 run failed"
col() { awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i } END { print $c }' "$1"; }
[ "$(col "$T/mid.csv" pages_scanned)" != "$(col "$T/fix.csv" pages_scanned)" ] ||
	err "pages_scanned is the same on 6.6 and 6.10"
"$SIM" run --trace "$T/ok.sptrace" --algo ksm --kernel 6.1 | grep -q "^kernel      Linux 6.1 (without general_profit" ||
	err "no kernel line in the summary"
"$SIM" compare --trace "$T/ok.sptrace" --algos ksm,esx --kernel 6.1 --report "$T/cmp" -q || err "compare failed"
grep -q "Linux 6.1 (--kernel" "$T/cmp/index.html" || err "the report does not name the kernel"
"$SIM" validate --help | grep -q -- "--kernel VERSION" || err "validate has no --kernel"
exit $fail
