#!/bin/sh
# kv_server over TLS and mutual TLS, met by clients nobody here wrote:
# openssl s_client (TLS 1.3, ALPN zcrpc/1, the certificate) and the Python
# ssl client of wire_tls.py.  Certificates are made here and deleted.
#   run_wire_tls.sh KV_SERVER WIRE_TLS_PY PYTHON CERTS_SH
set -eu
server=$1
script=$2
python=$3
certs_sh=$4
dir=$(mktemp -d)
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
mkdir "$dir/certs"
sh "$certs_sh" "$dir/certs"
c=$dir/certs

# start NAME ARGS...: a server in the background, its port in $port.
start() {
	name=$1
	shift
	"$server" -p 0 "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
	pids="$pids $!"
	for _ in $(seq 100); do
		grep -q '^listening on' "$dir/$name.out" 2>/dev/null && break
		sleep 0.05
	done
	port=$(sed -n 's/^listening on //p' "$dir/$name.out")
	[ -n "$port" ] || { echo "$name did not start"; cat "$dir/$name.err"; exit 1; }
}
start tls --cert "$c/server.pem" --key "$c/server.key"
tls=$port
start mtls --cert "$c/server.pem" --key "$c/server.key" --ca "$c/ca.pem"
mtls=$port
start plain
plain=$port

openssl s_client -connect "127.0.0.1:$tls" -alpn zcrpc/1 -servername localhost \
	-CAfile "$c/ca.pem" -verify_return_error </dev/null >"$dir/s_client" 2>&1
grep -q 'TLSv1.3' "$dir/s_client" || { cat "$dir/s_client"; exit 1; }
grep -q 'ALPN protocol: zcrpc/1' "$dir/s_client" || { cat "$dir/s_client"; exit 1; }
grep -q 'subject=CN = localhost' "$dir/s_client" || { cat "$dir/s_client"; exit 1; }
grep -q 'Verify return code: 0 (ok)' "$dir/s_client" || { cat "$dir/s_client"; exit 1; }
echo "openssl s_client: TLS 1.3, ALPN zcrpc/1, certificate CN=localhost verified"

PYTHONPATH=$(dirname "$script") "$python" "$script" "$c" "$tls" "$mtls" "$plain"
# Each refusal left its reason in the server's log.
grep -q 'peer did not return a certificate' "$dir/mtls.err"
grep -q 'unsupported protocol' "$dir/tls.err"
grep -q 'wrong version number' "$dir/tls.err"
cat "$dir/tls.err" "$dir/mtls.err"
