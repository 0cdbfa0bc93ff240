#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/hosts/test_faults.sh RPC_FAULT BED [RSS_MB] - network faults between two
# test hosts.  Host 2 runs an RPC server, host 1 a client that keeps calls
# in flight with deadlines and self-checking payloads (rpc_fault.c).  For
# each fault the client asserts: no corrupted or duplicated answer, every
# call ends exactly once no later than its deadline plus a bounded slack,
# bounded memory, and service back within a bound once the fault is gone.
# This script adds: the server survives every fault with bounded memory,
# and at the end it drains and tears down with every buffer back
# (rpc_fault serve exits non-zero otherwise; ASan builds check leaks).
#
# Root only (network namespaces); every wait is bounded; the bed is torn
# down on exit, whatever happens.
set -euo pipefail

FAULT=$1
BED=$2
RSS_MB=${3:-256}    # bound on each process's peak RSS
export ZC_BED_PREFIX=zcf$$
PORT=7100
WORK=$(mktemp -d)
TAG=faults
. "$(dirname "$0")/lib.sh"
srv_pid=
failed=0

cleanup() {
	[ -n "$srv_pid" ] && kill -9 "$srv_pid" 2>/dev/null || true
	"$BED" down
	rm -rf "$WORK"
}
trap cleanup EXIT

# Start the server in host 2 and wait (bounded) for its "ready".
start_server() {
	: >"$WORK/srv.out"
	"$BED" exec 2 "$FAULT" serve "$SRV" "$PORT" "$@" \
		>"$WORK/srv.out" 2>>"$WORK/srv.err" &
	srv_pid=$!
	wait_ready "$srv_pid" "$WORK/srv.out" "$WORK/srv.err"
}

srv_hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$srv_pid/status"; }

# run_case NAME APPLY CLEAR HOLD_S RECOVER_MS [client options...]
# APPLY and CLEAR are commands (eval'ed) run 1.5 s into the client's run
# and HOLD_S seconds later; then the client is told the fault is gone.
run_case() {
	local name=$1 apply=$2 clear=$3 hold=$4 recover=$5 pid rc=0
	shift 5
	# Long enough to see the recovery: 1.5 s, the fault, the bound, 2 s.
	"$BED" exec 1 "$FAULT" call "$SRV" "$PORT" \
		--seconds $((hold + recover / 1000 + 4)) \
		--recover-ms "$recover" --rss-max-mb "$RSS_MB" "$@" \
		>"$WORK/cli.out" 2>"$WORK/cli.err" &
	pid=$!
	sleep 1.5
	eval "$apply"
	sleep "$hold"
	eval "$clear"
	kill -USR1 "$pid" 2>/dev/null || true
	wait "$pid" || rc=$?
	if ! kill -0 "$srv_pid" 2>/dev/null; then
		log "FAIL $name: the server died"; cat "$WORK/srv.err"; exit 1
	fi
	report "$name" "$rc"
	log "     server peak RSS so far: $(srv_hwm_kb) kB"
	if [ "$(srv_hwm_kb)" -gt $((RSS_MB * 1024)) ]; then
		log "FAIL $name: server peak RSS $(srv_hwm_kb) kB over $RSS_MB MiB"
		failed=1
	fi
}

"$BED" up 2
"$BED" set 1 mtu 9000
"$BED" set 2 mtu 9000
SRV=$("$BED" addr 2 4)
start_server

run_case "loss 1%" '"$BED" fault 2 loss 1' '"$BED" fault 2 clear' 3 3000
run_case "loss 10%" '"$BED" fault 2 loss 10' '"$BED" fault 2 clear' 3 5000
run_case "blackhole 3 s" '"$BED" fault 2 blackhole' '"$BED" fault 2 clear' 3 5000
run_case "link down 3 s" '"$BED" fault 2 down' '"$BED" fault 2 up' 3 5000
run_case "MTU 9000 -> 1500 mid-stream" \
	'"$BED" set 1 mtu 1500; "$BED" set 2 mtu 1500' ':' 2 3000 --size 65536
# Packets the shaper drops back TCP's retransmission timer off: calls on
# those connections resume when it fires, up to seconds later.
run_case "rate limit 2 Mbit/s, 16 x 64 KiB offered" \
	'"$BED" fault 2 rate 2mbit' '"$BED" fault 2 clear' 4 10000 \
	--size 65536 --deadline-ms 1500

# A server that stops reading: it holds every request, its 8 MiB of
# request budget fills, it stops reading the socket, while the client
# offers 256 x 64 KiB.
restart_server() {
	kill -TERM "$srv_pid"
	if ! wait "$srv_pid"; then
		log "FAIL: server teardown"; cat "$WORK/srv.err"; exit 1
	fi
	start_server "$@"
}
restart_server --inflight-bytes $((8 << 20))
run_case "server stops reading (holds every request, 8 MiB budget)" \
	'kill -USR1 $srv_pid' 'kill -USR2 $srv_pid' 3 3000 \
	--size 65536 --inflight 256
restart_server

# The server killed mid-call, then restarted.
run_case "server SIGKILL mid-call, restarted" \
	'kill -9 $srv_pid; wait $srv_pid 2>/dev/null || true' \
	'start_server' 1 5000

# IPv6 between the same hosts.
SRV=$("$BED" addr 2 6)
restart_server --zc
run_case "IPv6, loss 1%, zero-copy answers" \
	'"$BED" fault 2 loss 1' '"$BED" fault 2 clear' 2 3000 --size 65536

# The client killed mid-call while the server holds zero-copy sends to it
# (its receive side shaped to a crawl, 64 KiB answers): the server lets
# go of every buffer (checked at its teardown) and serves the next client.
"$BED" fault 1 rate 1mbit
"$BED" exec 1 "$FAULT" call "$SRV" "$PORT" --seconds 30 --size 262144 \
	>/dev/null 2>&1 &
cli=$!
sleep 2
kill -9 "$cli"; wait "$cli" 2>/dev/null || true
"$BED" fault 1 clear
log "client killed mid-call with zero-copy answers in flight"
run_case "a new client after the killed one" ':' ':' 0 3000 --size 65536

kill -TERM "$srv_pid"
if wait "$srv_pid"; then
	log "ok   server drained and tore down with every buffer back"
else
	log "FAIL: server teardown (exit $?)"; cat "$WORK/srv.err"; failed=1
fi
srv_pid=
exit "$failed"
