#!/usr/bin/env python3
# A peer of bench/compare (bench/peers: zmq_echo, grpc_echo, capnp_echo),
# run as bench/compare runs it, for a second per mode on loopback: the
# closed loop answers calls of the asked sizes, the open loop (--rate,
# const and poisson) prints counts that add up (sent + late + failed ==
# scheduled, unsent a part of failed) and answers what it sent, --idle
# opens connections that each answer a call beside the active ones and
# --server-pid reports the server's VmRSS, and the server ends cleanly on
# SIGTERM.  No timing is checked.  Every wait is
# bounded.  Usage: peer_smoke.py PEER_EXE
import json
import queue
import socket
import subprocess
import sys
import threading


def lines(pipe, q):
    for line in pipe:
        q.put(line)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(exe):
    """The server on a free port; a few tries in case another process takes
    the port between free_port() and the server's bind."""
    for _ in range(5):
        port = free_port()
        srv = subprocess.Popen([exe, "-s", "-H", "127.0.0.1", "-p", str(port)],
                               stderr=subprocess.PIPE, text=True)
        q = queue.Queue()
        threading.Thread(target=lines, args=(srv.stderr, q), daemon=True).start()
        try:
            while True:
                line = q.get(timeout=15)
                if "serving on" in line:
                    return srv, port
                sys.stderr.write(line)
        except queue.Empty:
            pass
        srv.kill()
        srv.wait(timeout=10)
    raise SystemExit(f"{exe}: no server after 5 tries")


def run_client(exe, port, args):
    cmd = [exe, "-H", "127.0.0.1", "-p", str(port), "-l", "1"] + args
    r = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=60, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"{' '.join(args)}: {res['transactions_per_s']} calls/s", flush=True)
    return res


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def main():
    exe = sys.argv[1]
    srv, port = start_server(exe)
    try:
        for sizes, req, resp in (("64,64", 64, 64), ("4K,4K", 4096, 4096),
                                 ("1M,1M", 1 << 20, 1 << 20)):
            res = run_client(exe, port, ["-r", sizes, "-P", "2", "-d", "2"])
            check(res["test"] == "RPC_RR" and res["calls"] > 0,
                  f"closed loop {sizes}: no call answered")
            check(res["request_bytes"] == req and res["response_bytes"] == resp,
                  f"closed loop {sizes}: sizes {res['request_bytes']},"
                  f"{res['response_bytes']}")
            check("open_loop" not in res, "closed loop printed open_loop")
        for arrival in ("const", "poisson"):
            res = run_client(exe, port, ["-P", "2", "-d", "4", "-T", "2",
                                         "--rate", "2000", "--arrival", arrival])
            ol = res["open_loop"]
            check(ol["arrival"] == arrival, f"arrival {ol['arrival']}")
            check(ol["scheduled"] > 0, f"{arrival}: nothing scheduled")
            check(ol["sent"] + ol["late"] + ol["failed"] == ol["scheduled"],
                  f"{arrival}: sent + late + failed != scheduled: {ol}")
            check(ol["unsent"] <= ol["failed"], f"{arrival}: unsent > failed")
            check(res["calls"] == ol["sent"] + ol["late"],
                  f"{arrival}: calls {res['calls']} != answered {ol}")
        res = run_client(exe, port, ["-P", "2", "--idle", "300",
                                     "--server-pid", str(srv.pid)])
        rss = res["server_rss_kb"]
        check(res["idle_connections"] == 300 and res["calls"] > 0,
              f"--idle 300: {res}")
        # Sampled, not compared: a server's RSS may also shrink (its
        # allocator returns memory; under ASan, the quarantine).
        check(min(rss.values()) > 0, f"--idle 300: server RSS {rss}")
        check("server_rss_per_idle_b" in res, "no server_rss_per_idle_b")
    finally:
        srv.terminate()
        try:
            rc = srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(timeout=10)
            rc = "killed after SIGTERM was ignored"
    check(rc == 0, f"server exit {rc}")
    print("ok")


if __name__ == "__main__":
    main()
