#!/bin/bash
# Benchmark: the simulator at host size (issue 14).  For each size it
# generates a trace (3 snapshots; 2 at 256 M pages), then measures
#   decode:  `sim trace check` (the reader alone) and `sim run --algo oracle`
#            (reader + simulated memory + oracle counts): page records per
#            second of user CPU;
#   ksm:     `sim run --algo ksm` with ksmd never resting, to the end of the
#            first full scan that ends after the last snapshot (`--scans N`:
#            the same work whatever the cost model's pace in simulated time;
#            N = 1 from 8M pages up) and of the next one: pages_scanned per
#            CPU second (user + system) of the whole run, and per USER second
#            of the scan to N alone (the difference from a run that stops at
#            the last snapshot: same decoding, same tables) and of scan N+1
#            alone (the difference between the two runs: the steady state,
#            where unchanged pages search the stable and unstable trees).
#            The "alone" figures difference user time only: a run's system
#            time is mostly its first touch of fresh memory, which on this VM
#            (free page reporting, ~2.5 s/GiB) swings by seconds between runs
#            of the same code.  (Until the twelfth round they differenced
#            user + system: scan 1 alone read 16.0 and 7.6 M/s at 32M for
#            unchanged code.)  Scan N+1 is also timed inside its own run
#            (sim run's "host cpu" line: getrusage at the ends of full scans
#            N and N+1), printed below the differenced figure: one run's
#            user time, no second run's to subtract (the differenced figure
#            swung 5.3-9.0 M for one binary in the twenty-second round).
#   memory:  peak RSS (/usr/bin/time -v "Maximum resident set size") in bytes
#            per guest page, for oracle and ksm (one and two scans) each;
#   others:  ALGOS (default "zero uksm cmd esx"; empty: none), the new build
#            only (ALGOS_ANCHOR=1: the anchor too), the SAME WORK PER PAGE AT
#            EVERY SIZE, so that the cost per page at size can be set beside
#            the 1M figure ("no slower per page at size": the per-page cost
#            of the same work must not grow with the number of pages).
#            "Per page" is per page visit: user CPU divided by pages_scanned
#            (a page visited by a full scan for zero and cmd, a page sample
#            for uksm and esx).  The same work means, at every size:
#            - zero, cmd, uksm: `--snapshot-scans 1` (snapshot i right after
#              full scan i) and pages_to_scan = the pages / 10 (10 batches a
#              full pass at every size; at most 1e7, the parameter's
#              maximum, so at 256M a pass is 27 batches: not the same work
#              there), sleep_millisecs=0; once to the end of scan 3 (the
#              three scans that each see a snapshot: scan 1 hashes every
#              page) and once to the end of scan 3 + S, S steady scans, the
#              same S at every size (STEADY, default 4; uksm 10 S, its levels
#              sample about a tenth of the pages a scan).  uksm's budget a
#              batch shared among its levels decides how many samples a scan
#              takes, so with a fixed pages_to_scan a scan was 0.1 samples a
#              page at 1M and 0.02 at 32M: scaled, 0.1 at both.
#            - esx (no full scans): 0.2 samples a page a simulated second
#              (share_scan_vm = a guest's pages / 5, share_scan_total = all
#              pages / 5: 0.4 samples a page before the last snapshot), to 3
#              and to 3 + S samples a page after it, with the cost model's
#              prices at 0 (`--cost visit=0,...`: a batch then takes no
#              simulated time, so the sampling rate is the one asked at
#              every size; with the default prices a batch of 200k samples
#              took ~0.5 s of simulated time, so the rate achieved fell with
#              the size).  Nothing else moves: the same samples, the same
#              lookups, only the simulated clock's charge for them.
#            Printed, for each: the visits a page of each part (to check
#            that the work is the same), user CPU per page visit of the
#            three snapshot scans beyond the oracle's replay of the same
#            trace, of the steady scans alone (the difference between the
#            two runs), and peak RSS per page.  What still differs between
#            sizes is the trace's shape: 8 guests at 1M and 8M, 32 at 32M.
#            (Until the fifteenth round S was 64 M page visits - 64 scans at
#            1M, 2 at 32M - pages_to_scan 100000 at every size, and esx
#            sampled 200k pages a second at every size: 0.4 samples a page
#            before the last snapshot at 1M, 0.01 at 32M.  Until the tenth
#            round one run of 64 M visits: at 1M 62 of cmd's 64 scans were
#            steady ones, at 32M one of two was scan 1.)  The difference
#            of two runs at 1M is a few tenths of a second: use REPEAT.
# Generated traces are deleted as soon as their size is done.
# Usage: [ANCHOR=path/to/other/sim] [REPEAT=n] bench/bench_scale.sh [path/to/sim] [sizes...]
#   sizes: 1M 8M 32M 256M (default: 1M 8M 32M); the load average is printed
#   with every size, since timings on a shared machine depend on it.
#   ANCHOR: a second build (e.g. main before a change) measured the same way
#   right after each measurement, on the same trace, so that the ratio
#   between the two holds even when the machine's load moves the timings.
#   REPEAT (default 1): every figure is measured REPEAT times, in rounds (a
#   round runs each command once, the anchor's right after the build's, so
#   repeats alternate between builds), and printed as the median over the
#   rounds - of a difference between two runs, the median of the rounds'
#   differences - with the range beside it when REPEAT > 1.
#   KSM=0: leave out the ksm model's runs (decoding and ALGOS only).
#   Each size's header names what one dependent load costs from 4 MiB, 64
#   MiB and 2 GiB (build/mem_latency, beside the sim): on this VM it moves
#   between boots, and the 32M/1M ratios with it.
#   SETTLE (seconds, default 10): pause before each timed run.  In this VM
#   memory freed by one process and touched again by the next within ~2 s
#   costs ~0.15 s of system time per GiB, fresh memory (given back to the
#   host by free page reporting) 2-3 s per GiB: without the pause a run
#   right after another pays far less system time than the first of a pair.
# Results: bench/README.md
set -euo pipefail
SIM=${1:-build/sim}
shift || true
SIZES=("$@")
ALGOS=${ALGOS-zero uksm cmd esx}
REPEAT=${REPEAT:-1}
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1M 8M 32M)
DIR=${BENCH_DIR:-$(dirname "$SIM")}
T=$(mktemp -d "$DIR/bench_scale.XXXXXX")
trap 'rm -rf "$T"' EXIT

