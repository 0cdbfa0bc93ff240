#!/usr/bin/env bash
# Build the Debian package from a configured build (cpack -G DEB), install
# it with apt-get as a user would, build rpc/examples/hello.c against the
# system copy with pkg-config and with find_package, run it, and remove
# the package again.  Root only (CI); prints why and fails otherwise.
# usage: tests/consumer/deb.sh BUILD_DIR
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "deb.sh: needs root (apt-get install)" >&2; exit 1; }
if grep -q "ok installed" <<<"$(dpkg-query -W -f='${Status}' zcrpc 2>/dev/null || true)"; then
  echo "deb.sh: a zcrpc package is already installed; not touching it" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/zcrpc-deb.XXXXXX)
cleanup() {
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq zcrpc >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "deb: FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/zcrpc_*.deb)
# Built with TLS, the package pulls OpenSSL: the runtime library through
# shlibdeps, libssl-dev for pkg-config --static and find_dependency.
if grep -q '^ZC_WITH_TLS:BOOL=ON$' "$build/CMakeCache.txt"; then
  depends=$(dpkg-deb -f "$deb" Depends)
  case $depends in *libssl3*libssl-dev*|*libssl-dev*libssl3*) ;;
    *) die "the package does not depend on OpenSSL: $depends" ;; esac
fi
echo "--- deb: apt-get install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
# shellcheck disable=SC2046
cc -o "$tmp/hello" "$src/rpc/examples/hello.c" $(pkg-config --cflags --libs zcrpc)
grep -Eq 'libzcrpc.so.0 => /(usr/)?lib/' <<<"$(ldd "$tmp/hello")" ||
  die "not the system libzcrpc"
timeout 30 "$tmp/hello" || die "hello (pkg-config) exited $?"
cmake -S "$src/tests/consumer" -B "$tmp/b" -DZCRPC_CONSUME=package >/dev/null
cmake --build "$tmp/b" >/dev/null
timeout 30 "$tmp/b/hello" || die "hello (find_package) exited $?"
timeout 30 zcperf -h >/dev/null || die "zcperf -h"
echo "--- deb: passed"
