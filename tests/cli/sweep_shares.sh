#!/bin/bash
# sim sweep: the per-point statistics equal a hand computation over runs.csv
# (mean, sample sd, 95% CI with Student's t for 3 seeds = 4.302652730);
# a sweep split into shares (--task-id/--tasks) and merged gives the same
# sweep.csv and runs.csv as one unsharded run; merging incomplete or
# inconsistent shares fails with one line and writes no index.html.
set -uo pipefail
SIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
err() { echo "FAIL: $*"; fail=1; }

"$SIM" trace gen -o "$T/t.sptrace" --guests 3 --pages 600 --snapshots 5 --write-rate 0.1 --seed 7 || exit 1
ARGS=(--trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=40,200 --vary sleep_millisecs=10,50,100
      --seeds 3 --spread-writes --tail-ms 10000 --sample-ms 500 -q)
"$SIM" sweep "${ARGS[@]}" --report "$T/one" || err "sweep failed"
for f in runs.csv sweep.csv sweep.gp index.html sweep_savings.png sweep_savings.svg sweep_cpu.png \
	sweep_cpu.svg sweep_t90.png sweep_t90.svg sweep_frontier.png sweep_frontier.svg; do
	[ -s "$T/one/$f" ] || err "$f missing or empty"
done
[ "$(wc -l < "$T/one/sweep.csv")" -eq 7 ] || err "sweep.csv: want 6 points"
[ "$(wc -l < "$T/one/runs.csv")" -eq 19 ] || err "runs.csv: want 18 runs"
head -1 "$T/one/sweep.csv" | grep -q "^point,pages_to_scan,sleep_millisecs,runs,saved_mean_pages,saved_sd_pages,saved_ci95_pages" \
	|| err "sweep.csv header: $(head -1 "$T/one/sweep.csv")"
# the grid: last key fastest
[ "$(cut -d, -f2,3 "$T/one/sweep.csv" | tail -n +2 | tr '\n' ' ')" = "40,10 40,50 40,100 200,10 200,50 200,100 " ] \
	|| err "grid order: $(cut -d, -f2,3 "$T/one/sweep.csv" | tr '\n' ' ')"
# seeds matter with --spread-writes: not every point has sd 0
awk -F, 'NR > 1 && $6 + $11 + $14 > 0 { v = 1 } END { exit !v }' "$T/one/sweep.csv" || err "seeds made no difference"

# hand computation: per point mean, sd and t-based CI of final savings, t90 and CPU
awk -F, '
	FNR == 1 { for (i = 1; i <= NF; i++) c[FILENAME, $i] = i; next }
	FILENAME ~ /runs.csv$/ {
		p = $c[FILENAME, "point"]; k = n[p]++
		x[p, "saved", k] = $c[FILENAME, "final_saved_pages"]
		x[p, "t90", k] = $c[FILENAME, "time_to_90pct_ms"] / 1000
		x[p, "cpu", k] = $c[FILENAME, "cpu_ns"] / 1e9
		next
	}
	{
		p = $1; split("saved t90 cpu", what, " ")
		for (w = 1; w <= 3; w++) {
			m = 0; for (k = 0; k < n[p]; k++) m += x[p, what[w], k]; m /= n[p]
			v = 0; for (k = 0; k < n[p]; k++) v += (x[p, what[w], k] - m) ^ 2; sd = sqrt(v / (n[p] - 1))
			ci = 4.302652730 * sd / sqrt(n[p])
			split(what[w] == "saved" ? "saved_mean_pages saved_sd_pages saved_ci95_pages" : \
			      what[w] == "t90" ? "t90_mean_s t90_sd_s t90_ci95_s" : "cpu_mean_s cpu_sd_s cpu_ci95_s", col, " ")
			got[1] = $c[FILENAME, col[1]]; got[2] = $c[FILENAME, col[2]]; got[3] = $c[FILENAME, col[3]]
			want[1] = m; want[2] = sd; want[3] = ci
			for (j = 1; j <= 3; j++) {
				d = got[j] - want[j]; if (d < 0) d = -d
				if (d > 1e-6 * (1 + (want[j] < 0 ? -want[j] : want[j]))) {
					printf "FAIL: point %s %s: got %s, hand %.10g\n", p, col[j], got[j], want[j]; bad = 1
				}
			}
		}
		checked++
	}
	END { if (checked != 6) { print "FAIL: checked " checked " points"; bad = 1 } exit bad }' \
	"$T/one/runs.csv" "$T/one/sweep.csv" || fail=1
# Pareto: a point is marked iff no other point has <= CPU and >= savings, one strictly
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{ s[NR] = $c["saved_mean_pages"]; u[NR] = $c["cpu_mean_s"]; f[NR] = $c["pareto"]; n = NR }
	END { for (i = 2; i <= n; i++) { dom = 0
		for (j = 2; j <= n; j++) if (u[j] <= u[i] && s[j] >= s[i] && (u[j] < u[i] || s[j] > s[i])) dom = 1
		if (f[i] != !dom) { print "FAIL: pareto flag of row " i; bad = 1 } } exit bad }' "$T/one/sweep.csv" || fail=1

