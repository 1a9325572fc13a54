#!/bin/bash
# `sim trace record` and `sim trace import` on the command line: one-line
# errors with the documented exit codes (2 usage or no such PID, 4 not root,
# 3 bad dump) and never an output file; a recorded trace is mode 0600.
set -uo pipefail
SIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

expect() { # code pattern args...
	local code=$1 pat=$2; shift 2
	local out rc
	out=$("$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -ne "$code" ] || ! grep -q -- "$pat" <<<"$out" || [ "$(wc -l <<<"$out")" -ne 1 ]; then
		echo "FAIL: $* -> exit $rc (want $code), stderr: $out"; fail=1
	fi
	if [ -e "$T/out.sptrace" ]; then echo "FAIL: $* left a file"; fail=1; rm -f "$T/out.sptrace"; fi
}

expect 2 "no such process" "$SIM" trace record -o "$T/out.sptrace" --pid 1073741823
expect 2 "give --pid PID... or --qemu" "$SIM" trace record -o "$T/out.sptrace"
expect 2 "--pause works with --qemu" "$SIM" trace record -o "$T/out.sptrace" --pid $$ --pause
expect 2 "invalid value 'x' for --count" "$SIM" trace record -o "$T/out.sptrace" --pid $$ --count x
expect 2 "unknown --format" "$SIM" trace import --format vmdk -o "$T/out.sptrace" x.core
echo "not an ELF file at all, just text" > "$T/text.core"
expect 3 "text.core: offset 0: not an ELF file" "$SIM" trace import -o "$T/out.sptrace" "$T/text.core"

if [ "$(id -u)" -ne 0 ]; then
	echo "skip: the rest needs root"; exit $((fail ? 1 : 77))
fi
if command -v setpriv >/dev/null; then
	chmod 777 "$T"
	expect 4 "needs root\|permission denied" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$SIM" trace record -o "$T/out.sptrace" --pid 1
fi
sleep 30 & target=$!
# wait for the exec: it replaces the memory a recording of the forked shell would follow
until [ "$(cat /proc/$target/comm 2>/dev/null)" = sleep ]; do sleep 0.05; done
"$SIM" trace record -o "$T/ok.sptrace" --pid "$target" --count 2 --interval-ms 10 >/dev/null || fail=1
kill "$target"
[ "$(stat -c %a "$T/ok.sptrace")" = 600 ] || { echo "FAIL: recorded trace is not mode 0600"; fail=1; }
"$SIM" trace check "$T/ok.sptrace" >/dev/null || fail=1
exit $fail
