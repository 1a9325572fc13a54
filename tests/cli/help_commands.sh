#!/bin/bash
# The command line's help and its errors, all generated from the same
# tables: `sim --help` lists every command and trace verb, `sim help CMD`
# is `sim CMD --help`, unknown commands and verbs list the valid ones,
# a missing value names its option, numbers are parsed strictly.  Every
# error is one line with exit code 2.
set -uo pipefail
SIM=$1
fail=0
err() { echo "FAIL: $*"; fail=1; }

. "$(dirname "$0")/expect.sh"

commands="run list compare sweep plan trace validate calibrate real"
verbs="gen info check export record import replicate subset"
top=$("$SIM" --help) || err "sim --help exits $?"
for c in $commands help; do
	grep -q "^  $c " <<<"$top" || err "sim --help does not list $c"
done
for v in $verbs; do
	grep -q "^  $v " <<<"$top" || err "sim --help does not list the trace verb $v"
done
[ "$("$SIM" help)" = "$top" ] || err "sim help differs from sim --help"

for c in $commands; do
	out=$("$SIM" help "$c") || err "sim help $c exits $?"
	[ "$out" = "$("$SIM" "$c" --help)" ] || err "sim help $c differs from sim $c --help"
	grep -q "^usage: sim $c" <<<"$out" || err "sim help $c: no usage line: $(head -1 <<<"$out")"
done
for v in $verbs; do
	out=$("$SIM" help trace "$v") || err "sim help trace $v exits $?"
	grep -q "^usage: sim trace $v" <<<"$out" || err "sim help trace $v: $(head -1 <<<"$out")"
done

# the exit codes as README's table: 5 (an unmerge refused for want of memory) where a command can give it
grep -q "5 an unmerge refused" <<<"$top" || err "sim --help's exit codes lack 5: $(grep -A3 'Exit codes' <<<"$top")"
for c in validate calibrate "real replay"; do
	out=$("$SIM" $c --help)
	grep -q "exit 5\|5 no memory" <<<"$out" || err "sim $c --help does not say exit 5"
	[ "$c" = calibrate ] && continue
	grep -A3 "Exit codes" <<<"$out" | tr '\n' ' ' | grep -q "1 failure.*5 no memory" ||
		err "sim $c --help's exit codes lack 1 or 5: $(grep -A3 'Exit codes' <<<"$out" | tr '\n' ' ')"
done

# unknown commands name every command, unknown verbs every verb
expect 2 "unknown command 'fly' (commands: run, list, compare, sweep, plan, trace, validate, calibrate, real, help" fly
expect 2 "unknown command 'fly' (commands: run, list" help fly
expect 2 "unknown trace verb 'fly' (verbs: gen, info, check, export, record, import, replicate, subset" trace fly
expect 2 "unknown trace verb 'fly'" help trace fly

# a missing value is named, in every command
expect 2 "option --csv needs a value" run --algo oracle --csv
expect 2 "option --report needs a value" compare --algos oracle --report
expect 2 "option --vary needs a value" sweep --algo ksm --report /nonexistent --vary
expect 2 "option --output needs a value" trace gen -o
expect 2 "option --csv needs a value" trace export x.sptrace --csv
expect 2 "option --csv needs a value" trace export x.sptrace --csv --quiet
expect 2 "option --pages needs a value" calibrate --pages
expect 2 "option --trace needs a value" validate --trace
expect 2 "option --mechanism needs a value" real replay --mechanism
expect 2 "option --interval-ms needs a value" trace record --interval-ms
expect 2 "option --guest needs a value" trace import -o x --guest

# numbers: no sign, no space, in range - the same for every option
expect 2 "invalid value ' -1' for --seed" run --algo oracle --seed ' -1'
expect 2 "invalid value '-1' for --seed" run --algo oracle --seed -1
expect 2 "invalid value '+1' for --seed" run --algo oracle --seed +1
expect 2 "invalid value '0' for --duration-ms (must be 1 to" run --algo oracle --duration-ms 0
expect 2 "invalid value ' 2' for --guests" trace gen -o x --guests ' 2'
expect 2 "invalid value '0x10' for --jobs" compare --algos oracle --report x --jobs 0x10

# a non-option where none is expected is a usage error, an option is not a file
expect 2 "unexpected argument 'stray'" run --algo oracle stray
expect 2 "unknown option '--bogus'" trace info --bogus
expect 2 "unknown option '--bogus'" trace check --bogus
expect 2 "missing FILE" trace info
exit $fail
