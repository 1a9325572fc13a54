# shellcheck shell=bash
# bench/same_lib.sh - sourced by ksm_same.sh and algo_same.sh: two builds'
# `sim run`s compared byte for byte (--csv output and summary).
#   same_init OLD_SIM NEW_SIM [workdir]   sets OLD, NEW, W and S; cds to the repository
#   gen NAME ARGS...     sim trace gen ARGS into $W/NAME.sptrace, once per workdir
#   one LABEL ARGS...    sim run ARGS with both builds; "DIFFER: LABEL" if they differ
#   same_end             prints "N runs, M differ"; fails if any differ
same_init() {
	OLD=$(realpath "$1") NEW=$(realpath "$2")
	W=${3:-$(mktemp -d)}
	mkdir -p "$W"
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1
	# shellcheck disable=SC2034 # the callers' samples
	S=traces/samples
	runs=0 bad=0
}
gen() {
	local f=$W/$1.sptrace
	shift
	[ -f "$f" ] || "$NEW" trace gen -o "$f" "$@" > /dev/null
}
one() {
	local label=$1
	shift
	runs=$((runs + 1))
	rm -f "$W/old.csv" "$W/new.csv" # a run that writes no CSV must not compare the last pair's
	(cd "$W" && "$OLD" run "$@" --csv run.csv > old.out 2>&1; mv run.csv old.csv) || true
	(cd "$W" && "$NEW" run "$@" --csv run.csv > new.out 2>&1; mv run.csv new.csv) || true
	if ! cmp -s "$W/old.csv" "$W/new.csv" || ! cmp -s "$W/old.out" "$W/new.out"; then
		bad=$((bad + 1))
		echo "DIFFER: $label"
	fi
}
same_end() {
	echo "$runs runs, $bad differ (workdir $W)"
	[ "$bad" -eq 0 ]
}
