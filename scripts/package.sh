#!/usr/bin/env bash
# package.sh: `make package`. A static pharos-node (CGO_ENABLED=0, stamped with version, commit
# and build date) and a .deb built with dpkg-deb: /usr/bin/pharos-node, the systemd unit, the
# conffile /etc/pharos-node/pharos.yaml, the license texts in /usr/share/doc/pharos-node/copyright.
# dpkg-deb rather than nfpm: it is on every Debian machine that builds this, and needs nothing
# downloaded. Output: _build/package/pharos-node_<version>_<arch>.deb (path printed last).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VERSION=$(scripts/version.sh)
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ARCH=$(dpkg --print-architecture)
OUT=_build/package
ROOT=$OUT/root
rm -rf "$ROOT"
mkdir -p "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/pharos-node" "$ROOT/usr/share/doc/pharos-node"

CGO_ENABLED=0 "$GO" build -trimpath \
  -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.buildDate=$DATE" \
  -o "$ROOT/usr/bin/pharos-node" ./cmd/pharos-node
if ldd "$ROOT/usr/bin/pharos-node" >/dev/null 2>&1; then
  echo "package.sh: pharos-node is dynamically linked" >&2; exit 1
fi
install -m 0644 packaging/pharos-node.service "$ROOT/lib/systemd/system/pharos-node.service"
install -m 0640 packaging/pharos.yaml "$ROOT/etc/pharos-node/pharos.yaml"
install -m 0644 README.md "$ROOT/usr/share/doc/pharos-node/README.md"
install -m 0644 docs/configuration.md "$ROOT/usr/share/doc/pharos-node/configuration.md"
"$GO" run ./scripts/licenses -texts > "$ROOT/usr/share/doc/pharos-node/copyright"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$ROOT/DEBIAN/"
echo /etc/pharos-node/pharos.yaml > "$ROOT/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: pharos-node
Version: $VERSION
Architecture: $ARCH
Maintainer: Pharos Node <pharos-node@localhost>
Installed-Size: $SIZE
Depends: adduser | passwd
Section: net
Priority: optional
Homepage: https://github.com/pharos-node/pharos-node
Description: telemetry to a BEAM Brain over Erlang distribution
 pharos-node joins an Erlang cluster as a hidden node and delivers metrics and
 alerts (HTTP JSON, StatsD, Prometheus scraping, host metrics) to a registered
 process on a BEAM node, buffering in RAM and on disk while the Brain is away.
CONTROL
DEB="$OUT/pharos-node_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
