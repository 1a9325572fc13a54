#!/bin/bash
# The proof of the ksm model on a real kernel (issue 13; ctest
# live.ksm_proof_6.1 and live.ksm_proof_6.12, label slow): boots QEMU guests
# (TCG) on Debian's 6.1 or 6.12 kernel package, each running ksm_guest (see
# ksm_guest.c) on one proof trace with one set of tunables, and compares the
# guest kernel's KSM counters after every full scan with `sim run --kernel
# SERIES --scans N --snapshot-scans K` on the same trace.  Passes when
# pages_sharing after every full scan (the first three and the steady state
# included) is within 2% of the model's (exactly equal where either is 0).
#
#   tests/real/ksm_proof.sh SERIES SIM KSM_GUEST [RESULTS.csv]
#
# SERIES is 6.1 or 6.12 (the kernel traces/guestkit fetches).  The traces,
# generated here with `sim trace gen` (4 guests x 2000 pages):
#   static    one snapshot: half the pages from 125 shared contents, 5% zero;
#   writes    the same mix, 20% of the pages volatile: half of them rewritten
#             at each of 3 later snapshots;
#   newguest  guest3 absent until the second snapshot, then 60% of its pages
#             are contents that are already KSM pages in the other guests (the
#             first-visit merge of <= 6.10);
#   huge      one snapshot, 4 x 2048 pages, half of the 2 MiB regions on
#             transparent huge pages, 20% zero pages (from 6.12 a merge's
#             split maps the zero subpages to the zero page).
# Later snapshots apply after every K=2 full scans.  Tunables: default (the
# kernel's) and aggressive (pages_to_scan=1000 sleep_millisecs=10
# use_zero_pages=1).  RESULTS.csv (optional) gets one row per case and full
# scan: series,trace,tunables,full_scans,kernel,model (pages_sharing) and
# the other counters side by side.  Prints the comparison.
#
# KSM_PROOF_JOBS guests at once (default 2, at most 4), 256 MiB each; every
# guest is killed on every exit path.  KSM_PROOF_KEEP=1 keeps the run
# directory; KSM_PROOF_CASES="trace:tunables ..." runs only those cases.  Exit 77 (skipped, with the reason) without qemu-system-x86_64,
# busybox-static, cpio or the kernel package (no network and not cached).
set -euo pipefail
SERIES=$1 SIM=$2 GUEST=$3 RESULTS=${4:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
K=2
JOBS=${KSM_PROOF_JOBS:-2}
[ "$JOBS" -ge 1 ] && [ "$JOBS" -le 4 ] || { echo "ksm_proof: KSM_PROOF_JOBS must be 1..4" >&2; exit 2; }
skip() { echo "skip: $*"; exit 77; }

case $SERIES in 6.1|6.12) ;; *) echo "ksm_proof: SERIES must be 6.1 or 6.12" >&2; exit 2 ;; esac
[ -x "$SIM" ] && [ -x "$GUEST" ] || { echo "ksm_proof: no executable $SIM or $GUEST" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "cpio is not installed"
[ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
	skip "busybox-static is not installed (the guest's shell: apt-get install busybox-static)"

RUN=$(mktemp -d /tmp/ksm_proof.XXXXXX)
QPIDS=()
cleanup() {
	local p
	for p in "${QPIDS[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for p in "${QPIDS[@]}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	if [ -n "${KSM_PROOF_KEEP:-}" ]; then echo "ksm_proof: kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

set +e
KERNEL=$("$ROOT/traces/guestkit/guestkit.sh" --print-kernel --kernel-series "$SERIES" 2> "$RUN/guestkit.log")
rc=$?
set -e
[ "$rc" -eq 3 ] && skip "no guest kernel: the Debian $SERIES kernel package could not be found or downloaded: $(tail -1 "$RUN/guestkit.log")"
[ "$rc" -eq 0 ] && [ -f "$KERNEL" ] || { cat "$RUN/guestkit.log" >&2; echo "ksm_proof: guestkit --print-kernel failed ($rc)" >&2; exit 1; }

# The traces and the full scans each case runs: K per later snapshot, then 4 to settle.
GEN=(--guests 4 --pages 2000 --zero-fraction 0.05 --huge-fraction 0)
"$SIM" trace gen -o "$RUN/static.sptrace" "${GEN[@]}" --snapshots 1 --shared-fraction 0.5 --seed 11
"$SIM" trace gen -o "$RUN/writes.sptrace" "${GEN[@]}" --snapshots 4 --shared-fraction 0.5 \
	--volatile-fraction 0.2 --write-rate 0.5 --seed 12
"$SIM" trace gen -o "$RUN/newguest.sptrace" "${GEN[@]}" --snapshots 2 --late-guests 1 \
	--shared-fraction 0.6 --write-rate 0 --seed 13
# whole 2 MiB regions (2048 pages a guest), so that every region the trace calls huge can be one
"$SIM" trace gen -o "$RUN/huge.sptrace" --guests 4 --pages 2048 --snapshots 1 --shared-fraction 0.5 \
	--zero-fraction 0.2 --huge-fraction 0.5 --seed 14
declare -A SCANS=([static]=6 [writes]=$((3 * K + 4)) [newguest]=$((K + 4)) [huge]=6)
declare -A TUNE=([default]="" [aggressive]="pages_to_scan=1000 sleep_millisecs=10 use_zero_pages=1")
CASES=()
for t in static writes newguest huge; do for u in default aggressive; do CASES+=("$t:$u"); done; done
[ -z "${KSM_PROOF_CASES:-}" ] || read -r -a CASES <<< "$KSM_PROOF_CASES" # e.g. "newguest:default"

# One initramfs per case: busybox, ksm_guest (and its libraries when not static), the trace.
initrd() { # case
	local t=${1%%:*} u=${1#*:} r sets=() kv
	r=$RUN/$t-$u/root
	mkdir -p "$r"/{bin,dev,proc,sys,tmp}
	cp /bin/busybox "$r/bin/busybox"
	cp "$GUEST" "$r/bin/ksm_guest"
	cp "$RUN/$t.sptrace" "$r/trace.sptrace"
	{ ldd "$GUEST" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
		mkdir -p "$r$(dirname "$lib")"
		cp -L "$lib" "$r$lib"
	done
	for kv in ${TUNE[$u]}; do sets+=(--set "$kv"); done
	cat > "$r/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Under 512 MiB of RAM the kernel starts with transparent huge pages off
# (hugepage_init()): on as on a host, for the regions the trace calls huge.
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu /bin/ksm_guest /trace.sptrace \
	--scans ${SCANS[$t]} --snapshot-scans $K ${sets[*]} --timeout-s 900 > /dev/ttyS0 2>&1 ||
	echo "KSM-GUEST FAIL: exit status \$?" > /dev/ttyS0
sync
poweroff -f
EOF
	chmod +x "$r/init"
	(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1 > "$RUN/$t-$u/initrd.cpio.gz")
}

boot() { # case index -> QPIDS[index]
	local c=${CASES[$1]} d
	d=$RUN/${c%%:*}-${c#*:}
	qemu-system-x86_64 -accel tcg -machine pc -cpu max -m 256 -smp 1 -nodefaults -display none \
		-no-reboot -name "ksm-proof-$1" -serial "file:$d/console.log" \
		-kernel "$KERNEL" -initrd "$d/initrd.cpio.gz" -append "console=ttyS0 quiet panic=-1" \
		> "$d/qemu.log" 2>&1 &
	QPIDS[$1]=$!
	date +%s > "$d/start"
}

verdict() { { grep -a "^KSM-GUEST \(DONE\|FAIL\)" "$1/console.log" 2>/dev/null || true; } | head -1 | tr -d '\r'; }

for i in "${!CASES[@]}"; do initrd "${CASES[$i]}"; done
started=0 finished=0 failed=0
declare -A DONE=()
while [ "$finished" -lt "${#CASES[@]}" ]; do
	running=0
	for i in "${!QPIDS[@]}"; do [ -n "${QPIDS[$i]}" ] && running=$((running + 1)); done
	if [ "$running" -lt "$JOBS" ] && [ "$started" -lt "${#CASES[@]}" ]; then
		boot "$started"
		started=$((started + 1))
		continue
	fi
	sleep 1
	for i in "${!QPIDS[@]}"; do
		p=${QPIDS[$i]}
		[ -n "$p" ] || continue
		c=${CASES[$i]} d=$RUN/${CASES[$i]%%:*}-${CASES[$i]#*:}
		v=$(verdict "$d")
		if [ -z "$v" ] && kill -0 "$p" 2>/dev/null && [ $(($(date +%s) - $(cat "$d/start"))) -lt 1200 ]; then
			continue
		fi
		# the harness is done (the guest powers off by itself), failed, died or timed out
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		QPIDS[$i]=
		finished=$((finished + 1))
		echo "ksm_proof: $SERIES $c: ${v:-no verdict} ($(($(date +%s) - $(cat "$d/start"))) s)"
		huge=$({ grep -a "^KSM-GUEST BEGIN" "$d/console.log" || true; } | tr -d '\r' | awk '{ print $5 }')
		if [[ $v == "KSM-GUEST DONE"* ]] && [ "${c%%:*}" = huge ] && ! [ "${huge:-0}" -gt 0 ]; then
			failed=1
			echo "ksm_proof: $c: the guest made no transparent huge page (AnonHugePages ${huge:-?} kB)" >&2
		elif [[ $v == "KSM-GUEST DONE"* ]]; then
			DONE[$c]=1
		else
			failed=1
			echo "ksm_proof: $c: the console's last lines:" >&2
			tail -15 "$d/console.log" >&2 2>/dev/null || true
		fi
	done
done

# The model on the same traces, and the comparison, full scan by full scan.
[ -z "$RESULTS" ] || echo "series,trace,tunables,full_scans,kernel_pages_sharing,model_pages_sharing,kernel_pages_shared,model_pages_shared,kernel_pages_unshared,model_pages_unshared" > "$RESULTS"
bad=0
for c in "${CASES[@]}"; do
	[ -n "${DONE[$c]:-}" ] || continue
	t=${c%%:*} u=${c#*:} d=$RUN/${c%%:*}-${c#*:}
	sets=()
	for kv in ${TUNE[$u]}; do sets+=(--set "$kv"); done
	grep -a "^KSM-CSV," "$d/console.log" | tr -d '\r' | cut -d, -f2- > "$d/kernel.csv"
	"$SIM" run --trace "$RUN/$t.sptrace" --algo ksm --kernel "$SERIES" "${sets[@]}" \
		--scans "${SCANS[$t]}" --snapshot-scans $K --csv "$d/model.csv" -q 2> "$d/sim.log"
	# Join on full_scans by column name: the kernel's file has the counters it has.
	if ! awk -F, -v series="$SERIES" -v tr="$t" -v tu="$u" -v results="$RESULTS" -v scans="${SCANS[$t]}" '
		FNR == 1 { for (i = 1; i <= NF; i++) col[FILENAME, $i] = i; next }
		FILENAME == ARGV[1] { k[$col[FILENAME, "full_scans"]] = $0; next }
		{
			n = $col[FILENAME, "full_scans"]
			if (!(n in k)) next
			split(k[n], kv, ",")
			ks = kv[col[ARGV[1], "pages_sharing"]]; ms = $col[FILENAME, "pages_sharing"]
			err = ks == ms ? 0 : ks == 0 || ms == 0 ? 100 : 100 * (ms - ks) / ks
			ok = (err <= 2 && err >= -2)
			seen++
			printf "%-5s %-9s %-10s scan %2d  pages_sharing kernel %6d model %6d (%+.2f%%)  shared %5d/%5d  unshared %5d/%5d  %s\n",
				series, tr, tu, n, ks, ms, err, kv[col[ARGV[1], "pages_shared"]], $col[FILENAME, "pages_shared"],
				kv[col[ARGV[1], "pages_unshared"]], $col[FILENAME, "pages_unshared"], ok ? "ok" : "OFF"
			if (results != "")
				printf "%s,%s,%s,%d,%d,%d,%d,%d,%d,%d\n", series, tr, tu, n, ks, ms,
					kv[col[ARGV[1], "pages_shared"]], $col[FILENAME, "pages_shared"],
					kv[col[ARGV[1], "pages_unshared"]], $col[FILENAME, "pages_unshared"] >> results
			if (!ok) bad = 1
			# every other counter the kernel has, for the record
			for (c in col) {
				split(c, fc, SUBSEP)
				if (fc[1] != ARGV[1] || fc[2] == "full_scans" || !((ARGV[2], fc[2]) in col)) continue
				if (kv[col[c]] != $col[ARGV[2], fc[2]]) { diff[fc[2]]++; ndiff++ }
				nother++
			}
		}
		END {
			printf "%-5s %-9s %-10s all counters: %d of %d values equal", series, tr, tu, nother - ndiff, nother
			for (d in diff) printf "; %s differs in %d scans", d, diff[d]
			printf "\n"
			if (seen != scans) { printf "ksm_proof: %s %s: %d of %d full scans compared\n", tr, tu, seen, scans; bad = 1 }
		      exit bad }' "$d/kernel.csv" "$d/model.csv"; then
		bad=1
	fi
done
[ "$failed" -eq 0 ] || { echo "ksm_proof: a guest failed (above)"; exit 1; }
[ "$bad" -eq 0 ] || { echo "ksm_proof: FAIL: the model is more than 2% off the $SERIES kernel (rows marked OFF)"; exit 1; }
echo "ksm_proof: ok: pages_sharing within 2% of Linux $SERIES after every full scan, ${#CASES[@]} cases"
