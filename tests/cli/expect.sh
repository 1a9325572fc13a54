# Sourced by the CLI tests: expect CODE PATTERN ARGS... runs "$SIM" ARGS and
# checks the exit code and that stderr is one line matching PATTERN; a
# mismatch is reported through the script's err function.
expect() {
	local code=$1 pat=$2; shift 2
	local out rc
	out=$("$SIM" "$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -ne "$code" ] || ! grep -q -- "$pat" <<<"$out" || [ "$(wc -l <<<"$out")" -ne 1 ]; then
		err "sim $* -> exit $rc (want $code), stderr: $out"
	fi
}
