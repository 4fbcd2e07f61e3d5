#!/usr/bin/env bash
# package-test.sh: part of `make test`. Builds the .deb (scripts/package.sh), installs it with
# dpkg, checks that /usr/bin/pharos-node answers --version and config check, that the user,
# the conffile and the unit are in place, verifies the unit with systemd-analyze where it
# exists, then purges the package; the purge runs on failure too. Needs root (sudo otherwise).
# It refuses to run where a pharos-node package is already installed, which it would replace.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if dpkg -s pharos-node >/dev/null 2>&1; then
  echo "package-test.sh: a pharos-node package is installed here already; not touching it" >&2; exit 1
fi
DEB=$(scripts/package.sh | tail -n 1)
echo "package-test.sh: built $DEB ($(du -h "$DEB" | cut -f1))"
purge() { as_root dpkg --purge pharos-node >/dev/null 2>&1 || true; }
trap purge EXIT
as_root dpkg -i "$DEB" >/dev/null
/usr/bin/pharos-node --version | tee /dev/stderr | grep -q "^pharos-node $(dpkg-deb -f "$DEB" Version)\$"
file_mode() { stat -c '%a %U:%G' "$1"; }
[ "$(file_mode /etc/pharos-node/pharos.yaml)" = "640 root:pharos-node" ] || { echo "conffile: $(file_mode /etc/pharos-node/pharos.yaml)" >&2; exit 1; }
dpkg-query -W -f='${Conffiles}\n' pharos-node | grep -q /etc/pharos-node/pharos.yaml
getent passwd pharos-node >/dev/null
# config check as the service's user: the installed file is valid once the cookie is there.
printf 'package-test-cookie\n' | as_root install -m 0400 -o pharos-node -g pharos-node /dev/stdin /etc/pharos-node/cookie
as_root mkdir -p /var/lib/pharos-node && as_root chown pharos-node:pharos-node /var/lib/pharos-node
out=$(as_root setpriv --reuid=pharos-node --regid=pharos-node --init-groups /usr/bin/pharos-node config check --config /etc/pharos-node/pharos.yaml 2>&1) || {
  echo "$out" >&2; echo "package-test.sh: config check of the installed configuration failed" >&2; exit 1; }
if echo "$out" | grep -q package-test-cookie; then echo "package-test.sh: the cookie was printed" >&2; exit 1; fi
if command -v systemd-analyze >/dev/null; then
  # Offline verification: the unit's syntax, its ExecStart binary, its directives.
  as_root systemd-analyze verify /lib/systemd/system/pharos-node.service
  echo "package-test.sh: systemd-analyze verify: ok"
else
  echo "package-test.sh: no systemd-analyze here; the unit was not verified"
fi
purge
trap - EXIT
for p in /usr/bin/pharos-node /etc/pharos-node /var/lib/pharos-node /lib/systemd/system/pharos-node.service; do
  [ ! -e "$p" ] || { echo "package-test.sh: $p left after the purge" >&2; exit 1; }
done
! getent passwd pharos-node >/dev/null || { echo "package-test.sh: user pharos-node left after the purge" >&2; exit 1; }
echo "package-test.sh: installed, answered, verified and purged: ok"