# Runs a command under GNU time -v and appends one record to $T/rec:
#   build round key user_s sys_s max_rss_kib count ms scan_user_s
# count: pages_scanned of the run's CSV (--csv "$T/run.csv"), else the page
# records its output names; ms: the CSV's last simulated time; scan_user_s:
# the user CPU of the last full scan alone, measured inside the run (sim
# run's "host cpu" line with --scans), or - .  $b and $k: the build (0 the build, 1 the anchor)
# and the round.
timed() {
	local key=$1 u s r n ms=0 iu
	shift
	sleep "${SETTLE:-10}"
	rm -f "$T/run.csv"
	/usr/bin/time -v -o "$T/time" "$@" > "$T/out"
	read -r u s <<<"$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u, s }' "$T/time")"
	r=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$T/time")
	if [ -f "$T/run.csv" ]; then
		n=$(tail -1 "$T/run.csv" | cut -d, -f"$(col pages_scanned)")
		ms=$(tail -1 "$T/run.csv" | cut -d, -f1)
	else
		n=$(grep -o '[0-9]* page records' "$T/out" | head -1 | cut -d' ' -f1)
	fi
	iu=$(sed -n 's/^host cpu .* alone: \([0-9.]*\) s user.*/\1/p' "$T/out")
	echo "$b $k $key $u $s $r ${n:-0} $ms ${iu:--}" >> "$T/rec"
}
col() { head -1 "$T/run.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }

# The steady scans of algorithm $1 (see the top).
steady_of() { if [ "$1" = uksm ]; then echo $((10 * steady)); else echo "$steady"; fi; }
# The cost model's prices at 0 (esx: the sampling rate asked, at every size).
NOCOST=visit=0,checksum=0,compare=0,tree_step=0,merge=0,cow_break=0

# One round of the runs of build $1.
runs() {
	local sim=$1 a n
	timed check "$sim" trace check "$tr"
	# Up to the last snapshot: every record is replayed, nothing simulated after.
	timed oracle "$sim" run --trace "$tr" --algo oracle --duration-ms "$last_ms"
	if [ "${KSM:-1}" != 0 ]; then
		ksm() {
			local key=$1
			shift
			# no -q: the summary's "host cpu" line (the last scan alone, in the run)
			timed "$key" "$sim" run --trace "$tr" --algo ksm "$@" \
				--set pages_to_scan=10000 --set sleep_millisecs=0 --csv "$T/run.csv"
		}
		ksm ksm0 --duration-ms "$last_ms"
		# The scans counted at the last snapshot: the same in every round.
		[ -n "${scans0:-}" ] || scans0=$(tail -1 "$T/run.csv" | cut -d, -f"$(col full_scans)")
		ksm ksm1 --scans $((scans0 + 1))
		ksm ksm2 --scans $((scans0 + 2))
	fi
	[ "$sim" = "$SIM" ] || [ "${ALGOS_ANCHOR:-0}" = 1 ] || return 0
	for a in $ALGOS; do
		for n in 3 $((3 + $(steady_of "$a"))); do
			if [ "$a" = esx ]; then
				timed "$a.$n" "$sim" run --trace "$tr" --algo esx --duration-ms $((last_ms + n * 5000)) \
					--set share_scan_vm=$((pages / 5)) --set share_scan_total=$((total / 5)) \
					--cost "$NOCOST" -q --csv "$T/run.csv"
			else
				timed "$a.$n" "$sim" run --trace "$tr" --algo "$a" --snapshot-scans 1 --scans "$n" \
					--set pages_to_scan="$pts" --set sleep_millisecs=0 -q --csv "$T/run.csv"
			fi
		done
	done
}

# The figures of build $1 (0 or 1) from $T/rec: medians over the rounds.
report() {
	awk -v b="$1" -v p="$total" -v scans0="${scans0:-0}" -v steady="$steady" -v algos="$ALGOS" \
		-v ksm="${KSM:-1}" '
	function med(a, n,   i, j, t) { # median of a[1..n] (sorts a)
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	# Median of v[1..R]; its range in rlo, rhi (rng(): " [min-max]" when R > 1).
	function stat(v,   i, a, lo, hi) {
		for (i = 1; i <= R; i++) { a[i] = v[i]; if (i == 1 || v[i] < lo) lo = v[i]; if (i == 1 || v[i] > hi) hi = v[i] }
		rlo = lo; rhi = hi
		return med(a, R)
	}
	function q(x, d) { return d > 0 ? x / d : 0 } # a rate; 0 when the time is not above 0 (noise)
	function rng(f) { return R > 1 ? sprintf(" [" f "-" f "]", rlo, rhi) : "" }
	$1 == b { k = $2; if (k > R) R = k; U[$3, k] = $4; S[$3, k] = $5; M[$3, k] = $6; N[$3] = $7; MS[$3] = $8; IU[$3, k] = $9; seen[$3] = 1 }
	END {
		for (i = 1; i <= R; i++) v[i] = U["check", i] + S["check", i]
		c = stat(v)
		if (c < 0.01) printf "trace check: %d records, under 0.01 s CPU\n", N["check"]
		else printf "trace check: %d records, %.2f s CPU, %.1f M records/s%s\n", N["check"], c, N["check"] / c / 1e6,
			(R > 1 ? sprintf(" [%.1f-%.1f]", q(N["check"], rhi) / 1e6, q(N["check"], rlo) / 1e6) : "")
		n = N["oracle"]
		for (i = 1; i <= R; i++) { v[i] = U["oracle", i] + S["oracle", i]; w[i] = U["oracle", i]; rss = M["oracle", i] > rss ? M["oracle", i] : rss }
		c = stat(v); ou = stat(w)
		printf "oracle: %d records, %.2f s CPU (%.2f s user%s), %.1f M records/s (%.1f M per user second), peak RSS %.0f MiB = %.1f B/page\n",
			n, c, ou, rng("%.2f"), n / c / 1e6, n / ou / 1e6, rss / 1024, rss * 1024 / p
		if (ksm != 0) for (j = 1; j <= 2; j++) {
			a = "ksm" (j - 1); z = "ksm" j; rss = 0
			for (i = 1; i <= R; i++) { v[i] = U[z, i] + S[z, i]; w[i] = U[z, i] - U[a, i]; rss = M[z, i] > rss ? M[z, i] : rss }
			c = stat(v); d = stat(w); dlo = rlo; dhi = rhi
			s = N[z]; s0 = N[a]
			printf "ksm --scans %d: %d ms simulated, %.2f s CPU (user + system), %d pages_scanned, %.1f M scans/s; scan %d alone %.2f s user, %.1f M scans per user second%s; peak RSS %.0f MiB = %.1f B/page\n",
				scans0 + j, MS[z], c, s, s / c / 1e6, scans0 + j, d, q(s - s0, d) / 1e6,
				(R > 1 ? sprintf(" [%.1f-%.1f]", q(s - s0, dhi) / 1e6, q(s - s0, dlo) / 1e6) : ""), rss / 1024, rss * 1024 / p
			# Scan N+1 timed inside the run (getrusage at the ends of scans N and N+1): no
			# decoding, first touch or exit of a second run in the figure.  (Not scan N: the
			# differenced figure counts it from the last snapshot, not from the end of a scan.)
			if (j == 2 && IU[z, 1] != "-" && IU[z, 1] != "") {
				for (i = 1; i <= R; i++) w[i] = IU[z, i]
				d = stat(w)
				printf "    scan %d alone timed in the run: %.2f s user, %.1f M scans per user second%s\n",
					scans0 + j, d, q(s - s0, d) / 1e6,
					(R > 1 ? sprintf(" [%.1f-%.1f]", q(s - s0, rhi) / 1e6, q(s - s0, rlo) / 1e6) : "")
			}
		}
		na = split(algos, A, " ")
		for (j = 1; j <= na; j++) {
			a = A[j] ".3"; z = A[j] "." (3 + (A[j] == "uksm" ? 10 : 1) * steady)
			if (!seen[a]) continue
			rss = 0
			for (i = 1; i <= R; i++) { v[i] = U[a, i]; w[i] = U[a, i] - U["oracle", i]; rss = M[a, i] > rss ? M[a, i] : rss }
			c = stat(v); d = stat(w)
			printf "%s scans 1-3: %.2f s user, %d pages_scanned (%.2f a page), %.0f ns user CPU per page beyond the replay%s; peak RSS %.0f MiB = %.1f B/page\n",
				A[j], c, N[a], N[a] / p, d * 1e9 / N[a], (R > 1 ? sprintf(" [%.0f-%.0f]", rlo * 1e9 / N[a], rhi * 1e9 / N[a]) : ""),
				rss / 1024, rss * 1024 / p
			rss = 0
			for (i = 1; i <= R; i++) { v[i] = U[z, i] - U[a, i]; rss = M[z, i] > rss ? M[z, i] : rss }
			d = stat(v)
			printf "%s scans 4-%d alone: %.2f s user, %d pages_scanned (%.2f a page), %.0f ns user CPU per page%s; peak RSS %.0f MiB = %.1f B/page\n",
				A[j], 3 + (A[j] == "uksm" ? 10 : 1) * steady, d, N[z] - N[a], (N[z] - N[a]) / p, d * 1e9 / (N[z] - N[a]),
				(R > 1 ? sprintf(" [%.0f-%.0f]", rlo * 1e9 / (N[z] - N[a]), rhi * 1e9 / (N[z] - N[a])) : ""),
				rss / 1024, rss * 1024 / p
		}
	}' "$T/rec"
}

for size in "${SIZES[@]}"; do
	case $size in
	1M) guests=8; pages=131072; snaps=3 ;;
	8M) guests=8; pages=1048576; snaps=3 ;;
	32M) guests=32; pages=1048576; snaps=3 ;;
	256M) guests=64; pages=4194304; snaps=2 ;;
	*) echo "unknown size $size (1M 8M 32M 256M)" >&2; exit 2 ;;
	esac
	total=$((guests * pages))
	steady=${STEADY:-4}
	pts=$((total / 10 < 10000000 ? total / 10 : 10000000))
	tr="$T/s.sptrace"
	echo "== $size: $guests guests x $pages pages, $snaps snapshots; load $(cut -d' ' -f1-3 /proc/loadavg)"
	# What a miss costs today (the ratios between sizes move with it).
	[ ! -x "$(dirname "$SIM")/mem_latency" ] || echo "memory: $("$(dirname "$SIM")/mem_latency")"
	"$SIM" trace gen -o "$tr" --guests "$guests" --pages "$pages" --snapshots "$snaps" --seed 1
	ls -l "$tr" | awk '{ printf "trace size %.1f MB\n", $5 / 1e6 }'
	# An anchor from before trace format version 2 reads the same trace in version 1.
	tr_anchor=$tr
	if [ -n "${ANCHOR:-}" ] && "$SIM" help trace gen 2>&1 | grep -q -- --format-version &&
		! "$ANCHOR" help trace gen 2>&1 | grep -q -- --format-version; then
		tr_anchor="$T/s1.sptrace"
		"$SIM" trace gen -o "$tr_anchor" --guests "$guests" --pages "$pages" --snapshots "$snaps" \
			--seed 1 --format-version 1
		echo "the anchor reads the same trace in format version 1"
	fi
	last_ms=$(((snaps - 1) * 1000))
	rm -f "$T/rec"
	unset scans0

	for k in $(seq "$REPEAT"); do
		b=0
		echo "round $k: load $(cut -d' ' -f1 /proc/loadavg)"
		runs "$SIM"
		if [ -n "${ANCHOR:-}" ]; then
			b=1
			echo "round $k, anchor: load $(cut -d' ' -f1 /proc/loadavg)"
			tr0=$tr tr=$tr_anchor
			runs "$ANCHOR"
			tr=$tr0
		fi
	done
	[ "$REPEAT" = 1 ] || echo "medians of $REPEAT rounds (range in brackets)"
	report 0
	if [ -n "${ANCHOR:-}" ]; then
		echo "-- anchor $ANCHOR"
		report 1
	fi
	rm -f "$tr" "$tr_anchor"
	echo "load after $size: $(cut -d' ' -f1-3 /proc/loadavg)"
done
