#!/bin/bash
# The real two-node NUMA test of the live backend (ctest live.numa_qemu_two_nodes,
# label slow): boots a QEMU guest (TCG) with two NUMA nodes of 512 MiB, one CPU
# each, whose initramfs holds busybox-static and the numa_guest binary with every
# shared library ldd lists (at the same paths); the guest's /init mounts proc, sys
# and dev, runs numa_guest (see numa_guest.c for what it checks) and powers off.
# Passes when the serial console shows "NUMA-GUEST PASS", fails on
# "NUMA-GUEST FAIL: ..." or when neither line comes within the timeout.  The kernel
# is the Debian 6.1 one traces/guestkit caches (downloaded on first use).
#
#   tests/real/numa_qemu.sh BUILD/tests/numa_guest [timeout-seconds (default 600)]
#
# Exit 77 (skipped, with the reason) without qemu-system-x86_64, busybox-static,
# cpio or the kernel package (no network and not cached).  NUMA_QEMU_KEEP=1 keeps
# the run directory (console log, initramfs).
set -euo pipefail
BIN=$1
TIMEOUT=${2:-600}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "skip: $*"; exit 77; }

[ -x "$BIN" ] || { echo "numa_qemu: no executable $BIN" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "cpio is not installed"
[ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
	skip "busybox-static is not installed (the guest's shell: apt-get install busybox-static)"

RUN=$(mktemp -d /tmp/numa_qemu.XXXXXX)
QPID=
cleanup() {
	if [ -n "$QPID" ]; then
		kill "$QPID" 2>/dev/null || true
		wait "$QPID" 2>/dev/null || true
	fi
	if [ -n "${NUMA_QEMU_KEEP:-}" ]; then echo "numa_qemu: kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT

set +e
KERNEL=$("$ROOT/traces/guestkit/guestkit.sh" --print-kernel 2> "$RUN/guestkit.log")
rc=$?
set -e
sed 's/^/numa_qemu: /' "$RUN/guestkit.log" >&2
[ "$rc" -eq 3 ] && skip "no guest kernel: the Debian linux-image-6.1.0-*-amd64-unsigned package could not be found or downloaded: $(tail -1 "$RUN/guestkit.log")"
[ "$rc" -eq 0 ] && [ -f "$KERNEL" ] || { echo "numa_qemu: guestkit --print-kernel failed ($rc)" >&2; exit 1; }

# The initramfs: busybox, the binary, its libraries and loader at their host paths.
R=$RUN/root
mkdir -p "$R"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$R/bin/busybox"
cp "$BIN" "$R/bin/numa_guest"
ldd "$BIN" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
	mkdir -p "$R$(dirname "$lib")"
	cp -L "$lib" "$R$lib"
done
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "NUMA-GUEST START $(ls -d /sys/devices/system/node/node* | wc -l) nodes, $(nproc) cpus" > /dev/ttyS0
LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu /bin/numa_guest > /dev/ttyS0 2>&1 ||
	echo "NUMA-GUEST exit status $?" > /dev/ttyS0
sync
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 > "$RUN/initrd.cpio.gz")

start=$(date +%s)
qemu-system-x86_64 -accel tcg -machine pc -cpu max -m 1024 -smp 2 -nodefaults -display none \
	-no-reboot -name numa-guest \
	-object memory-backend-ram,size=512M,id=m0 -object memory-backend-ram,size=512M,id=m1 \
	-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
	-serial "file:$RUN/console.log" \
	-kernel "$KERNEL" -initrd "$RUN/initrd.cpio.gz" -append "console=ttyS0 quiet panic=-1" \
	> "$RUN/qemu.log" 2>&1 &
QPID=$!

verdict() { { grep -a "^NUMA-GUEST \(PASS\|FAIL\)" "$RUN/console.log" 2>/dev/null || true; } | head -1 | tr -d '\r'; }
result=
for _ in $(seq $((TIMEOUT * 5))); do
	result=$(verdict)
	[ -z "$result" ] || break
	kill -0 "$QPID" 2>/dev/null || { result=$(verdict); break; }
	sleep 0.2
done
echo "numa_qemu: guest ran $(($(date +%s) - start)) s ($(basename "$KERNEL"), TCG, 2 nodes)"
grep -a "^NUMA-GUEST" "$RUN/console.log" 2>/dev/null | tr -d '\r' || true
case $result in
"NUMA-GUEST PASS"*) exit 0 ;;
"NUMA-GUEST FAIL"*) exit 1 ;;
*)
	echo "numa_qemu: no PASS/FAIL line within ${TIMEOUT} s; the console's last lines:" >&2
	tail -20 "$RUN/console.log" >&2 2>/dev/null || true
	cat "$RUN/qemu.log" >&2 2>/dev/null || true
	exit 1 ;;
esac
