#!/usr/bin/env bash
# containers.sh: Pharos Node's container images, built and run with podman configured for the
# project alone.
#
#   scripts/containers.sh podman ARGS...   podman with the project's private configuration
#   scripts/containers.sh env              print that configuration's export lines, for eval
#   scripts/containers.sh base 25|27|29    build or reuse the Erlang base image localhost/pharos/erlang:REL
#   scripts/containers.sh build [REL...]   build localhost/pharos/pharos-node:dev (from the working
#                                          tree) and localhost/pharos/brain:otpREL (default: 25)
#   scripts/containers.sh sizes            the project's images and their sizes
#   scripts/containers.sh clean            remove the test suite's containers, volumes and namespaces
#
# Podman as Debian packages it runs here as root with the runc runtime and the cgroupfs cgroup
# manager (crun fails on this kernel's cgroup layout), and with ulimits no higher than the host's
# (runc cannot raise them). Its whole configuration lives under $CACHE/containers:
# containers.conf, storage.conf and registries.conf, named by CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF, put the image store, the run root,
# runc's state, locks, events and volumes there; the machine's /etc/containers is never changed,
# and its containers.conf, storage.conf and registries.conf are not read. No registry is searched and nothing is pulled: the pharos-node image is
# FROM scratch, and the Brain's base is a Debian root filesystem made by debootstrap, cached as
# a tarball (160 MB) and imported once: half a minute on an idle machine, 2 to 4 min under load.
# The one file podman writes outside $CACHE is its blob-info cache (/var/lib/containers/cache,
# which containers/image always uses as root).
#
# OTP 25 is Debian bookworm's erlang-nox; OTP 27 and 29 are the builds scripts/otp.sh makes on
# this (bookworm) machine, copied into an image over the Debian one (containers/erlang).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${PHAROS_OTP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pharos}"
C="$CACHE/containers"
PREFIX=localhost/pharos
SUITE=bookworm
MIRROR="${PHAROS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Changing how the root filesystem is made changes this, which rebuilds the cached tarball.
RECIPE="$SUITE-minbase-erlang-nox-1"
# RLIMIT_NPROC of the containers: conmon runs them under a lower limit than the host's, and runc
# cannot raise it (no CAP_SYS_RESOURCE here).
NPROC=4096

log() { echo "containers.sh: $*" >&2; }
die() { echo "containers.sh: error: $*" >&2; exit 1; }

# write_if_changed FILE: stdin becomes FILE, replaced atomically, only if it differs.
write_if_changed() {
  local new; new=$(cat)
  [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 0
  printf '%s\n' "$new" > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"
}

configure() {
  command -v podman >/dev/null || die "podman is not installed (scripts/test-deps.sh installs it)"
  mkdir -p "$C"/{bin,storage,run,tmp,runc,networks,rootfs}
  local runc; runc=$(command -v runc) || die "runc is not installed (scripts/test-deps.sh installs it)"
  # runc keeps its state under $C/runc: podman's --runtime-flag would not reach the runc that
  # conmon calls when a container exits, so the runtime is this wrapper.
  write_if_changed "$C/bin/pharos-runc" <<EOF
#!/bin/sh
# Written by scripts/containers.sh: runc with its state under the project's cache.
exec $runc --root '$C/runc' "\$@"
EOF
  chmod +x "$C/bin/pharos-runc"
  local nofile; nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  local nproc; nproc=$(ulimit -Hu)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt $NPROC ]; then nproc=$NPROC; fi
  write_if_changed "$C/containers.conf" <<EOF
# Written by scripts/containers.sh: podman's configuration for Pharos Node alone.
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
runtime = "pharos-runc"
runtime_supports_json = ["pharos-runc"]
runtime_supports_nocgroups = []
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$C/events.log"
tmp_dir = "$C/tmp"
static_dir = "$C/storage/libpod"
volume_path = "$C/storage/volumes"
lock_type = "file"
pull_policy = "never"

[engine.runtimes]
pharos-runc = ["$C/bin/pharos-runc"]

[network]
network_backend = "cni"
network_config_dir = "$C/networks"
EOF
  write_if_changed "$C/storage.conf" <<EOF
# Written by scripts/containers.sh.
[storage]
driver = "overlay"
graphroot = "$C/storage"
runroot = "$C/run"
EOF
  write_if_changed "$C/registries.conf" <<EOF
# Written by scripts/containers.sh: no registry is searched for a short name.
unqualified-search-registries = []
short-name-mode = "enforcing"
EOF
  export CONTAINERS_CONF="$C/containers.conf" CONTAINERS_STORAGE_CONF="$C/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$C/registries.conf"
}

