#!/bin/bash
# Installs the Debian 12 packages samepage needs, if any is missing; with
# --slow also those of the slow live tests (ctest -L slow: QEMU guests).
# Runs apt-get as root (directly, or through sudo when not root).
set -euo pipefail
PKGS=(build-essential cmake pkg-config libgsl-dev libcsv-dev libnuma-dev libcunit1-dev
      libxxhash-dev gnuplot-nox clang python3)
case "${1:-}" in
--slow) PKGS+=(qemu-system-x86 busybox-static cpio) ;;
"") ;;
*) echo "usage: scripts/deps.sh [--slow]" >&2; exit 2 ;;
esac
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
