#!/usr/bin/env bash
# version.sh: the version `make build` and `make package` stamp: the git tag (v1.2.3 -> 1.2.3) on
# a tagged commit, else 0.0.0~git<commit date>.<short commit> (a Debian version that sorts
# before any release), with +dirty when the work tree has changes.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then echo "0.0.0~unknown"; exit 0; fi
if tag=$(git describe --tags --exact-match 2>/dev/null) && [[ $tag == v[0-9]* ]]; then
  v=${tag#v}
else
  v="0.0.0~git$(git show -s --format=%cd --date=format:%Y%m%d HEAD).$(git rev-parse --short=12 HEAD)"
fi
git diff --quiet HEAD 2>/dev/null || v="$v+dirty"
echo "$v"
