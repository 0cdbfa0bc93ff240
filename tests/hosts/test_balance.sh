#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/hosts/test_balance.sh RPC_FAULT BED [RSS_MB] - one client over
# three servers (zc_rpc_balancer, rpc_fault call-many), four test hosts on a
# bridge: hosts 2-4 serve, host 1 calls with load running.
#   - one server killed (SIGKILL) mid-load: calls move to the others within
#     one second (no gap over 1 s between OK answers), every call is
#     accounted for (OK, or an explicit status for the calls its lost
#     connections may have run; none corrupted, doubled, late or lost);
#     restarted, it takes load again;
#   - one server drained with GOAWAY (SIGTERM) mid-load: no call fails.
# Root only; every wait bounded; the bed is torn down on exit.
set -euo pipefail

FAULT=$1
BED=$2
RSS_MB=${3:-256}
export ZC_BED_PREFIX=zcl$$
PORT=7100
WORK=$(mktemp -d)
TAG=balance
. "$(dirname "$0")/lib.sh"
declare -A srv_pid
failed=0

cleanup() {
	for p in "${srv_pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	"$BED" down
	rm -rf "$WORK"
}
trap cleanup EXIT

start_server() {
	local h=$1
	: >"$WORK/srv$h.out"
	"$BED" exec "$h" "$FAULT" serve "$("$BED" addr "$h" 4)" "$PORT" \
		>"$WORK/srv$h.out" 2>>"$WORK/srv$h.err" &
	srv_pid[$h]=$!
	wait_ready "${srv_pid[$h]}" "$WORK/srv$h.out" "$WORK/srv$h.err"
}

# client SECONDS OPTIONS... : start the client in host 1, in the background
client() {
	local secs=$1
	shift
	"$BED" exec 1 "$FAULT" call-many "$TARGETS" --seconds "$secs" \
		--rss-max-mb "$RSS_MB" "$@" >"$WORK/cli.out" 2>"$WORK/cli.err" &
	cli=$!
}

verdict() {
	local rc=0
	wait "$cli" || rc=$?
	report "$1" "$rc"
}

"$BED" up 4
TARGETS=""
for h in 2 3 4; do
	start_server "$h"
	TARGETS="$TARGETS${TARGETS:+,}$("$BED" addr "$h" 4):$PORT"
done

# Kill host 3's server under load, restart it 2 s later.
client 8 --max-gap-ms 1000
sleep 2
kill -9 "${srv_pid[3]}"; wait "${srv_pid[3]}" 2>/dev/null || true
log "server 3 killed"
sleep 2
start_server 3
kill -USR1 "$cli"
log "server 3 restarted"
verdict "a server killed mid-load, then restarted"
since=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint_sends_since_signal"][1])' <"$WORK/cli.out")
if [ "$since" -gt 0 ]; then
	log "ok   the restarted server took $since calls"
else
	log "FAIL the restarted server took no calls"; failed=1
fi

# Drain host 4's server with GOAWAY under load: no call may fail.
client 6 --no-failures
sleep 2
kill -TERM "${srv_pid[4]}"
if wait "${srv_pid[4]}"; then
	log "server 4 drained and exited cleanly"
else
	log "FAIL server 4's drain or teardown"; cat "$WORK/srv4.err"; failed=1
fi
unset 'srv_pid[4]'
verdict "a server drained with GOAWAY mid-load"

for h in 2 3; do
	kill -TERM "${srv_pid[$h]}"
	if ! wait "${srv_pid[$h]}"; then
		log "FAIL server $h teardown"; cat "$WORK/srv$h.err"; failed=1
	fi
	unset "srv_pid[$h]"
done
exit "$failed"
