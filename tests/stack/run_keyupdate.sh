#!/bin/sh
# KeyUpdate from a peer whose record code we did not write: openssl
# s_client against `zcperf --echo --tls` (the stack's echo server, records
# by stack/tls_rec.c).  A line "K" on s_client's stdin sends a KeyUpdate
# asking for ours, "k" one that does not; each echo after them must come
# back, exactly one KeyUpdate of ours must reach s_client (for "K"), and
# the server must count both.  Every wait is bounded (10 s each, 60 s in
# all through ctest's TIMEOUT).
#   run_keyupdate.sh ZCPERF
set -eu
zcperf=$1
dir=$(mktemp -d)
spid=
epid=
trap 'exec 3>&- 2>/dev/null || true
      for p in $spid $epid; do kill "$p" 2>/dev/null || true; done
      rm -rf "$dir"' EXIT

fail() {
	echo "FAIL: $1"
	echo "--- s_client:"
	cat "$dir/out" 2>/dev/null || true
	echo "--- server:"
	cat "$dir/server.err" 2>/dev/null || true
	exit 1
}

# wait_for FILE PATTERN: until grep finds it, 10 s at most.
wait_for() {
	for _ in $(seq 200); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "no '$2' in $1 within 10 s"
}

# wait_count FILE PATTERN N: until grep counts N lines, 10 s at most.
wait_count() {
	for _ in $(seq 200); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" = "$3" ] && return 0
		sleep 0.05
	done
	fail "not $3 lines '$2' in $1 within 10 s"
}

# s_client reads a whole chunk of stdin at once and takes a command line
# only as the whole chunk, so each line waits for the previous one's effect.
sent='^>>> TLS 1.3, Handshake \[length 0005\], KeyUpdate'
got='^<<< TLS 1.3, Handshake \[length 0005\], KeyUpdate'

"$zcperf" --echo --tls -p 0 2>"$dir/server.err" &
epid=$!
wait_for "$dir/server.err" 'echo server on port'
port=$(sed -n 's/.*echo server on port \([0-9]*\).*/\1/p' "$dir/server.err")

mkfifo "$dir/in"
openssl s_client -connect "127.0.0.1:$port" -msg <"$dir/in" >"$dir/out" 2>&1 &
spid=$!
exec 3>"$dir/in"
wait_for "$dir/out" 'Verify return code'
grep -q '^New, TLSv1.3' "$dir/out" || fail "not TLS 1.3"

echo one >&3
wait_for "$dir/out" '^one$'
echo K >&3
wait_count "$dir/out" "$sent" 1
wait_count "$dir/out" "$got" 1
echo two >&3
wait_for "$dir/out" '^two$'
echo k >&3
wait_count "$dir/out" "$sent" 2
echo three >&3
wait_for "$dir/out" '^three$'
[ "$(grep -c -- "$got" "$dir/out")" = 1 ] ||
	fail "the server did not answer exactly the KeyUpdate that asked"

# End of input: s_client sends close_notify and leaves.
exec 3>&-
for _ in $(seq 200); do kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$spid" 2>/dev/null && fail "s_client still running"
spid=
kill -TERM "$epid"
for _ in $(seq 200); do kill -0 "$epid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$epid" 2>/dev/null && fail "echo server still running"
epid=
grep -q 'zcrpc records 1, openssl records 0; key updates 2, bad records 0, peer alerts 0' \
	"$dir/server.err" || fail "server counters"
grep -q 'tls session failed' "$dir/server.err" && fail "a session failed"
echo "openssl s_client: KeyUpdate (requested and not) over zcrpc's record layer: ok"