pod() { podman "$@"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# rootfs_tarball: make or reuse $C/rootfs/$RECIPE.tar, the Debian root filesystem with erlang-nox.
rootfs_tarball() {
  local tar="$C/rootfs/$RECIPE.tar"
  if [ -f "$tar" ]; then echo "$tar"; return; fi
  command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/test-deps.sh installs it)"
  local work; work=$(mktemp -d "$C/rootfs/build.XXXXXX")
  # debootstrap mounts /proc and /sys in the target; a failed run can leave them mounted.
  trap "for m in proc sys dev/pts dev; do mountpoint -q '$work/root/'\$m && umount -l '$work/root/'\$m; done; rm -rf '$work'" EXIT
  log "debootstrap --variant=minbase --include=erlang-nox $SUITE from $MIRROR (1 to 4 min)"
  local start=$SECONDS
  as_root debootstrap --variant=minbase --include=erlang-nox "$SUITE" "$work/root" "$MIRROR" >"$work/log" 2>&1 \
    || { tail -n 30 "$work/log" >&2; die "debootstrap failed"; }
  # What an image needs not keep: downloaded packages, package lists, the host's resolver and name.
  rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/*
  : > "$work/root/etc/resolv.conf"
  echo localhost > "$work/root/etc/hostname"
  tar --numeric-owner -C "$work/root" -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
  log "root filesystem made in $((SECONDS - start)) s: $tar ($(du -sh "$tar" | cut -f1))"
  echo "$tar"
}

image_label() { pod image inspect --format "{{index .Labels \"$2\"}}" "$1" 2>/dev/null || true; }

base() {
  local rel=$1 tag="$PREFIX/erlang:$1"
  case "$rel" in
    25)
      if [ "$(image_label "$tag" pharos.base.recipe)" = "$RECIPE" ]; then return; fi
      local tar; tar=$(rootfs_tarball)
      log "importing $tar as $tag"
      pod import --quiet --change "LABEL pharos.base.recipe=$RECIPE" --change 'CMD ["/bin/bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tar" "$tag" >/dev/null
      ;;
    27|29)
      base 25
      local root; root=$(scripts/otp.sh root "$rel")
      [ -x "$root/bin/erl" ] || scripts/otp.sh install "$rel"
      # The build's stamp holds nothing; its OTP_VERSION says which build the image carries.
      local version; version=$(cat "$root"/lib/erlang/releases/"$rel"/OTP_VERSION)
      if [ "$(image_label "$tag" pharos.otp.version)" = "$version" ] && \
         [ "$(image_label "$tag" pharos.base.recipe)" = "$RECIPE" ]; then return; fi
      log "building $tag from the cached OTP $version ($root)"
      pod build --quiet --format docker --pull=never --network=none -f "$PWD/containers/erlang/Containerfile" \
        --build-arg BASE_IMAGE="$PREFIX/erlang:25" --build-arg OTP_PREFIX="$root" --build-arg OTP_RELEASE="$rel" \
        --label pharos.otp.version="$version" -t "$tag" "$root" >/dev/null
      ;;
    *) die "unknown OTP release '$rel' (want 25, 27 or 29)" ;;
  esac
}

build() {
  local rels=("$@")
  [ ${#rels[@]} -gt 0 ] || rels=(25)
  local start=$SECONDS
  mkdir -p _build/containers
  log "building pharos-node (CGO_ENABLED=0) and $PREFIX/pharos-node:dev"
  CGO_ENABLED=0 "${GO:-go}" build -trimpath -ldflags="-s -w" -o _build/containers/pharos-node ./cmd/pharos-node
  pod build --quiet --format docker --pull=never --network=none --target prebuilt \
    -f containers/pharos-node/Containerfile -t "$PREFIX/pharos-node:dev" . >/dev/null
  for rel in "${rels[@]}"; do
    base "$rel"
    log "building $PREFIX/brain:otp$rel"
    pod build --quiet --format docker --pull=never --network=none --build-arg ERLANG_IMAGE="$PREFIX/erlang:$rel" \
      -f containers/brain/Containerfile -t "$PREFIX/brain:otp$rel" . >/dev/null
  done
  pod image prune --force >/dev/null
  log "images ready in $((SECONDS - start)) s"
}

sizes() { pod images --filter "reference=$PREFIX/*" --format '{{.Repository}}:{{.Tag}} {{.Size}}'; }

clean() {
  pod ps --all --quiet --filter label=pharos.test.owner | xargs -r podman rm --force --volumes --time 0 >/dev/null
  pod volume ls --quiet --filter label=pharos.test.owner | xargs -r podman volume rm --force >/dev/null
  ip netns list | awk '/^pharos-ct-/ {print $1}' | xargs -r -n1 ip netns delete
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  podman) configure; exec podman "$@" ;;
  env) configure; printf 'export %s=%q\n' CONTAINERS_CONF "$CONTAINERS_CONF" CONTAINERS_STORAGE_CONF \
    "$CONTAINERS_STORAGE_CONF" CONTAINERS_REGISTRIES_CONF "$CONTAINERS_REGISTRIES_CONF"
    ;;
  base|build)
    configure
    exec 9>"$C/build.lock"
    flock 9
    "$cmd" "$@" ;;
  sizes) configure; sizes ;;
  clean) configure; clean ;;
  *) die "usage: $0 podman ARGS... | env | base 25|27|29 | build [REL...] | sizes | clean" ;;
esac
