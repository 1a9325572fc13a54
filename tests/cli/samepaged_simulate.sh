#!/bin/bash
# samepaged --simulate TRACE runs the configured policy on the simulator: on
# every sample trace and for each policy, its SAMEPAGE_CSV must be the very
# file `sim run --algo ksm --controller POLICY --csv` writes with the same
# settings (the configuration's keys given to sim run as --ctl-set / --set).
set -euo pipefail
SD=$1 SIM=$2 SAMPLES=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
printf 'PLAN_FORMAT=1\nSTEP="0 pages_to_scan=2000 sleep_millisecs=50 smart_scan=0"\nSTEP="20 pages_to_scan=300"\nSTEP="40 run=0"\n' > "$T/plan"
n=0
for trace in "$SAMPLES"/*.sptrace; do
	# ksmtuned forced on (KSM_THRES_COEF=100) with a short interval; the advisor
	# with a short target; the plan from a file, with use_zero_pages.
	printf 'KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=10\nSAMEPAGE_CSV=%s\n' "$T/sd.csv" > "$T/ksmtuned.conf"
	printf 'SAMEPAGE_POLICY=advisor\nSAMEPAGE_ADVISOR_TARGET_SCAN_TIME=5\nSAMEPAGE_CSV=%s\n' "$T/sd.csv" > "$T/advisor.conf"
	printf 'SAMEPAGE_POLICY=plan\nSAMEPAGE_PLAN=%s\nSAMEPAGE_USE_ZERO_PAGES=1\nSAMEPAGE_CSV=%s\n' "$T/plan" "$T/sd.csv" > "$T/plan.conf"
	for policy in ksmtuned advisor plan; do
		case $policy in
		ksmtuned) args=(--ctl-set thres_coef=100 --ctl-set monitor_interval=10) ;;
		advisor) args=(--ctl-set advisor_target_scan_time=5) ;;
		plan) args=(--ctl-set "plan=$T/plan" --set use_zero_pages=1) ;;
		esac
		rm -f "$T/sd.csv" "$T/sim.csv"
		"$SD" --config "$T/$policy.conf" --simulate "$trace" > /dev/null
		"$SIM" run --trace "$trace" --algo ksm --controller "$policy" "${args[@]}" --csv "$T/sim.csv" -q
		cmp "$T/sd.csv" "$T/sim.csv" || fail "$policy on $(basename "$trace"): samepaged --simulate differs from sim run"
		[ "$(wc -l < "$T/sim.csv")" -gt 10 ] || fail "$policy on $(basename "$trace"): too short a series"
		n=$((n + 1))
	done
done

# The daemon's own loop runs, not the policy alone: its NUMA switch at start
# (stop, headroom check, write, run again) gives sim run's merge_across_nodes=0
# run exactly, and is counted.
trace=$SAMPLES/numa2.sptrace
printf 'KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=10\nSAMEPAGE_MERGE_ACROSS_NODES=0\nSAMEPAGE_CSV=%s\n' "$T/sd.csv" > "$T/numa.conf"
rm -f "$T/sd.csv" "$T/sim.csv"
OUT=$("$SD" --config "$T/numa.conf" --simulate "$trace")
"$SIM" run --trace "$trace" --algo ksm --controller ksmtuned --ctl-set thres_coef=100 --ctl-set monitor_interval=10 \
	--set merge_across_nodes=0 --csv "$T/sim.csv" -q
cmp "$T/sd.csv" "$T/sim.csv" || fail "merge_across_nodes=0 through the daemon's switch differs from sim run"
grep -q "set merge_across_nodes=0 after unmerging" <<<"$OUT" || fail "no NUMA switch logged: $OUT"
grep -q "merge_across_nodes 1;" <<<"$OUT" || fail "the NUMA switch is not counted: $OUT"
n=$((n + 1))

# Its safety logic: SAMEPAGE_ON_EXIT=unmerge at the end of the simulated time
# with a reserve larger than the simulated host's memory (16 GiB): the
# headroom check refuses the unmerge, says so, counts it, and stops KSM.
trace=$SAMPLES/small.sptrace
conf() { printf 'KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=10\nSAMEPAGE_ON_EXIT=unmerge\nSAMEPAGE_RESERVE_MIB=%s\nSAMEPAGE_METRICS=%s\n' "$1" "$T/m.prom" > "$T/exit.conf"; }
conf 100000
OUT=$("$SD" --config "$T/exit.conf" --simulate "$trace")
grep -q "refused unmerge at exit: a full unshare needs up to .* but MemAvailable + SwapFree - reserve leaves -" <<<"$OUT" ||
	fail "no headroom refusal logged: $OUT"
grep -q '^samepage_refusals_total{reason="headroom"} 1$' "$T/m.prom" || fail "refusal not in the metrics: $(grep refusals "$T/m.prom")"
grep -q '^samepage_decisions_total{kind="unmerge"} 0$' "$T/m.prom" || fail "an unmerge was counted"
grep -q '^samepage_ksm{file="run"} 0$' "$T/m.prom" || fail "KSM not stopped instead"
grep -q '^samepage_ksm{file="pages_sharing"} [1-9]' "$T/m.prom" || fail "nothing merged: the refusal protected nothing"
grep -q '^samepage_reserve_bytes 104857600000$' "$T/m.prom" || fail "reserve not exported"
# The same with no reserve: the check passes (the simulated host has the
# room), run=2 is tried; the simulator cannot unmerge, which is a refusal too.
conf 0
OUT=$("$SD" --config "$T/exit.conf" --simulate "$trace")
grep -q "refused unmerge" <<<"$OUT" && fail "refused with room to spare: $OUT"
grep -q "run=2 (unmerge at exit) failed, KSM left stopped: the simulator's KSM has no run=2" <<<"$OUT" ||
	fail "run=2 not tried: $OUT"
grep -q '^samepage_refusals_total{reason="headroom"} 0$' "$T/m.prom" || fail "headroom refusal with room"
grep -q '^samepage_refusals_total{reason="write"} 1$' "$T/m.prom" || fail "the failed run=2 is not counted"
grep -q '^samepage_info{policy="ksmtuned",.*kernel="[0-9][0-9.]*",kernel_release="simulated"} 1$' "$T/m.prom" ||
	fail "info metric: $(grep samepage_info "$T/m.prom")"
echo "ok: $n runs identical; the headroom refusal and the failed unmerge under --simulate"
