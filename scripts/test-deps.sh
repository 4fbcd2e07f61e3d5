#!/usr/bin/env bash
# test-deps.sh: Debian packages the tests use besides Erlang (scripts/otp.sh): openssl makes the
# certificates of the TLS distribution tests; prometheus-node-exporter is the real exporter the
# scrape test starts on a loopback port (without it that test fails); gcc and libc6-dev are the C toolchain `go test -race` needs (make test runs the
# packages that start no Ergo node under the race detector). The container suite (test/container,
# scripts/containers.sh) needs podman with the runc runtime (crun fails on this kernel's cgroup
# layout), debootstrap for the Brain's Debian base image, and iproute2 for its network namespaces;
# iproute2 and nftables are what the network-fault suite (test/faults, internal/netfault) builds its
# namespaces, veth pairs and faults with;
# it runs as root, so neither uidmap nor slirp4netns. Installed only when missing, with Debian's
# defaults; the suite changes none of the machine's configuration (podman's is the project's own).
set -euo pipefail
missing=()
for p in openssl prometheus-node-exporter gcc libc6-dev podman runc debootstrap iproute2 nftables; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "test-deps.sh: installing ${missing[*]}" >&2
as_root apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