# shares: 18 runs over 4 tasks (uneven), merged before and after completion
for i in 0 1 2; do
	"$SIM" sweep "${ARGS[@]}" --report "$T/split" --task-id $i --tasks 4 --jobs 1 || err "task $i failed"
done
[ -e "$T/split/share-1-of-4.csv" ] || err "no share file"
out=$("$SIM" sweep merge "$T/split" 2>&1 >/dev/null); rc=$?
{ [ $rc -eq 2 ] && grep -q "share-3-of-4.csv is missing" <<<"$out"; } || err "merge of 3 of 4 shares: exit $rc: $out"
[ -e "$T/split/index.html" ] && err "index.html after an incomplete merge"
"$SIM" sweep "${ARGS[@]}" --report "$T/split" --task-id 3 --tasks 4 || err "task 3 failed"
"$SIM" sweep merge -q "$T/split" || err "merge failed"
cmp "$T/one/sweep.csv" "$T/split/sweep.csv" || err "merged sweep.csv differs from the unsharded one"
cmp "$T/one/runs.csv" "$T/split/runs.csv" || err "merged runs.csv differs from the unsharded one"
[ -s "$T/split/index.html" ] || err "merge wrote no index.html"
"$SIM" sweep --merge --report "$T/split" -q || err "--merge failed"

# inconsistent shares: another split, then another sweep's share
"$SIM" sweep "${ARGS[@]}" --report "$T/split" --task-id 0 --tasks 2 || err "task 0 of 2 failed"
out=$("$SIM" sweep merge "$T/split" 2>&1 >/dev/null); rc=$?
{ [ $rc -eq 2 ] && grep -q "different splits" <<<"$out"; } || err "mixed splits: exit $rc: $out"
cmp -s "$T/one/sweep.csv" "$T/split/sweep.csv" || err "a failed merge changed the earlier report"
rm "$T/split/share-0-of-2.csv"
"$SIM" sweep "${ARGS[@]}" --seeds 2 --report "$T/other" --task-id 2 --tasks 4 || err "other sweep failed"
cp "$T/other/share-2-of-4.csv" "$T/split/"
out=$("$SIM" sweep merge "$T/split" 2>&1 >/dev/null); rc=$?
{ [ $rc -ne 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ]; } || err "foreign share accepted: exit $rc: $out"
ls "$T/one" "$T/split" | grep -q tmp- && err "temporary files left"

# shares with runs that never settle (time to 90%: never, an empty cell) merge like
# any other: in 3 s one page per batch saves nothing, 2000 pages per batch settle
NEVER=(--trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=1,2000 --duration-ms 3000 --sample-ms 500 -q)
"$SIM" sweep "${NEVER[@]}" --report "$T/never1" || err "unsettled sweep failed"
for i in 0 1; do
	"$SIM" sweep "${NEVER[@]}" --report "$T/nevers" --task-id $i --tasks 2 || err "unsettled task $i failed"
done
grep -q ',,' "$T/nevers/share-0-of-2.csv" || err "no unsettled run in the share: $(cat "$T/nevers/share-0-of-2.csv")"
"$SIM" sweep merge -q "$T/nevers" || err "shares with unsettled runs refused"
cmp "$T/never1/sweep.csv" "$T/nevers/sweep.csv" || err "merged unsettled sweep.csv differs from the unsharded one"

# a grid where no point settles still gets its plots: the time-to-90% plot says
# "never" instead of gnuplot failing on a plot with no defined point
"$SIM" sweep --trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=1,2 --duration-ms 3000 -q \
	--report "$T/allnever" || err "a sweep where nothing settles failed"
[ -s "$T/allnever/sweep_t90.svg" ] || err "no time-to-90% plot when nothing settles"
grep -q "never: no grid point" "$T/allnever/sweep.gp" || err "the all-never plot does not say never"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "time_to_90pct_ms") c = i; next }
	$c != "" { bad = 1 } END { exit bad || !c }' "$T/allnever/runs.csv" \
	|| err "the all-never grid has a settled run: $(cat "$T/allnever/runs.csv")"

. "$(dirname "$0")/expect.sh"
expect 2 "out of range" sweep --trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=10,-1 --report "$T/bad"
expect 2 "valid: " sweep --trace "$T/t.sptrace" --algo ksm --vary bogus=1,2 --report "$T/bad"
expect 2 "task-id and --tasks" sweep --trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=10 --tasks 3 --report "$T/bad"
expect 2 "must be below" sweep --trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=10 --task-id 3 --tasks 3 --report "$T/bad"
expect 2 "is required" sweep --trace "$T/t.sptrace" --algo ksm --report "$T/bad"
[ -e "$T/bad" ] && err "bad options created the report directory"
exit $fail
