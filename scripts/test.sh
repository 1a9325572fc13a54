#!/bin/bash
# The test command of the README's Quick start, and of CI (.ci/run):
# installs what is missing, then builds and runs the whole suite twice -
# plainly with warnings as errors, and under AddressSanitizer and
# UndefinedBehaviorSanitizer.  Live checks labelled "slow" are left out
# (run them with: ctest --test-dir build -L slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=$(nproc)

# ctest --output-on-failure shows nothing of a skipped test: print the reason it gave (its SKIPPED line).
skip_reasons() { # build directory
	awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 }
	     /SKIPPED/ && name != "" { sub(/.*SKIPPED:? */, ""); print "skipped " name ": " $0; name = "" }' \
		"$1/Testing/Temporary/LastTest.log"
}

echo "== plain build, -Werror"
cmake -S . -B build -DSP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS" -LE slow
skip_reasons build

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build, -Werror"
cmake -S . -B build-asan -DSP_WERROR=ON -DSP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure -j"$JOBS" -LE slow
skip_reasons build-asan

echo "== libFuzzer harnesses, ${SP_FUZZ_SECONDS:-60} s each (tests/fuzz/run.sh; clang build in build-fuzz)"
rc=0
bash tests/fuzz/run.sh || rc=$?
if [ $rc -eq 77 ]; then
	echo "(fuzzing skipped: see the reason above)"
elif [ $rc -ne 0 ]; then
	exit $rc
fi
