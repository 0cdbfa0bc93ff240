# SPDX-License-Identifier: MIT
# tests/hosts/lib.sh - shared by the scripts of tests/hosts: sourced, with
# $WORK (a scratch folder) and $TAG (the log prefix) set by the caller.

log() { printf '%s: %s\n' "$TAG" "$*"; }

# wait_ready PID OUT ERR: wait (bounded, 10 s) for rpc_fault serve's
# "ready" in OUT; on failure show ERR and exit.
wait_ready() {
	for _ in $(seq 100); do
		grep -q ready "$2" && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	log "server did not start"; cat "$3"; exit 1
}

# report NAME RC: the verdict of the client whose exit code is RC, from
# $WORK/cli.out (its JSON) and $WORK/cli.err (its reasons); sets failed=1.
report() {
	if [ "$2" -ne 0 ]; then
		log "FAIL $1 (client exit $2): $(cat "$WORK/cli.out")"
		sed 's/^/  /' "$WORK/cli.err"
		failed=1
	else
		log "ok   $1: $(cat "$WORK/cli.out")"
	fi
}
