# shellcheck shell=bash
# bench/same_lib.sh - sourced by ksm_same.sh and algo_same.sh: two builds'
# `sim run`s compared byte for byte (--csv output and summary, less the
# "host cpu" line of runs by --scans: this host's CPU time, not a result).
#   same_init OLD_SIM NEW_SIM [workdir]   sets OLD, NEW, W and S; cds to the repository
#   gen NAME ARGS...     sim trace gen ARGS into $W/NAME.sptrace, once per workdir: in
#                        format version 1 (any build reads it) when NEW writes both, and
#                        then the same trace in version 2 (a summary) in $W/v2/NAME.sptrace
#   one LABEL ARGS...    sim run ARGS with both builds; "DIFFER: LABEL" if they differ
#                        (NEW reads $W/v2/X.sptrace for $W/X.sptrace when there is one:
#                        a version-2 trace gives what version 1 does)
#   same_end             prints "N runs, M differ"; fails if any differ
same_init() {
	OLD=$(realpath "$1") NEW=$(realpath "$2")
	W=${3:-$(mktemp -d)}
	mkdir -p "$W"
	W=$(realpath "$W")
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1
	# shellcheck disable=SC2034 # the callers' samples
	S=traces/samples
	runs=0 bad=0
}
gen() {
	local f=$W/$1.sptrace v2=$W/v2/$1.sptrace
	shift
	[ -f "$f" ] && return
	if "$NEW" trace gen -o "$f" "$@" --format-version 1 > /dev/null 2>&1; then
		mkdir -p "$W/v2"
		"$NEW" trace gen -o "$v2" "$@" > /dev/null
	else
		"$NEW" trace gen -o "$f" "$@" > /dev/null
	fi
}
one() {
	local label=$1
	shift
	runs=$((runs + 1))
	rm -f "$W/old.csv" "$W/new.csv" # a run that writes no CSV must not compare the last pair's
	(cd "$W" && "$OLD" run "$@" --csv run.csv 2>&1 | grep -v '^host cpu ' > old.out; mv run.csv old.csv) || true
	local a new=()
	for a in "$@"; do
		case $a in
		"$W"/*.sptrace) [ -f "$W/v2/${a#"$W"/}" ] && a=$W/v2/${a#"$W"/} ;;
		esac
		new+=("$a")
	done
	(cd "$W" && "$NEW" run "${new[@]}" --csv run.csv 2>&1 | sed "s|$W/v2/|$W/|g" | grep -v '^host cpu ' > new.out;
	 mv run.csv new.csv) || true
	if ! cmp -s "$W/old.csv" "$W/new.csv" || ! cmp -s "$W/old.out" "$W/new.out"; then
		bad=$((bad + 1))
		echo "DIFFER: $label"
	fi
}
same_end() {
	echo "$runs runs, $bad differ (workdir $W)"
	[ "$bad" -eq 0 ]
}
