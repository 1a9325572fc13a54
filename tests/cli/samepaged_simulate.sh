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
echo "ok: $n runs identical"
