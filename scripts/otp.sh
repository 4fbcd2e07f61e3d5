#!/usr/bin/env bash
# otp.sh: provision the Erlang/OTP releases Pharos Node is tested against.
#
#   scripts/otp.sh install [25|27|29|all]   install or reuse; prints nothing but progress on stderr
#   scripts/otp.sh root 25|27|29            print the OTP root (the directory holding bin/erl)
#   scripts/otp.sh env 25|27|29             print `export PATH=...` lines for eval
#
# OTP 25 comes from Debian's binary packages (erlang-nox erlang-dev erlang-src rebar3).
# OTP 27 and 29 are built from Debian's own source tarballs (trixie and sid). The deb-src entries live
# only in a private apt configuration under a temporary directory: the system's sources.list is never
# touched, so they cannot change which binary packages apt installs, and they vanish with that directory.
# Each build installs into $PHAROS_OTP_CACHE/otp-<version> (default ${XDG_CACHE_HOME:-~/.cache}/pharos),
# via a .partial directory renamed into place only once `erl` in it answers; a directory without the
# completion stamp is a half-built cache and is rebuilt.
set -euo pipefail

CACHE="${PHAROS_OTP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pharos}"
OTP27_VERSION=27.3.4.1
OTP27_SUITE=trixie
OTP27_SOURCE_VERSION=""          # trixie's current erlang source package
OTP29_VERSION=29.1.1
OTP29_SUITE=sid
OTP29_SOURCE_VERSION="1:29.1.1+dfsg-1"
# The orig tarballs are pinned by checksum. sid's index may already list a newer upload (29.1.2, whose
# tarball the mirror lacks) and no longer 29.1.1; the 29.1.1 tarball is still in Debian's pool, so a
# failed `apt-get source` falls back to fetching it from the pool by name.
OTP27_SHA256=0834643ef1e17886d5e334a39527d8429bcf50613b86d59d4757466f32984b7e
OTP29_SHA256=b711f4e9dff76c51aded2574322a18129033594c5244a3710b2b00d9cb0ff348
DEBIAN_POOL=http://deb.debian.org/debian/pool/main/e/erlang
CONFIGURE_FLAGS=(--without-javac --without-wx --without-odbc --without-debugger --without-observer
  --without-et --without-megaco --without-jinterface --without-common_test)
STAMP=.pharos-complete

log() { echo "otp.sh: $*" >&2; }
die() { echo "otp.sh: error: $*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq >&2; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
}

otp_release_of() { "$1/bin/erl" -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null; }

install_25() {
  apt_install erlang-nox erlang-dev erlang-src rebar3
  local rel; rel=$(otp_release_of /usr) || die "OTP 25 installed but /usr/bin/erl does not run"
  [ "$rel" = 25 ] || die "/usr/bin/erl is OTP $rel, expected 25"
}

version_of() { case "$1" in 27) echo $OTP27_VERSION;; 29) echo $OTP29_VERSION;; *) die "unknown OTP release '$1' (want 25, 27 or 29)";; esac; }

root_of() {
  case "$1" in
    25) echo /usr/lib/erlang ;;
    27|29) echo "$CACHE/otp-$(version_of "$1")" ;;
    *) die "unknown OTP release '$1' (want 25, 27 or 29)" ;;
  esac
}

