#!/bin/bash
# guestkit.sh - boots N small real Linux guests under QEMU and records a
# trace of them with `sim trace record --qemu`.  Reproducible: Debian
# packages only, nothing installed on the host except (if missing)
# qemu-system-x86, busybox-static and cpio.
#
#   traces/guestkit/guestkit.sh [options] -o OUT.sptrace
#     --sim PATH          the sim binary (default: build/sim)
#     --guests N          guests to boot (default 4)
#     --mem MIB           RAM per guest (default 512)
#     --snapshots N       snapshots to record (default 5)
#     --interval-ms N     between snapshots (default 2000)
#     --settle S          seconds to let the workload run after boot (default 5)
#     --pause             record with --pause (QMP stop/cont: consistent snapshots)
#     --no-salt           unkeyed fingerprints
#     --keep              leave the guests running (prints their pids and QMP sockets)
#     --boot-only         boot, wait until ready, print pids, and exit (implies --keep)
#     --print-kernel      only fetch the kernel into the cache (if not there) and print its
#                         path; exit 3 if the package cannot be found or downloaded
#     --kernel-series S   the Debian kernel series: 6.1 (default, bookworm's own) or 6.12
#                         (bookworm's backport, linux-image-6.12.*+deb12-amd64-unsigned)
#
# What it does: `apt-get download` the newest bookworm linux-image-6.1.0-*-amd64-unsigned
# and unpack it with `dpkg -x` (into $GUESTKIT_CACHE, default ~/.cache/samepage-guestkit);
# build an initramfs of busybox-static whose /init runs the workload below; boot the guests
# with KVM when it works (GUESTKIT_ACCEL=kvm|tcg forces one; on a host whose /dev/kvm cannot
# run ordinary guests, such as a PVM one, TCG), each with -name guestK and a QMP socket;
# wait until every guest prints "GUESTKIT READY" on its serial console; record; stop them.
#
# The workload in each guest (the same script, different random data):
#   - boot: the same kernel and initramfs in every guest (shared text, page cache);
#   - /tmp/common: 4 MiB generated identically in every guest (`seq`), shared content;
#   - /tmp/own: 8 MiB from /dev/urandom, unique to the guest;
#   - /tmp/hot: 256 KiB rewritten from /dev/urandom every second (volatile pages);
#   - a 16 MiB zero-filled file in tmpfs (zero pages).
set -euo pipefail

SIM=build/sim OUT= GUESTS=4 MEM=512 SNAPS=5 INTERVAL=2000 SETTLE=5 PAUSE= SALT= KEEP= BOOTONLY=
PRINTKERNEL= SERIES=6.1
while [ $# -gt 0 ]; do
	case $1 in
	--sim) SIM=$2; shift ;;
	-o|--output) OUT=$2; shift ;;
	--guests) GUESTS=$2; shift ;;
	--mem) MEM=$2; shift ;;
	--snapshots) SNAPS=$2; shift ;;
	--interval-ms) INTERVAL=$2; shift ;;
	--settle) SETTLE=$2; shift ;;
	--pause) PAUSE=--pause ;;
	--no-salt) SALT=--no-salt ;;
	--keep) KEEP=1 ;;
	--boot-only) BOOTONLY=1; KEEP=1 ;;
	--print-kernel) PRINTKERNEL=1 ;;
	--kernel-series) SERIES=$2; shift ;;
	-h|--help) sed -n '2,34p' "$0"; exit 0 ;;
	*) echo "guestkit: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
