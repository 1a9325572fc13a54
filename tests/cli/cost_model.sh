#!/bin/bash
# cost_model.sh SIM - the host's costs file (issue 13): `sim calibrate --save`
# writes it (here through the SAMEPAGE_COSTS override, never the real user's
# state), run/compare/sweep/plan/validate read it and say so, --cost wins
# over it, a malformed file is one line naming the line and exit 3; validate
# takes --cost; `sim plan --kernel` leaves out what the version lacks.
# Nothing here writes /sys/kernel/mm/ksm (calibrate runs with --no-ksm).
set -uo pipefail
SIM=$1 T=$(mktemp -d) fail=0
trap 'rm -rf "$T"' EXIT
err() { echo "FAIL: $*"; fail=1; } && . "$(dirname "$0")/expect.sh"
export SIM_NO_PROGRESS=1 SAMEPAGE_COSTS="$T/state/costs.conf"
mkdir "$T/state"

"$SIM" trace gen -o "$T/t.sptrace" --guests 2 --pages 400 --snapshots 3 --interval-ms 2000 \
	--seed 5 || exit 1
run() { "$SIM" run --trace "$T/t.sptrace" --algo ksm --duration-ms 8000 "$@"; }
cpu() { sed -n 's/^cpu *\([0-9.]*\) s estimated.*/\1/p'; }

# ---- no file yet: the shipped defaults, said in the summary
run >"$T/a.out" || err "run without a costs file failed"
grep -qx "costs       shipped defaults" "$T/a.out" || err "no 'shipped defaults': $(grep costs "$T/a.out")"

# ---- calibrate --save (userspace part only) writes the override path, nothing else
"$SIM" calibrate --no-ksm --pages 2048 --save >"$T/cal.out" || err "calibrate --save failed"
[ -s "$SAMEPAGE_COSTS" ] || err "calibrate --save wrote no $SAMEPAGE_COSTS"
grep -q "^saved to $SAMEPAGE_COSTS\$" "$T/cal.out" || err "calibrate did not say where it saved"
grep -q '^# .*loadavg before' "$SAMEPAGE_COSTS" || err "the costs file does not state the load"
# only what --no-ksm measures; the printed --cost is exactly what the file holds
for k in checksum compare tree_step; do
	grep -qE "^$k=[0-9.]+\$" "$SAMEPAGE_COSTS" || err "costs file lacks $k"
done
grep -qE '^(visit|merge|first_visit|idle_[0-9a-z]+)=' "$SAMEPAGE_COSTS" && err "--no-ksm saved costs it did not measure"
spec=$(grep -E '^[a-z0-9_]+=' "$SAMEPAGE_COSTS" | paste -sd,)

# ---- round trip: the file's costs are the ones used
run >"$T/b.out" || err "run with the costs file failed"
grep -qx "costs       $SAMEPAGE_COSTS" "$T/b.out" || err "run does not name the file: $(grep costs "$T/b.out")"
SAMEPAGE_COSTS= run --cost "$spec" >"$T/c.out" || err "run --cost (no file) failed"
[ "$(cpu <"$T/b.out")" = "$(cpu <"$T/c.out")" ] ||
	err "file and --cost $spec give different CPU: $(cpu <"$T/b.out") vs $(cpu <"$T/c.out")"
# ---- precedence: an explicit --cost wins over the file, per operation
printf '%s\n' 'visit=5000' 'checksum=7000' >"$SAMEPAGE_COSTS"
run --cost checksum=10 >"$T/d.out" || err "run --cost over the file failed"
grep -qx "costs       --cost over $SAMEPAGE_COSTS" "$T/d.out" || err "precedence not said: $(grep costs "$T/d.out")"
SAMEPAGE_COSTS= run --cost visit=5000,checksum=10 >"$T/e.out" || err "run --cost failed"
[ "$(cpu <"$T/d.out")" = "$(cpu <"$T/e.out")" ] || err "--cost did not win over the file"
SAMEPAGE_COSTS= run --cost visit=5000,checksum=7000 >"$T/f.out" || err "run --cost failed"
[ "$(cpu <"$T/d.out")" != "$(cpu <"$T/f.out")" ] || err "checksum has no effect: the test proves nothing"
# compare, sweep and plan name the costs in their options
"$SIM" compare --trace "$T/t.sptrace" --algos ksm,esx --duration-ms 4000 --report "$T/cmp" -q ||
	err "compare with the costs file failed"
grep -qF "($SAMEPAGE_COSTS) visit=5000,checksum=7000" "$T/cmp/index.html" || err "compare report does not name the costs"
"$SIM" sweep --trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=50,100 --duration-ms 4000 \
	--report "$T/sw" -q || err "sweep with the costs file failed"
grep -qF "($SAMEPAGE_COSTS)" "$T/sw/index.html" || err "sweep report does not name the costs"

# ---- a file with idle reads but no tree_idle (an older calibration) says the levels cost 0
printf '%s\n' 'visit=500' 'idle_1s=800' >"$SAMEPAGE_COSTS"
run >"$T/g.out" || err "run with an idle class and no tree_idle failed"
grep -qx "costs       $SAMEPAGE_COSTS (no tree_idle: idle unstable tree levels cost 0; sim calibrate --save measures it)" \
	"$T/g.out" || err "no tree_idle not said: $(grep costs "$T/g.out")"
