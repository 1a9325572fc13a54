#!/bin/bash
# The Debian package (issue 11): `cpack -G DEB` from the build, unpacked in a
# scratch directory (the files in their places), then installed and removed
# with dpkg in a scratch root (dpkg --root): the commands run, the
# configuration is a conffile kept on remove and deleted on purge.  Skipped
# without dpkg or cpack.
set -euo pipefail
BUILD=$1
command -v dpkg >/dev/null && command -v dpkg-deb >/dev/null || { echo "skip: no dpkg"; exit 77; }
command -v cpack >/dev/null || { echo "skip: no cpack"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$T/out" > "$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; fail "cpack"; }
DEB=$(ls "$T"/out/samepage_*.deb)
dpkg-deb -I "$DEB" control | grep -q "^Depends:.*libgsl" || fail "no dependency on GSL"
dpkg-deb -x "$DEB" "$T/x"
for f in usr/bin/sim usr/sbin/samepaged usr/lib/systemd/system/samepaged.service etc/samepaged.conf \
	usr/share/man/man1/sim.1 usr/share/man/man8/samepaged.8 usr/share/man/man5/samepaged.conf.5; do
	[ -e "$T/x/$f" ] || fail "$f missing from the package"
done
grep -qx "ExecStart=/usr/sbin/samepaged --foreground --config /etc/samepaged.conf" "$T/x/usr/lib/systemd/system/samepaged.service" ||
	fail "the unit does not start /usr/sbin/samepaged"
grep -qx "Conflicts=ksmtuned.service" "$T/x/usr/lib/systemd/system/samepaged.service" || fail "no Conflicts=ksmtuned"
# The shipped configuration is all comments: it loads as the defaults.
"$T/x/usr/sbin/samepaged" --config "$T/x/etc/samepaged.conf" --check-config | grep -q "ok (policy ksmtuned" ||
	fail "the shipped configuration does not load"
if command -v man >/dev/null; then
	MANWIDTH=80 man -l "$T/x/usr/share/man/man8/samepaged.8" 2>/dev/null | grep -q "SAMEPAGE_ON_EXIT" || fail "samepaged(8) does not render"
fi

# dpkg in a scratch root; maintainer scripts run outside it, they see DPKG_ROOT and do nothing.
R=$T/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
D=(dpkg --root="$R" --force-depends --force-script-chrootless --force-not-root --log=/dev/null)
"${D[@]}" -i "$DEB" > "$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -i"; }
"${D[@]}" -s samepage | grep -q "^Status: install ok installed" || fail "not installed"
"${D[@]}" -s samepage | grep -q "/etc/samepaged.conf" || fail "/etc/samepaged.conf is not a conffile"
"$R/usr/sbin/samepaged" --help | grep -q -- "--print-effective" || fail "installed samepaged does not run"
"$R/usr/bin/sim" --help | grep -q "compare" || fail "installed sim does not run"
"${D[@]}" -r samepage > "$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -r"; }
[ ! -e "$R/usr/sbin/samepaged" ] || fail "samepaged left after remove"
[ -e "$R/etc/samepaged.conf" ] || fail "the conffile went with remove"
"${D[@]}" -P samepage > "$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -P"; }
[ ! -e "$R/etc/samepaged.conf" ] || fail "the conffile survived purge"
echo ok
