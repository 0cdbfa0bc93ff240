#!/bin/sh
# Start kv_server (any zcrpc server serves the built-in echo) and run the
# Python client written from docs/PROTOCOL.md against it.
set -eu
server=$1
script=$2
python=$3
dir=$(mktemp -d)
"$server" -p 0 >"$dir/out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	grep -q '^listening on' "$dir/out" 2>/dev/null && break
	sleep 0.05
done
port=$(sed -n 's/^listening on //p' "$dir/out")
[ -n "$port" ] || { echo "server did not start"; exit 1; }
"$python" "$script" "$port"
kill -TERM "$pid"
wait "$pid"
