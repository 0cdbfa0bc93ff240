#!/bin/sh
# The kv example end to end: start kv_server on a free port, run kv_client
# against it, compare the output, stop the server with SIGTERM (drain).
set -eu
server=$1
client=$2
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

"$server" -p 0 >"$dir/server.out" &
pid=$!
for _ in $(seq 100); do
	grep -q '^listening on' "$dir/server.out" 2>/dev/null && break
	sleep 0.05
done
port=$(sed -n 's/^listening on //p' "$dir/server.out")
[ -n "$port" ] || { echo "server did not start"; exit 1; }

"$client" -p "$port" put apple red get apple get pear put apple green \
	get apple put pear '' get pear >"$dir/client.out"
cat >"$dir/want" <<'OUT'
ok
apple = red
pear: not found
ok
apple = green
ok
pear = 
OUT
diff -u "$dir/want" "$dir/client.out"
kill -TERM "$pid"
wait "$pid"
echo "kv example: ok"
