#!/usr/bin/env bash
# Puts the browser SDK and the players of the pages into the web root. The
# SDK (clients/web/src, plain ES modules, no build step) is copied to
# lib/sluice/ (git-ignored) every time: /{app}/broadcast.jsp, subscribe.jsp,
# streams.jsp (web/sdk/) and the testbeds (web/testbeds/) import it from
# /lib/sluice/index.js. Then hls.js and mpegts.js,
# pinned by clients/web/players/package-lock.json, installed there with
# `npm ci` (node_modules stays out of the web root) and their dist files
# copied to web/test/lib/ (git-ignored), where web/test/hls.html and flv.html
# load them. Run by `make build`, `make run` and `make install`.
#
# Idempotent and cheap: nothing happens when web/test/lib/ already holds the
# files of the versions in the lockfile. Without npm it says so and leaves
# the pages to show their own error ("hls.js is not installed ..."): the
# server itself does not need them.
#
#   scripts/web-players.sh [WEB_ROOT]     (default: web)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
pkg="$repo/clients/web/players"
web_root=${1:-"$repo/web"}
lib="$web_root/test/lib"
stamp="$lib/.lockfile"

mkdir -p "$web_root/lib/sluice"
# install -C: a file that did not change is not rewritten (a server or a
# `make install` reading the web root meanwhile never sees a half-written file).
install -C -m 0644 "$repo"/clients/web/src/*.js "$web_root/lib/sluice/"

if [ -f "$stamp" ] && cmp -s "$stamp" "$pkg/package-lock.json" &&
   [ -f "$lib/hls.min.js" ] && [ -f "$lib/mpegts.js" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "web-players: npm not found: the test pages (web/test/) will say that their" \
         "player is missing; install npm (scripts/deps.sh build does) and run make build" >&2
    exit 0
fi
(cd "$pkg" && npm ci --no-audit --no-fund --silent)
mkdir -p "$lib"
cp "$pkg/node_modules/hls.js/dist/hls.min.js" "$lib/hls.min.js"
cp "$pkg/node_modules/mpegts.js/dist/mpegts.js" "$lib/mpegts.js"
cp "$pkg/package-lock.json" "$stamp"
echo "web-players: hls.js $(node -p "require('$pkg/node_modules/hls.js/package.json').version" 2>/dev/null || echo '?')," \
     "mpegts.js $(node -p "require('$pkg/node_modules/mpegts.js/package.json').version" 2>/dev/null || echo '?')" \
     "in $lib"
