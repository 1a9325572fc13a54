#!/bin/bash
# Builds the libFuzzer harnesses with clang (build-fuzz/) and runs each for
# SECONDS seconds (default 60; SP_FUZZ_SECONDS overrides) from a seed corpus
# made of the bundled sample traces (format version 1) and seeds/summary.sptrace
# (version 2, with its SUMM chunk), crafted ELF cores, a sweep share and
# command lines.  Exit 0: no finding; 1: a finding (the crashing input is
# kept in build-fuzz/findings/); 77: skipped, with the reason (no clang or
# no libFuzzer runtime).
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]
# The harnesses run at the same time (SECONDS of wall time in all).
# Run in the background at low priority for long campaigns:
#   nice -n 19 tests/fuzz/run.sh 900
set -uo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-${SP_FUZZ_SECONDS:-60}}
shift || true
HARNESSES=${*:-trace elf csv options kv}
B=build-fuzz
CC=${SP_FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "SKIP: $CC not installed (apt-get install clang)"; exit 77; }
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)n * 0; }' \
	> /tmp/sp-fuzz-probe.$$.c
if ! "$CC" -fsanitize=fuzzer /tmp/sp-fuzz-probe.$$.c -o /tmp/sp-fuzz-probe.$$ 2>/dev/null; then
	rm -f /tmp/sp-fuzz-probe.$$*
	echo "SKIP: $CC has no libFuzzer runtime (-fsanitize=fuzzer)"; exit 77
fi
rm -f /tmp/sp-fuzz-probe.$$*
CC=$CC cmake -S . -B $B -DSP_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build $B -j"$(nproc)" --target $(for h in $HARNESSES; do printf 'fuzz_%s ' "$h"; done) > $B/build.log 2>&1 || { echo "the fuzz build failed: see $B/build.log"; exit 1; }

# seed corpora (rebuilt each time from the sources; libFuzzer adds to them)
mkdir -p $B/corpus $B/findings
for h in $HARNESSES; do mkdir -p $B/corpus/$h; done
cp traces/samples/*.sptrace tests/fuzz/seeds/*.sptrace $B/corpus/trace/ 2>/dev/null
if [ -d $B/corpus/elf ]; then
	python3 - $B/corpus/elf <<'PY'
import struct, sys, os
d = sys.argv[1]
def core(segs, name):
    # ELF64 little-endian ET_CORE with PT_LOAD segments (paddr, data)
    phoff, n = 64, len(segs)
    off = phoff + 56 * n
    hdr = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9)
    hdr += struct.pack('<HHIQQQIHHHHHH', 4, 62, 1, 0, phoff, 0, 0, 64, 56, n, 64, 0, 0)
    ph, body = b'', b''
    for paddr, data in segs:
        ph += struct.pack('<IIQQQQQQ', 1, 6, off + len(body), paddr, paddr, len(data), len(data), 4096)
        body += data
    open(os.path.join(d, name), 'wb').write(hdr + ph + body)
core([(0, bytes(4096) + b'x' * 4096)], 'two.core')
core([(0x8000000000, b'y' * 4096)], 'sparse.core')
core([(0, b'a' * 4096), (0x10000, bytes(8192))], 'gap.core')
PY
fi
[ -d $B/corpus/csv ] && cp tests/fuzz/seeds/*.csv $B/corpus/csv/ 2>/dev/null
if [ -d $B/corpus/kv ]; then
	printf 'KSM_MONITOR_INTERVAL=60\n# a comment\nKSM_NPAGES_MAX="1250"\n' > $B/corpus/kv/a
	printf 'at_ms=1000 pages_to_scan=200\nat_ms=5000 run=0\n' > $B/corpus/kv/b
fi
if [ -d $B/corpus/options ]; then
	printf -- '--duration-ms\0001000\000-q\000--set\000a=1\000FILE' > $B/corpus/options/a
	printf -- '--seed=18446744073709551615\000--fraction\0000.5\000--mechanism=user\000--pid\0001' > $B/corpus/options/b
	printf -- '-qo\000out.csv\000--vary\000k=1,2\000--\000-x' > $B/corpus/options/c
	printf -- '--help' > $B/corpus/options/d
fi
# all harnesses at once (wall time SECS), then their results in turn
for h in $HARNESSES; do
	( cd $B/findings && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		../fuzz_$h -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -max_len=262144 \
		-print_final_stats=1 ../corpus/$h > ../fuzz_$h.log 2>&1; echo $? > ../fuzz_$h.rc ) &
done
wait
status=0
for h in $HARNESSES; do
	rc=$(cat $B/fuzz_$h.rc)
	echo "== fuzz_$h: $SECS s"
	grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" $B/fuzz_$h.log | sed 's/^/  /'
	if [ "$rc" -ne 0 ]; then
		echo "FINDING in fuzz_$h (exit $rc): see $B/fuzz_$h.log and $B/findings/"
		grep -E "ERROR|runtime error|SUMMARY" $B/fuzz_$h.log | head -5
		status=1
	fi
done
exit $status