fetch_source() { # release workdir -> path of the orig tarball
  local rel=$1 work=$2 suite srcver ver sha
  ver=$(version_of "$rel")
  if [ "$rel" = 27 ]; then suite=$OTP27_SUITE; srcver=$OTP27_SOURCE_VERSION; sha=$OTP27_SHA256
  else suite=$OTP29_SUITE; srcver=$OTP29_SOURCE_VERSION; sha=$OTP29_SHA256; fi
  local tarball="erlang_${ver}+dfsg.orig.tar.xz"
  if [ -f "$CACHE/src/$tarball" ] && echo "$sha  $CACHE/src/$tarball" | sha256sum -c --status; then
    echo "$CACHE/src/$tarball"; return
  fi
  local apt="$work/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/dl"
  cat > "$apt/sources.list" <<SRC
deb-src http://deb.debian.org/debian $suite main
SRC
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Get::List-Cleanup=0")
  log "fetching the erlang source list of Debian $suite (private apt config, system sources untouched)"
  as_root apt-get "${opts[@]}" update -qq >&2 || die "apt-get update of the $suite deb-src entry failed"
  local spec=erlang; [ -n "$srcver" ] && spec="erlang=$srcver"
  log "downloading $tarball"
  (cd "$apt/dl" && as_root apt-get "${opts[@]}" source --download-only "$spec" >&2) || log "apt-get source reported an error (the .dsc may 404); checking for the tarball"
  if [ ! -f "$apt/dl/$tarball" ]; then
    log "$tarball is not in the $suite index; fetching it from Debian's pool"
    command -v curl >/dev/null || apt_install curl
    curl -fsSL --retry 3 -o "$apt/dl/$tarball" "$DEBIAN_POOL/$tarball" || die "$tarball did not arrive"
  fi
  echo "$sha  $apt/dl/$tarball" | sha256sum -c --status || die "$tarball does not match its pinned sha256"
  mkdir -p "$CACHE/src"
  mv "$apt/dl/$tarball" "$CACHE/src/$tarball.tmp" && mv "$CACHE/src/$tarball.tmp" "$CACHE/src/$tarball"
  echo "$CACHE/src/$tarball"
}

install_built() {
  local rel=$1 ver root
  ver=$(version_of "$rel"); root=$(root_of "$rel")
  if [ -f "$root/$STAMP" ] && [ "$(otp_release_of "$root")" = "$rel" ]; then
    log "OTP $rel ($ver) cached at $root"; return 0
  fi
  if [ -e "$root" ]; then log "$root is incomplete; rebuilding"; rm -rf "$root"; fi
  apt_install build-essential libssl-dev libncurses-dev perl xz-utils dpkg-dev
  mkdir -p "$CACHE"
  local work; work=$(mktemp -d "$CACHE/build-$rel.XXXXXX")
  trap "rm -rf '$work' '$root.partial'" EXIT
  local tarball; tarball=$(fetch_source "$rel" "$work")
  log "unpacking $tarball"
  tar -xJf "$tarball" -C "$work"
  local src; src=$(find "$work" -maxdepth 1 -type d -name 'otp*' -o -maxdepth 1 -type d -name 'erlang*' | head -n1)
  [ -n "$src" ] && [ -x "$src/configure" ] || die "no configure script in $tarball"
  rm -rf "$root.partial"
  log "building OTP $ver in $src (about 5 minutes on 2 cores)"
  local start=$SECONDS
  (cd "$src" && ./configure --prefix="$root.partial" "${CONFIGURE_FLAGS[@]}" >"$work/configure.log" 2>&1) \
    || { tail -n 30 "$work/configure.log" >&2; die "configure failed"; }
  (cd "$src" && make -j"$(nproc)" >"$work/make.log" 2>&1) || { tail -n 40 "$work/make.log" >&2; die "make failed"; }
  (cd "$src" && make install >"$work/install.log" 2>&1) || { tail -n 40 "$work/install.log" >&2; die "make install failed"; }
  # The install prefix is baked into bin/erl; fix it for the final location before the rename.
  local r; r=$(sed -n 's|^ROOTDIR="\(.*\)"|\1|p' "$root.partial/lib/erlang/bin/erl" | head -n1)
  for f in "$root.partial"/lib/erlang/bin/{erl,start,start_erl} "$root.partial"/lib/erlang/erts-*/bin/{erl,start,start_erl}; do
    [ -f "$f" ] && sed -i "s|$root.partial|$root|g" "$f"
  done
  mv "$root.partial" "$root"
  [ "$(otp_release_of "$root")" = "$rel" ] || { rm -rf "$root"; die "built OTP does not report release $rel"; }
  touch "$root/$STAMP"
  rm -rf "$work"; trap - EXIT
  log "OTP $ver built in $((SECONDS - start)) s at $root"
}

cmd=${1:-install}; what=${2:-all}
case "$cmd" in
  install)
    case "$what" in
      all) install_25; install_built 27; install_built 29 ;;
      25) install_25 ;;
      27|29) install_built "$what" ;;
      *) die "unknown OTP release '$what'" ;;
    esac ;;
  root) root_of "$what" ;;
  env) echo "export PATH=\"$(root_of "$what")/bin:\$PATH\"" ;;
  *) die "usage: $0 install [25|27|29|all] | root REL | env REL" ;;
esac
