#!/bin/sh
# check_deps.sh LIB.so PROGRAM...: the C client library and the programs
# built on it must not link the server's dependencies. A device program that
# uses libsluice-client needs libuv, OpenSSL and jansson; libav*, SQLite,
# curl, yaml, JWT, http-parser and wslay belong to the server only. Checks
# the full dynamic closure (ldd) of each file, that the shared library has
# its SONAME and no undefined sluice symbol, and runs the first program
# (the shared-library smoke test). Run by ctest as client_deps_test.
set -u
fail=0
forbidden='libavformat|libavcodec|libavutil|libswresample|libswscale|libsqlite3|libcurl|libyaml|libjwt|libhttp_parser|libwslay|libcrypt\.so|libhiredis'
lib=$1
shift
for f in "$lib" "$@"; do
    deps=$(ldd "$f") || { echo "FAIL: ldd $f"; fail=1; continue; }
    bad=$(printf '%s\n' "$deps" | grep -E "$forbidden")
    if [ -n "$bad" ]; then
        echo "FAIL: $f links server libraries:"
        printf '%s\n' "$bad"
        fail=1
    else
        echo "ok: $f links none of the server's libraries"
    fi
done
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != "libsluice-client.so.1" ]; then
    echo "FAIL: $lib has SONAME '$soname', expected libsluice-client.so.1"
    fail=1
fi
undef=$(nm -D --undefined-only "$lib" | grep -E ' sl_' || true)
if [ -n "$undef" ]; then
    echo "FAIL: $lib leaves sluice symbols undefined:"
    echo "$undef"
    fail=1
fi
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v -E '^(sl_client_|sl_strerror$|_init$|_fini$)' || true)
if [ -n "$exported" ]; then
    echo "FAIL: $lib exports more than the client API:"
    echo "$exported"
    fail=1
fi
if ! "$1"; then
    echo "FAIL: $1 did not run"
    fail=1
fi
exit $fail
