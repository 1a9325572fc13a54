#!/bin/bash
# Live check (slow; needs root, QEMU and the Debian kernel package that
# traces/guestkit downloads): boot two real guests, stop them over QMP, record
# one snapshot with `sim trace record --qemu`, and while they are still stopped
# have QEMU dump their memory (dump-guest-memory, ELF).  The duplicate count of
# non-zero pages in the recorded snapshot must match an independent count --
# Python hashing the dumped pages with BLAKE2 -- within 0.5%.  Exit 77 (skip)
# when root, qemu-system-x86_64 or python3 is missing.
set -euo pipefail
SIM=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu-system-x86_64"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

"$ROOT/traces/guestkit/guestkit.sh" --boot-only --guests 2 --mem 256 > "$T/guests"
cat "$T/guests"
SOCKS=()
while read -r _ _ pid _ sock; do PIDS+=("$pid"); SOCKS+=("$sock"); done < "$T/guests"
RUNDIR=$(dirname "${SOCKS[0]}")
trap 'cleanup; rm -rf "$RUNDIR"' EXIT
sleep 3

qmp() { # socket command [arguments-json]
	python3 - "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
def call(cmd, args=None):
    f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r: return r
        if "error" in r: sys.exit("QMP error: %s" % r)
json.loads(f.readline()); call("qmp_capabilities")
call(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
EOF
}

for s in "${SOCKS[@]}"; do qmp "$s" stop; done
"$SIM" trace record --qemu --pid "${PIDS[0]}" --pid "${PIDS[1]}" --count 1 --no-salt -o "$T/live.sptrace"
for i in 0 1; do
	qmp "${SOCKS[i]}" dump-guest-memory "{\"paging\": false, \"protocol\": \"file:$T/g$i.core\"}"
done
for s in "${SOCKS[@]}"; do qmp "$s" cont; done
"$SIM" trace info "$T/live.sptrace" | tail -3
"$SIM" trace export "$T/live.sptrace" --csv "$T/live.csv"

# recorded: duplicates among non-zero pages = non-zero pages - distinct non-zero fingerprints
read -r rec_nz rec_dup < <(awk -F, 'NR > 1 && $6 == 0 { n++; if (!seen[$5]++) d++ } END { print n, n - d }' "$T/live.csv")
# independent: hash every page of the dumps' PT_LOAD segments
# (RAM only, as the recorder: guest-physical addresses below the 256 MiB of RAM;
# the BIOS ROM that QEMU also dumps at 0xfffc0000 is not guest RAM)
read -r ind_nz ind_dup < <(python3 - "$T/g0.core" "$T/g1.core" <<'EOF'
import hashlib, struct, sys
seen, n, zero, ram = set(), 0, bytes(4096), 256 << 20
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        h = f.read(64); phoff, = struct.unpack_from("<Q", h, 32); phnum, = struct.unpack_from("<H", h, 56)
        f.seek(phoff); ph = f.read(56 * phnum)
        for i in range(phnum):
            typ, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", ph, 56 * i)
            if typ != 1 or paddr >= ram: continue
            f.seek(off)
            first = (paddr + 4095) // 4096 * 4096
            f.seek(off + first - paddr)
            for _ in range((paddr + filesz - first) // 4096):
                p = f.read(4096)
                if p == zero: continue
                n += 1; seen.add(hashlib.blake2b(p, digest_size=16).digest())
print(n, n - len(seen))
EOF
)
# and QEMU's real dumps through `sim trace import` give the same count (RAM pages only)
"$SIM" trace import --format qemu-elf --no-salt --guest guest0 "$T/g0.core" --guest guest1 "$T/g1.core" \
	-o "$T/imported.sptrace"
"$SIM" trace export "$T/imported.sptrace" --csv "$T/imported.csv"
read -r imp_nz imp_dup < <(awk -F, 'NR > 1 && $6 == 0 && $4 < 65536 { n++; if (!seen[$5]++) d++ } END { print n, n - d }' "$T/imported.csv")
echo "imported:    $imp_nz non-zero pages, $imp_dup duplicates"
[ "$imp_nz" -eq "$ind_nz" ] && [ "$imp_dup" -eq "$ind_dup" ] || { echo "FAIL: import differs from the independent count"; exit 1; }
echo "recorded:    $rec_nz non-zero pages, $rec_dup duplicates"
echo "independent: $ind_nz non-zero pages, $ind_dup duplicates"
awk -v a="$rec_dup" -v b="$ind_dup" 'BEGIN { d = a - b; if (d < 0) d = -d;
	printf "difference %.3f%%\n", 100 * d / b; exit !(b > 1000 && d <= 0.005 * b) }'
