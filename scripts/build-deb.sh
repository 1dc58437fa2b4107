#!/usr/bin/env bash
# Builds the Debian packages (debian/) from a copy of this tree: what git
# tracks (committed or not, deleted files left out) plus the generated web
# assets that scripts/web-players.sh put in web/ (the SDK copy and the
# pinned players), so the package build needs no network. dpkg-buildpackage
# runs in OUT/src and writes the .deb files to OUT; this checkout and its
# build trees are left alone. Only what the packages hold is built (no tests):
# debian/rules calls `make install-build` and `make install`.
#
#   scripts/build-deb.sh [OUT]      (default build-deb; prints the .deb paths)
#
# DEB_BUILD_OPTIONS defaults to "nocheck parallel=2".
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/build-deb}" && cd "${1:-$repo/build-deb}" && pwd)
src="$out/src"

bash "$repo/scripts/web-players.sh" >/dev/null
rm -rf "$src" "$out"/*.deb "$out"/*.ddeb "$out"/*.buildinfo "$out"/*.changes
mkdir -p "$src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    xargs -0 cp --parents -t "$src")
(cd "$repo" && cp -R --parents web/lib web/test/lib "$src" 2>/dev/null || true)

export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-"nocheck parallel=2"}
(cd "$src" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) || {
    tail -40 "$out/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
    exit 1
}
ls "$out"/*.deb
