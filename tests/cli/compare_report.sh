#!/bin/bash
# sim compare writes a complete report: every file, the right headers, a
# row per algorithm; summary.csv agrees with what the per-algorithm CSVs
# say (recomputed here: final and peak savings, oracle %, time to 90%, CPU,
# COW breaks); failing runs (corrupt trace, bad --set, unknown algorithm)
# exit with one line and leave no index.html; no temporary files remain.
set -uo pipefail
SIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
err() { echo "FAIL: $*"; fail=1; }

"$SIM" trace gen -o "$T/t.sptrace" --guests 3 --pages 600 --snapshots 5 --write-rate 0.1 --seed 7 || exit 1
R=$T/report/nested
"$SIM" compare --trace "$T/t.sptrace" --algos oracle,zero,ksm,ksm@fast --set ksm.use_zero_pages=1 \
	--set ksm@fast.pages_to_scan=1000 --tail-ms 20000 --sample-ms 500 --jobs 2 --report "$R" -q \
	|| err "compare failed"
ALGOS="oracle zero ksm ksm@fast"
for f in summary.csv compare.gp index.html savings.png savings.svg cpu.png cpu.svg cpu_pct.png cpu_pct.svg cow.png cow.svg \
	savings_cpu.png savings_cpu.svg; do
	[ -s "$R/$f" ] || err "$f missing or empty"
done
for a in $ALGOS; do
	[ -s "$R/$a.csv" ] || err "$a.csv missing"
	[ "$(head -1 "$R/$a.csv" | cut -d, -f1-3)" = "time_ms,pages_shared,pages_sharing" ] || err "$a.csv header"
	grep -q ">$a<" "$R/index.html" || err "index.html does not name $a"
done
[ "$(head -c 4 "$R/savings.png" | tail -c 3)" = "PNG" ] || err "savings.png is not a PNG"
grep -q "<svg" "$R/savings.svg" || err "savings.svg is not an SVG"
grep -q '<img src="savings.svg"' "$R/index.html" || err "index.html does not show the plots"
grep -q "</html>" "$R/index.html" || err "index.html incomplete"
[ "$(head -1 "$R/summary.csv")" = "algorithm,final_saved_pages,final_saved_mib,peak_saved_pages,peak_saved_mib,oracle_pages,pct_of_oracle,time_to_90pct_s,cpu_s,cow_breaks,mib_per_cpu_s,params,cpu_pct_of_core,saved_pct_of_present,remote_sharers,note" ] \
	|| err "summary.csv header: $(head -1 "$R/summary.csv")"
[ "$(wc -l < "$R/summary.csv")" -eq 5 ] || err "summary.csv: want 4 rows"
grep -q "^ksm@fast,.*pages_to_scan=1000 .*use_zero_pages=1" "$R/summary.csv" || err "alias settings not applied"
grep -q "^ksm,.*pages_to_scan=100 .*use_zero_pages=1" "$R/summary.csv" || err "name settings not applied"

# recompute every summary row from the time series
for a in $ALGOS; do
	want=$(awk -F, -v a="$a" 'BEGIN { n = 0 } NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		{ t[n] = $c["time_ms"]; s[n] = $c["pages_sharing"] + $c["ksm_zero_pages"] + $c["thp_zero_pages"];
		  if (n == 0 || s[n] > peak) peak = s[n]; o = $c["oracle_saving"]; cpu = $c["cpu_ns"];
		  cow = $c["cow_breaks"]; n++ }
		END { fin = s[n - 1]; for (i = 0; i < n; i++) if (10 * s[i] >= 9 * fin) { t90 = t[i]; break }
		      printf "%s,%d,%.3f,%d,%.3f,%d,%.2f,%.3f,%.3f,%d\n", a, fin, fin * 4096 / 1048576, peak,
		             peak * 4096 / 1048576, o, (o > 0 ? 100 * fin / o : 100), t90 / 1000, cpu / 1e9, cow }' \
		"$R/$a.csv")
	got=$(grep "^$a," "$R/summary.csv" | cut -d, -f1-10)
	[ "$want" = "$got" ] || err "summary of $a: got '$got', recomputed '$want'"
done
ls -R "$T/report" | grep -q tmp- && err "temporary files left: $(ls "$R")"

. "$(dirname "$0")/expect.sh"
# failures leave no index.html
head -c 3000 "$T/t.sptrace" > "$T/cut.sptrace"
expect 3 "" compare --trace "$T/cut.sptrace" --algos oracle,ksm --report "$T/bad1"
[ -e "$T/bad1/index.html" ] && err "index.html after a truncated trace"
printf 'garbage' > "$T/text.sptrace"
expect 3 "not a samepage trace" compare --trace "$T/text.sptrace" --algos oracle,ksm --report "$T/bad2"
[ -e "$T/bad2/index.html" ] && err "index.html after a corrupt trace"
expect 2 "out of range" compare --trace "$T/t.sptrace" --algos oracle,ksm --set ksm.pages_to_scan=-5 --report "$T/bad3"
expect 2 "valid: " compare --trace "$T/t.sptrace" --algos oracle,ksm --set ksm.bogus=1 --report "$T/bad3"
expect 2 "not in --algos" compare --trace "$T/t.sptrace" --algos oracle,ksm --set zero.pages_to_scan=5 --report "$T/bad3"
expect 2 "ALGO.key=value" compare --trace "$T/t.sptrace" --algos oracle,ksm --set pages_to_scan=5 --report "$T/bad3"
expect 2 "unknown algorithm 'nonesuch'" compare --trace "$T/t.sptrace" --algos oracle,nonesuch --report "$T/bad3"
expect 2 "listed twice" compare --trace "$T/t.sptrace" --algos ksm,ksm --report "$T/bad3"
expect 2 "--report DIR is required" compare --trace "$T/t.sptrace" --algos ksm
[ -e "$T/bad3" ] && err "bad options created the report directory"
# a failure after an earlier complete report keeps that report whole
"$SIM" compare --trace "$T/text.sptrace" --algos oracle --report "$R" 2>/dev/null && err "corrupt trace accepted"
cmp -s <(ls "$R") <(printf '%s\n' compare.gp cow.png cow.svg cpu.png cpu.svg cpu_pct.png cpu_pct.svg index.html ksm.csv ksm@fast.csv \
	oracle.csv savings.png savings.svg savings_cpu.png savings_cpu.svg summary.csv zero.csv) || err "report changed: $(ls "$R")"
"$SIM" compare --help | grep -q -- "--algos" || err "compare --help"
exit $fail
