#!/bin/bash
# sim compare --observed: what a host did (samepaged's SAMEPAGE_CSV) overlaid
# on what the simulation predicted for the same trace, with the error of the
# prediction.  A CSV from `samepaged --simulate` is the prediction itself
# (error 0); an altered copy shows the error worked out here by hand; a bad
# file is refused in one line naming the file and line, exit 3, report untouched.
set -euo pipefail
SD=$1 SIM=$2 SAMPLES=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
trace=$SAMPLES/small.sptrace
printf 'KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=10\nSAMEPAGE_CSV=%s\n' "$T/host.csv" > "$T/sd.conf"
"$SD" --config "$T/sd.conf" --simulate "$trace" > /dev/null
compare() { # dir observed...
	local dir=$1; shift
	"$SIM" compare --trace "$trace" --algos ksm --controller ksmtuned --ctl-set thres_coef=100 \
		--ctl-set monitor_interval=10 "$@" --report "$dir" -q
}
field() { # file row(2..) column-name
	awk -F, -v row="$2" -v name="$3" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i } NR == row { print $c[name] }' "$1"
}

# 1. The daemon's own series on the simulator is the prediction: error 0.
compare "$T/r" --observed "host=$T/host.csv"
P=$T/r/prediction.csv
[ "$(field "$P" 2 observed)" = host ] || fail "prediction.csv: $(cat "$P")"
[ "$(field "$P" 2 error_pages)" = 0 ] || fail "error not 0: $(sed -n 2p "$P")"
[ "$(field "$P" 2 mean_abs_error_pages)" = 0.000 ] || fail "mean abs. error not 0: $(sed -n 2p "$P")"
[ "$(field "$P" 2 observed_saved_pages)" -gt 0 ] || fail "nothing saved: a vacuous comparison"
t90p=$(field "$P" 2 predicted_time_to_90pct_s)
[ -n "$t90p" ] || fail "the prediction never settled: no time to 90% to compare"
[ "$(field "$P" 2 time_to_90pct_error_s)" = 0 ] || fail "time to 90% error: $(sed -n 2p "$P")"
[ "$(field "$P" 2 samples_compared)" = "$(($(wc -l < "$T/host.csv") - 1))" ] || fail "not every sample compared"
cmp <(tail -n +2 "$T/host.csv" | cut -d, -f1-22) <(tail -n +2 "$T/r/observed-host.csv" | cut -d, -f1-22) ||
	fail "observed-host.csv is not the observed series"
grep -q "Prediction against observation" "$T/r/index.html" || fail "no prediction section"
grep -q "<b>no error</b>" "$T/r/index.html" || fail "the paragraph does not say there is no error"
grep -q "'observed-host.csv' using .* with linespoints .* title 'observed: host'" "$T/r/compare.gp" ||
	fail "the observed series is not drawn"
grep -q '^host,.*observed: ' "$T/r/summary.csv" || fail "no observed row in summary.csv"
[ -s "$T/r/savings.svg" ] || fail "no savings plot"

# 2. Altered by hand: times shifted by 7 s (the file's own origin aligns them
# again), pages_sharing +100 from 30 s on.  Steady error +100 pages; mean
# absolute error 100 x rows from 30 s / rows; time to 90% as far as the
# altered series' own summary says (checked against the report's row).
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "pages_sharing") ps = i; print; next }
	{ t = $1; $1 = t + 7000; if (t >= 30000) $ps += 100; print }' "$T/host.csv" > "$T/altered.csv"
rows=$(($(wc -l < "$T/altered.csv") - 1))
late=$(awk -F, 'NR > 1 && $1 >= 30000' "$T/host.csv" | wc -l)
mae=$(awk -v l="$late" -v r="$rows" 'BEGIN { printf "%.3f", 100 * l / r }')
compare "$T/a" --observed "$T/altered.csv" --observed "same=$T/host.csv"
P=$T/a/prediction.csv
[ "$(field "$P" 2 observed)" = altered ] || fail "default label: $(sed -n 2p "$P")"
[ "$(field "$P" 2 error_pages)" = 100 ] || fail "steady error $(field "$P" 2 error_pages), expected 100"
[ "$(field "$P" 2 mean_abs_error_pages)" = "$mae" ] || fail "mean abs. error $(field "$P" 2 mean_abs_error_pages), expected $mae"
[ "$(field "$P" 3 error_pages)" = 0 ] || fail "the second observed series: $(sed -n 3p "$P")"
pred=$(field "$P" 2 predicted_saved_pages)
awk -v e="$(field "$P" 2 error_pct)" -v p="$pred" 'BEGIN { exit !(e - 10000 / p < 1e-6 && 10000 / p - e < 1e-6) }' ||
	fail "error_pct $(field "$P" 2 error_pct), expected 100 x 100 / $pred"
# Times stretched x2: the observed time to 90% is twice the predicted one.
awk -F, -v OFS=, 'NR == 1 { print; next } { $1 = 2 * $1; print }' "$T/host.csv" > "$T/slow.csv"
compare "$T/s" --observed "$T/slow.csv"
awk -v e="$(field "$T/s/prediction.csv" 2 time_to_90pct_error_s)" -v p="$t90p" 'BEGIN { exit !(e == p) }' ||
	fail "stretched: time to 90% error $(field "$T/s/prediction.csv" 2 time_to_90pct_error_s), expected $t90p"

# 3. Bad files: one line naming the file and line, exit 3, no report written
# and an existing one untouched.
cp "$T/r/index.html" "$T/index.before"
bad() { # what file expected-message
	local what=$1 file=$2 want=$3 rc=0 err
	err=$(compare "$T/r" --observed "$file" 2>&1 >/dev/null) || rc=$?
	[ $rc = 3 ] || fail "$what: exit $rc ($err)"
	[ "$(wc -l <<<"$err")" = 1 ] || fail "$what: more than one line: $err"
	grep -qF "$want" <<<"$err" || fail "$what: '$err' lacks '$want'"
	cmp -s "$T/r/index.html" "$T/index.before" || fail "$what: the report was touched"
	rc=0; compare "$T/new-$what" --observed "$file" 2>/dev/null || rc=$?
	[ ! -e "$T/new-$what/index.html" ] || fail "$what: a report was written"
}
sed '1s/pages_sharing/pages_sharinG/' "$T/host.csv" > "$T/col.csv"
bad column "$T/col.csv" "col.csv:1: column 3 'pages_sharinG' is not a column of sim run --csv"
sed '5s/^\([0-9]*\),[0-9]*,/\1,nan,/' "$T/host.csv" > "$T/nan.csv"
bad nan "$T/nan.csv" "nan.csv:5: pages_shared 'nan' is not a whole number"
awk 'NR == 4 { held = $0; next } { print } NR == 5 { print held }' "$T/host.csv" > "$T/order.csv"
t4=$(sed -n 4p "$T/host.csv" | cut -d, -f1) t5=$(sed -n 5p "$T/host.csv" | cut -d, -f1)
bad order "$T/order.csv" "order.csv:5: time_ms $t4 does not follow $t5 of the row before"
head -1 "$T/host.csv" > "$T/empty.csv"
bad empty "$T/empty.csv" "empty.csv: a header and no rows"
sed '6s/,[0-9]*$//' "$T/host.csv" > "$T/short.csv"
bad short "$T/short.csv" "short.csv:6: "
echo "ok"