CACHE=${GUESTKIT_CACHE:-$HOME/.cache/samepage-guestkit}
mkdir -p "$CACHE"
# The Debian kernel of the series, from the cache or downloaded into it (exit 3
# when impossible): 6.1 in $CACHE/kernel, another series in $CACHE/kernel-SERIES.
fetch_kernel() {
	local pkg dir=kernel pattern
	case $SERIES in
	6.1) pattern='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
	6.12) pattern='^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$'; dir=kernel-6.12 ;;
	*) echo "guestkit: --kernel-series $SERIES: 6.1 or 6.12" >&2; exit 2 ;;
	esac
	KERNEL=$(ls "$CACHE/$dir"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
	[ -z "$KERNEL" ] || return 0
	pkg=$(apt-cache search --names-only "$pattern" | awk '{ print $1 }' | sort -V | tail -1)
	[ -n "$pkg" ] || { echo "guestkit: no package matching $pattern in apt (apt-get update?)" >&2; exit 3; }
	echo "guestkit: downloading $pkg" >&2
	(cd "$CACHE" && apt-get download "$pkg" >&2 2>/dev/null && dpkg -x "$pkg"_*.deb "$dir" && rm -rf "$pkg"_*.deb "$dir/lib" "$dir/usr") ||
		{ echo "guestkit: cannot download or unpack $pkg (no network?)" >&2; exit 3; }
	KERNEL=$(ls "$CACHE/$dir"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
	[ -n "$KERNEL" ] || { echo "guestkit: $pkg holds no boot/vmlinuz-*" >&2; exit 3; }
}

if [ -n "$PRINTKERNEL" ]; then
	fetch_kernel
	echo "$KERNEL"
	exit 0
fi
[ -n "$OUT" ] || [ -n "$BOOTONLY" ] || { echo "guestkit: -o OUT.sptrace is required" >&2; exit 2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
	echo "guestkit: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
		{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
fi

fetch_kernel

RUN=$(mktemp -d /tmp/guestkit.XXXXXX)
INITRD=$RUN/initrd.cpio.gz
mkdir -p "$RUN/root"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$RUN/root/bin/busybox"
cat > "$RUN/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=80% tmpfs /tmp
seq 1 560000 | head -c 4194304 > /tmp/common
dd if=/dev/urandom of=/tmp/own bs=1M count=8 2>/dev/null
dd if=/dev/zero of=/tmp/zero bs=1M count=16 2>/dev/null
echo "GUESTKIT READY" > /dev/ttyS0
while true; do
	dd if=/dev/urandom of=/tmp/hot bs=64k count=4 2>/dev/null
	sleep 1
done
EOF
chmod +x "$RUN/root/init"
(cd "$RUN/root" && find . | cpio -o -H newc --quiet | gzip -1 > "$INITRD")

PIDS=()
cleanup() {
	if [ -z "$KEEP" ]; then
		for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
		for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; done
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT

boot() { # index accel
	local i=$1 accel=$2
	qemu-system-x86_64 -accel "$accel" -machine pc -cpu max -smp 1 -m "$MEM" -nodefaults \
		-display none -no-reboot -name "guest$i" \
		-serial "file:$RUN/console$i.log" -qmp "unix:$RUN/qmp$i.sock,server=on,wait=off" \
		-kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1" \
		> "$RUN/qemu$i.log" 2>&1 &
	PIDS[i]=$!
}

wait_ready() { # index timeout_s -> 0 when ready
	local i=$1 t=$2
	for _ in $(seq $((t * 5))); do
		grep -q "GUESTKIT READY" "$RUN/console$i.log" 2>/dev/null && return 0
		kill -0 "${PIDS[i]}" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

ACCEL=${GUESTKIT_ACCEL:-}
if [ -z "$ACCEL" ]; then
	ACCEL=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		{
			boot 0 kvm
			if wait_ready 0 20; then ACCEL=kvm; else
				kill "${PIDS[0]}" 2>/dev/null || true; wait "${PIDS[0]}" || true
			fi
		} 2>/dev/null
		[ "$ACCEL" = kvm ] || echo "guestkit: KVM does not boot a guest here; using TCG" >&2
	fi
fi
echo "guestkit: booting $GUESTS guests x $MEM MiB with $ACCEL ($(basename "$KERNEL"))" >&2
for i in $(seq 0 $((GUESTS - 1))); do
	[ "$i" -eq 0 ] && [ "$ACCEL" = kvm ] && continue # already up
	boot "$i" "$ACCEL"
done
for i in $(seq 0 $((GUESTS - 1))); do
	wait_ready "$i" 300 || { echo "guestkit: guest$i did not come up; see $RUN/console$i.log" >&2; KEEP=1; exit 1; }
done
echo "guestkit: all guests ready" >&2
if [ -n "$BOOTONLY" ]; then
	for i in $(seq 0 $((GUESTS - 1))); do echo "guest$i pid ${PIDS[i]} qmp $RUN/qmp$i.sock"; done
	exit 0
fi
sleep "$SETTLE"
pidargs=()
for p in "${PIDS[@]}"; do pidargs+=(--pid "$p"); done
"$SIM" trace record --qemu "${pidargs[@]}" -o "$OUT" --count "$SNAPS" --interval-ms "$INTERVAL" $PAUSE $SALT
if [ -n "$KEEP" ]; then
	for i in $(seq 0 $((GUESTS - 1))); do echo "guest$i pid ${PIDS[i]} qmp $RUN/qmp$i.sock"; done
fi
