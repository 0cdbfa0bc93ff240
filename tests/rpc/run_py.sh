#!/bin/sh
# Start kv_server (any zcrpc server serves the built-in echo) and run a
# Python client against it: "$python" "$script" PORT ARGS..., with the
# server's pid in ZC_SERVER_PID.  The server must still be running
# afterwards, and exit cleanly on SIGTERM.
# Usage: run_py.sh KV_SERVER SCRIPT PYTHON [ARGS...]
# ZC_KV_ARGS (optional): more arguments for the server, split on blanks,
# e.g. ZC_KV_ARGS=--bulk-reactor (the hostile suite with a bulk reactor).
set -eu
server=$1
script=$2
python=$3
shift 3
dir=$(mktemp -d)
# shellcheck disable=SC2086 # ZC_KV_ARGS is split on purpose
"$server" -p 0 ${ZC_KV_ARGS:-} >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	grep -q '^listening on' "$dir/out" 2>/dev/null && break
	sleep 0.05
done
port=$(sed -n 's/^listening on //p' "$dir/out")
[ -n "$port" ] || { echo "server did not start"; exit 1; }
ZC_SERVER_PID=$pid "$python" "$script" "$port" "$@"
kill -0 "$pid" || { echo "server died"; cat "$dir/err"; exit 1; }
kill -TERM "$pid"
wait "$pid"
