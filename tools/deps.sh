#!/usr/bin/env bash
# Make sure the Debian packages a target needs are installed.
#   tools/deps.sh build   - compiler, cmake, liburing, Criterion, tcmalloc,
#                           OpenSSL 3 (library and the openssl command the
#                           TLS tests make certificates with), iproute2
#                           and nftables
#   tools/deps.sh ci      - build + clang (fuzzer, sanitizer runtimes), g++
#                           (the C++ header check), dpkg-dev (cpack's .deb)
#   tools/deps.sh peers   - build + iperf3, sockperf, gnuplot, libzmq, gRPC,
#                           Cap'n Proto
# As root, missing packages are installed with apt-get; otherwise the exact
# apt-get line is printed and the script fails.
set -euo pipefail

# iproute2 and nftables: the test hosts of tests/hosts (bed.sh).
build=(build-essential cmake pkg-config liburing-dev libcriterion-dev
       libgoogle-perftools-dev libssl-dev openssl iproute2 nftables)
case "${1:-build}" in
  build) want=("${build[@]}") ;;
  ci)    want=("${build[@]}" clang libclang-rt-14-dev python3 g++ dpkg-dev) ;;
  peers) want=("${build[@]}" iperf3 sockperf gnuplot-nox libzmq3-dev
               libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
               protobuf-compiler g++ libcapnp-dev capnproto) ;;
  *) echo "usage: $0 build|ci|peers" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "zcrpc: missing Debian packages; run as root:" >&2
  echo "  apt-get update && $line" >&2
  exit 1
fi
echo "zcrpc: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
