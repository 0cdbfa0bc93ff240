#!/bin/sh
# Make throwaway certificates for the TLS tests in directory $1 (never
# committed; the tests delete the directory).  EC P-256 keys, fast to make.
#   ca.pem/ca.key         the CA everyone trusts
#   ca2.pem/ca2.key       another CA (the "wrong CA" tests)
#   server.pem/.key       CN=localhost, SAN DNS:localhost, IP:127.0.0.1, by ca
#   expired.pem/.key      the same names, expired yesterday
#   other.pem/.key        by ca2 (CN=localhost as well)
#   client.pem/.key       O=zcrpc, CN=client1, SAN URI:spiffe://zcrpc/client1
#   intruder.pem/.key     CN=intruder, SAN DNS:intruder, by ca
set -eu
cd "$1"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
ca() {
  openssl req -x509 $ec -keyout "$1.key" -out "$1.pem" -days 2 \
    -subj "/CN=$2" 2>/dev/null
}
# leaf <name> <ca> <subject> <san> <days>: one command (OpenSSL 3 -CA).
leaf() {
  openssl req -x509 $ec -keyout "$1.key" -out "$1.pem" -days "$5" \
    -CA "$2.pem" -CAkey "$2.key" -subj "$3" -addext "subjectAltName=$4" \
    -addext basicConstraints=CA:FALSE 2>/dev/null
}
# "openssl req" refuses negative days: the expired one takes two steps.
expired() {
  openssl req -new $ec -keyout expired.key -out expired.csr \
    -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > expired.ext
  openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -days -1 \
    -extfile expired.ext -out expired.pem 2>/dev/null
  rm -f expired.csr expired.ext
}
ca ca zcrpc-test-ca
ca ca2 zcrpc-other-ca
leaf server ca /CN=localhost DNS:localhost,IP:127.0.0.1 2
expired
leaf other ca2 /CN=localhost DNS:localhost,IP:127.0.0.1 2
leaf client ca /O=zcrpc/CN=client1 URI:spiffe://zcrpc/client1 2
leaf intruder ca /CN=intruder DNS:intruder 2