printf '%s\n' 'visit=500' 'idle_1s=800' 'tree_idle=0' >"$SAMEPAGE_COSTS"
run >"$T/h.out" || err "run with tree_idle=0 failed"
grep -qx "costs       $SAMEPAGE_COSTS" "$T/h.out" || err "a measured tree_idle of 0 still noted: $(grep costs "$T/h.out")"
[ "$(cpu <"$T/g.out")" = "$(cpu <"$T/h.out")" ] || err "the note changed the costs used"
printf '%s\n' 'visit=500' 'idle_1s=0' >"$SAMEPAGE_COSTS"
run >"$T/i.out" || err "run with idle_1s=0 failed"
grep -qx "costs       $SAMEPAGE_COSTS" "$T/i.out" || err "no idle cost, yet a tree_idle note: $(grep costs "$T/i.out")"

# ---- a malformed file: one line naming file and line, exit 3, for every command
printf '%s\n' '# mine' 'visit=100' 'merge=fast' >"$SAMEPAGE_COSTS"
pat="$SAMEPAGE_COSTS:3: merge=fast is not a time in ns"
expect 3 "$pat" run --trace "$T/t.sptrace" --algo ksm
expect 3 "$pat" compare --trace "$T/t.sptrace" --algos ksm --report "$T/x1"
expect 3 "$pat" sweep --trace "$T/t.sptrace" --algo ksm --vary pages_to_scan=1,2 --report "$T/x2"
expect 3 "$pat" plan --trace "$T/t.sptrace" --report "$T/x3"
expect 3 "$pat" validate --trace "$T/t.sptrace"
[ -e "$T/x1" ] || [ -e "$T/x2" ] || [ -e "$T/x3" ] && err "a report was written despite the bad costs file"
printf 'visit=100\nwarp=1\n' >"$SAMEPAGE_COSTS"
expect 3 "$SAMEPAGE_COSTS:2: unknown operation 'warp'; valid: visit" run --trace "$T/t.sptrace" --algo ksm
printf 'visit=100\nvisit 1\n' >"$SAMEPAGE_COSTS"
expect 3 "$SAMEPAGE_COSTS:2: " run --trace "$T/t.sptrace" --algo ksm
rm -f "$SAMEPAGE_COSTS"

# ---- validate takes --cost: checked before the host is touched (exit 2, any user)
expect 2 "--cost: unknown operation 'teleport'" validate --trace "$T/t.sptrace" --cost teleport=1
expect 2 "--cost: visit=x is not a time in ns" validate --trace "$T/t.sptrace" --cost visit=x
"$SIM" validate --help | grep -q -- "--cost SPEC" || err "validate --help lacks --cost"
# an empty override means no file at all: --save has nowhere to go
SAMEPAGE_COSTS= "$SIM" calibrate --no-ksm --pages 1024 --save >/dev/null 2>"$T/e.err"
[ $? -eq 2 ] && grep -q "SAMEPAGE_COSTS is empty" "$T/e.err" || err "calibrate --save with SAMEPAGE_COSTS= : $(cat "$T/e.err")"

# ---- sim plan --kernel: what the version lacks is not searched nor written
"$SIM" trace gen -o "$T/p.sptrace" --guests 2 --pages 300 --snapshots 2 --interval-ms 1000 --seed 7 || exit 1
expect 2 "covers Linux 5.14" plan --trace "$T/p.sptrace" --report "$T/p0" --kernel 4.19
plan() { "$SIM" plan --trace "$T/p.sptrace" --horizon-s 4 --cpu-budget 20 --jobs 2 "$@"; }
col() { awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { print $c }' "$1" | sort -u | paste -sd' '; }
plan --report "$T/pnew" --config "$T/new.conf" >"$T/pnew.out" || err "plan (newest) failed: $(cat "$T/pnew.out")"
plan --kernel 6.1 --report "$T/pold" --config "$T/old.conf" >"$T/pold.out" || err "plan --kernel 6.1 failed: $(cat "$T/pold.out")"
[ "$(col "$T/pnew/plan.csv" smart_scan)" = "0 1" ] || err "newest: smart_scan not searched: $(col "$T/pnew/plan.csv" smart_scan)"
[ "$(col "$T/pold/plan.csv" smart_scan)" = "0" ] || err "6.1: smart_scan searched: $(col "$T/pold/plan.csv" smart_scan)"
col "$T/pnew/plan.csv" policy | grep -qw advisor || err "newest: the advisor was not evaluated"
col "$T/pold/plan.csv" policy | grep -qw advisor && err "6.1: the advisor (6.8) was evaluated"
grep -qx "SAMEPAGE_SMART_SCAN=keep" "$T/old.conf" || err "6.1 config: SAMEPAGE_SMART_SCAN not keep: $(cat "$T/old.conf")"
grep -q "^# Linux 6.1 has no smart_scan (added in 6.7" "$T/old.conf" || err "6.1 config does not say why"
grep -q '^STEP=.*smart_scan' "$T/old.conf" && err "6.1 config's STEP sets smart_scan"
# the printed choice too: no smart_scan for 6.1, smart_scan=0 or 1 for the newest
choice() { sed -n '/^choice/,+1p' "$1"; }
choice "$T/pold.out" | grep -q 'pages_to_scan=' || err "6.1 plan printed no choice: $(cat "$T/pold.out")"
choice "$T/pold.out" | grep -q 'smart_scan' && err "6.1 plan's choice names smart_scan: $(choice "$T/pold.out")"
choice "$T/pnew.out" | grep -q 'smart_scan=' || err "newest plan's choice lacks smart_scan: $(choice "$T/pnew.out")"
grep -q "Linux 6.1" "$T/pold/index.html" || err "the 6.1 plan report does not name the kernel"
# the 6.1 configuration replays on a 6.1 model
if grep -q '^SAMEPAGE_POLICY=plan$' "$T/old.conf"; then
	"$SIM" run --trace "$T/p.sptrace" --algo ksm --kernel 6.1 --controller plan \
		--ctl-set plan="$T/old.conf" -q || err "the 6.1 configuration does not replay on --kernel 6.1"
fi
exit $fail
