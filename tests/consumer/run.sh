#!/usr/bin/env bash
# Install zcrpc from a configured build into a temporary prefix and use it
# the ways an application would, running rpc/examples/hello.c each time:
#   1. the public headers alone: C17 -pedantic, C++11/14/17/20
#   2. find_package(zcrpc CONFIG): zcrpc::zcrpc (shared), zcrpc::static
#   3. pkg-config: shared, and a fully static program from --static alone
#   4. add_subdirectory() and FetchContent: library only, nothing forced
#      into the parent's cache, no tests, prefixed targets
# usage: tests/consumer/run.sh BUILD_DIR   (CC and CXX are honoured)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
cc=${CC:-cc}
cxx=${CXX:-g++}
tmp=$(mktemp -d /tmp/zcrpc-consumer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
step() { printf -- '--- consumer: %s\n' "$*"; }
die() { echo "consumer: FAIL: $*" >&2; exit 1; }
# Every program runs under a liveness guard.
run() { timeout 30 "$@" || die "$* exited $?"; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name zcrpc.pc)")/..
[ -e "$libdir/libzcrpc.so.0" ] || die "no libzcrpc.so.0 (soname)"
[ -e "$libdir/libzcrpc.a" ] || die "no libzcrpc.a"
[ -x "$prefix/bin/zcperf" ] || die "no bin/zcperf"
[ -s "$prefix/share/man/man3/zc_rpc_call.3" ] || die "no man page zc_rpc_call(3)"
# The archive exports the public API only.
if nm -g --defined-only "$libdir/libzcrpc.a" | grep -v ' zc_' | grep ' [TDBR] '; then
  die "libzcrpc.a exports symbols outside zc_"
fi

step "headers: C17 -pedantic -Werror, C++11..20"
for h in alloc stack tls rpc version zcrpc; do
  echo "#include <zcrpc/$h.h>" > "$tmp/h.c"
  "$cc" -std=c17 -pedantic -Werror -Wall -Wextra -I"$prefix/include" \
        -fsyntax-only "$tmp/h.c" || die "zcrpc/$h.h as C17"
  for std in c++11 c++14 c++17 c++20; do
    "$cxx" -std=$std -x c++ -pedantic -Werror -Wall -Wextra \
           -I"$prefix/include" -fsyntax-only "$tmp/h.c" ||
      die "zcrpc/$h.h as $std"
  done
done

cmake_consumer() {	# name, cmake args...
  local name=$1; shift
  cmake -S "$src/tests/consumer" -B "$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; die "configure $name"; }
  cmake --build "$tmp/$name" -j "$(nproc)" >>"$tmp/$name.log" 2>&1 ||
    { cat "$tmp/$name.log"; die "build $name"; }
}

step "find_package(zcrpc CONFIG): zcrpc::zcrpc (shared)"
cmake_consumer pkg -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DZCRPC_CONSUME=package
# (grep reads a string, not a pipe: grep -q ending a pipe early kills the
# writer with SIGPIPE, which pipefail reports as a failure.)
grep -q "libzcrpc.so.0 => $prefix" <<<"$(ldd "$tmp/pkg/hello")" ||
  die "find_package: hello does not use the installed libzcrpc.so.0"
run "$tmp/pkg/hello"
run "$tmp/pkg/hello" "[::1]:0"
run "$tmp/pkg/hello" "unix:$tmp/hello.sock"

step "find_package(zcrpc CONFIG): zcrpc::static"
cmake_consumer pkg-static -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DZCRPC_CONSUME=package-static
if grep -q libzcrpc <<<"$(ldd "$tmp/pkg-static/hello")"; then
  die "zcrpc::static linked the .so"
fi
run "$tmp/pkg-static/hello"

export PKG_CONFIG_PATH=$libdir/pkgconfig
step "pkg-config zcrpc (shared)"
# shellcheck disable=SC2046
"$cc" -o "$tmp/hello-pc" "$src/rpc/examples/hello.c" \
      $(pkg-config --cflags --libs zcrpc) -Wl,-rpath,"$libdir"
run "$tmp/hello-pc"

step "pkg-config --static zcrpc (a static program)"
# shellcheck disable=SC2046
"$cc" -static -o "$tmp/hello-pc-static" "$src/rpc/examples/hello.c" \
      $(pkg-config --static --cflags --libs zcrpc) 2>"$tmp/static.log" ||
  { cat "$tmp/static.log"; die "static link from pkg-config --static"; }
deps=$(ldd "$tmp/hello-pc-static" 2>&1 || true)
case $deps in *"not a dynamic executable"*) ;;
  *) die "pkg-config --static: the program is not static: $deps" ;; esac
run "$tmp/hello-pc-static"

step "a server process (static) and a client process (shared), by name"
sock=unix:$tmp/server.sock
timeout 60 "$tmp/hello-pc-static" -s "$sock" >"$tmp/server.out" &
server=$!
for _ in $(seq 100); do	# up to 10 s for the server to listen
  grep -q '^hello: serving' "$tmp/server.out" && break
  sleep 0.1
done
grep -q '^hello: serving' "$tmp/server.out" || die "server did not start"
run "$tmp/hello-pc" -c "$sock"
kill -TERM "$server"
wait "$server" || die "server exited $?"
[ ! -e "$tmp/server.sock" ] || die "server left its socket file"

for how in subdirectory fetchcontent; do
  step "$how: library only"
  # The parent chose no build type: zcrpc must not choose one for it.
  cmake_consumer "$how" -DZCRPC_CONSUME="$how"
  cache=$tmp/$how/CMakeCache.txt
  grep -q '^CMAKE_BUILD_TYPE:STRING=$' "$cache" ||
    die "$how: zcrpc changed the parent's CMAKE_BUILD_TYPE"
  tests=$(ctest --test-dir "$tmp/$how" -N | sed -n 's/^Total Tests: //p')
  [ "${tests:-0}" = 0 ] || die "$how: zcrpc added $tests tests to the parent"
  targets=$(cmake --build "$tmp/$how" --target help | sed -n 's/^\.\.\. //p' |
            grep -v -e '^zcrpc' -e '^kv_server' -e '^all' -e '^clean$' \
                    -e '^depend$' -e '^edit_cache$' -e '^rebuild_cache$' \
                    -e '^install' -e '^list_install_components$' \
                    -e '\.[ois]$' -e '^package' || true)
  [ -z "$targets" ] || die "$how: unprefixed targets: $targets"
  run "$tmp/$how/hello"
done
step "all passed"
