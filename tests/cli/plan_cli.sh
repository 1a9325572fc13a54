#!/bin/bash
# sim plan, sim trace replicate and sim trace subset from the command line:
#  - replicate keeps exactly the sharing structure it promises, checked with
#    awk over `sim trace export` of the input and the output (common
#    fingerprints kept in every copy, private ones re-keyed per copy and held
#    by that copy alone, zero pages zero, every page of every copy present);
#  - subset keeps the named guest and the window;
#  - sim plan writes the report and a samepaged configuration; `sim run` with
#    the configuration's settings stays within the CPU budget, and the same
#    file run through the plan policy gives the same savings and CPU;
#  - a sweep whose point never merges does not mark it on the frontier.
set -uo pipefail
SIM=$1
SAMPLES=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
err() { echo "FAIL: $*"; fail=1; }

# ---- replicate over the export
"$SIM" trace gen -o "$T/in.sptrace" --guests 3 --pages 400 --snapshots 3 --shared-fraction 0.5 \
	--zero-fraction 0.1 --write-rate 0.2 --seed 5 >/dev/null || exit 1
"$SIM" trace replicate "$T/in.sptrace" --guests 7 -o "$T/rep.sptrace" -q || err "replicate failed"
"$SIM" trace export "$T/in.sptrace" --csv "$T/in.csv" || exit 1
"$SIM" trace export "$T/rep.sptrace" --csv "$T/rep.csv" || err "export of the replica failed"
awk -F, -v guests=7 -v orig=3 '
	FNR == 1 { next }
	FILENAME ~ /in.csv$/ {
		k = $1 SUBSEP $3 SUBSEP $4; fp[k] = $5; zero[k] = $6; node[k] = $7; huge[k] = $8; rows++
		if ($6 == 0) { if (!((($5) SUBSEP $3) in held)) { held[$5, $3] = 1; owners[$5]++ } }
		next
	}
	{
		base = $3; copy = 0
		if (match(base, /#[0-9]+$/)) { copy = substr(base, RSTART + 1) + 0; base = substr(base, 1, RSTART - 1) }
		k = $1 SUBSEP base SUBSEP $4
		if (!(k in fp)) { print "FAIL: " $3 " page " $4 " at snapshot " $1 " has no original"; bad = 1; next }
		out++
		if ($6 != zero[k] || $7 != node[k] || $8 != huge[k]) { print "FAIL: flags of " $3 " page " $4; bad = 1 }
		if ($6 == 1) {
			if ($5 != "00000000000000000000000000000000") { print "FAIL: zero page with a fingerprint"; bad = 1 }
			nzero++; next
		}
		if (owners[fp[k]] >= 2) {
			if ($5 != fp[k]) { print "FAIL: common content re-keyed in " $3; bad = 1 }
			ncommon++
		} else if (copy == 0) {
			if ($5 != fp[k]) { print "FAIL: private content of copy 0 changed in " $3; bad = 1 }
			nprivate++
		} else {
			if ($5 == fp[k]) { print "FAIL: private content not re-keyed in " $3; bad = 1 }
			nprivate++
		}
		if (owners[fp[k]] < 2) { if (($5 in who) && who[$5] != $3) { print "FAIL: private fingerprint in " who[$5] " and " $3; bad = 1 } who[$5] = $3 }
	}
	END {
		# every original row appears once per copy of its guest (7 guests from 3: copies 3, 2, 2)
		if (out == 0 || ncommon == 0 || nprivate == 0 || nzero == 0) { print "FAIL: classes missing: " ncommon " " nprivate " " nzero; bad = 1 }
		exit bad
	}' "$T/in.csv" "$T/rep.csv" || fail=1
# row counts: guest g of 3 has copies ceil((7 - g) / 3)
for g in 0 1 2; do
	n_in=$(awk -F, -v g="guest$g" '$3 == g' "$T/in.csv" | wc -l)
	n_out=$(awk -F, -v g="guest$g" '$3 == g || index($3, g "#") == 1' "$T/rep.csv" | wc -l)
	copies=$(( (7 - g + 2) / 3 ))
	[ "$n_out" -eq $((n_in * copies)) ] || err "guest$g: $n_out rows in the replica, want $((n_in * copies))"
done
"$SIM" trace replicate "$T/in.sptrace" --guests 0 -o "$T/x.sptrace" 2>/dev/null; [ $? -eq 2 ] || err "--guests 0 accepted"
[ -e "$T/x.sptrace" ] && err "a failed replicate left its output"

# ---- subset
"$SIM" trace subset "$T/in.sptrace" --guest guest1 --from-ms 1000 -o "$T/sub.sptrace" -q || err "subset failed"
"$SIM" trace info "$T/sub.sptrace" > "$T/sub.info" || err "subset output unreadable"
grep -q "guests       1," "$T/sub.info" || err "subset: want one guest: $(grep guests "$T/sub.info")"
grep -q "^  guest1 " "$T/sub.info" || err "subset lost guest1"
"$SIM" trace subset "$T/in.sptrace" --guest nobody -o "$T/x.sptrace" 2>/dev/null; [ $? -eq 2 ] || err "unknown guest accepted"

# ---- plan: report, configuration, and the configuration replayed
"$SIM" plan --trace "$SAMPLES/small.sptrace" --horizon-s 20 --cpu-budget 5 --host-mem-mib 256 \
	--host-used-mib 64 --swap-mib 64 --report "$T/plan" --config "$T/samepaged.conf" --jobs 2 \
	> "$T/plan.out" || err "sim plan failed: $(cat "$T/plan.out")"
for f in index.html plan.csv plan.gp plan_frontier.png plan_frontier.svg plan_t90.png plan_t90.svg; do
	[ -s "$T/plan/$f" ] || err "plan report: $f missing"
done
for s in "How much will KSM save" "At what CPU cost" "How soon" "How much swap" "Overcommit and swap" \
	'<img src="plan_frontier.svg"'; do
	grep -q "$s" "$T/plan/index.html" || err "index.html lacks '$s'"
done
[ "$(awk -F, 'NR > 1 && $(NF - 1) == 1' "$T/plan/plan.csv" | wc -l)" -eq 1 ] || err "plan.csv: want one chosen row"
grep -q '^SAMEPAGE_POLICY=plan$' "$T/samepaged.conf" || err "config: $(cat "$T/samepaged.conf")"
step=$(sed -n 's/^STEP="0 \(.*\)"$/\1/p' "$T/samepaged.conf")
[ -n "$step" ] || err "config: no STEP at 0"
sets=()
for kv in $step; do [ "${kv%%=*}" = run ] || sets+=(--set "$kv"); done
for k in MAX_PAGE_SHARING; do
	v=$(sed -n "s/^SAMEPAGE_$k=//p" "$T/samepaged.conf"); sets+=(--set "$(tr A-Z a-z <<<"$k")=$v")
done
"$SIM" run --trace "$SAMPLES/small.sptrace" --algo ksm --duration-ms 20000 "${sets[@]}" > "$T/run.out" \
	|| err "sim run with the configuration's settings failed"
pct=$(sed -n 's/^cpu .*(\([0-9.]*\)% of one core).*/\1/p' "$T/run.out")
awk -v p="$pct" 'BEGIN { exit !(p != "" && p <= 5) }' || err "sim run with the chosen settings: CPU $pct% > budget 5%"
"$SIM" run --trace "$SAMPLES/small.sptrace" --algo ksm --duration-ms 20000 \
	--set max_page_sharing="$(sed -n 's/^SAMEPAGE_MAX_PAGE_SHARING=//p' "$T/samepaged.conf")" \
	--controller plan --ctl-set plan="$T/samepaged.conf" > "$T/run2.out" || err "the plan policy refused the configuration"
a=$(grep -E '^(saved|cpu) ' "$T/run.out"); b=$(grep -E '^(saved|cpu) ' "$T/run2.out")
[ "$a" = "$b" ] || err "fixed settings and the plan policy differ: '$a' vs '$b'"

# ---- a sweep point that never merges is not on the frontier
"$SIM" sweep --trace "$SAMPLES/small.sptrace" --algo ksm --vary pages_to_scan=10,20000 \
	--set sleep_millisecs=1000 --duration-ms 10000 --report "$T/sweep" -q || err "sweep failed"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$2 == 10 { if ($c["pareto"] != 0 || $c["t90_mean_s"] != "" || $c["note"] == "") bad = 1; seen = 1 }
	END { exit bad || !seen }' "$T/sweep/sweep.csv" || err "never-merging point: $(grep '^0,' "$T/sweep/sweep.csv")"
grep -q "never (saved nothing" "$T/sweep/index.html" || err "sweep report does not say never"
exit $fail
