#!/usr/bin/env python3
# zcperf -s drains the RPC server of a test when the test ends: a client of
# its own, connected to the test's data port (printed by -v) while an
# RPC_RR run goes on, gets GOAWAY and then a graceful close (EOF), not a
# reset.  Every wait is bounded.  Usage: zcperf_drain.py ZCPERF
import queue
import socket
import struct
import subprocess
import sys
import threading

HDR = struct.Struct("<HBBHHIIQII")
HELLO, GOAWAY = 1, 8


def lines(pipe, q):
    for line in pipe:
        q.put(line)


def wait_line(q, prefix, seconds):
    while True:
        line = q.get(timeout=seconds)
        if line.startswith(prefix):
            return line[len(prefix):].strip()


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(sock):
    h = HDR.unpack(read_exact(sock, HDR.size))
    return h, read_exact(sock, h[6])


def main():
    zcperf = sys.argv[1]
    srv = subprocess.Popen([zcperf, "-s", "-p", "0", "-v"],
                           stderr=subprocess.PIPE, text=True)
    cli = None
    try:
        q = queue.Queue()
        threading.Thread(target=lines, args=(srv.stderr, q),
                         daemon=True).start()
        port = wait_line(q, "zcperf: server on port ", 10)
        cli = subprocess.Popen([zcperf, "-H", "127.0.0.1", "-p", port,
                                "-t", "RPC_RR", "-l", "2"],
                               stdout=subprocess.DEVNULL)
        data = int(wait_line(q, "zcperf: server: data port ", 30))
        sock = socket.create_connection(("127.0.0.1", data), timeout=15)
        sock.sendall(HDR.pack(0x525A, 1, HELLO, 0, 0, 0, 16, 0, 0, 16) +
                     struct.pack("<IIII", 1 << 20, 65536, 0, 0))
        h, _ = read_frame(sock)
        assert h[2] == HELLO, h
        # The run ends within its 2 s: the drain's GOAWAY, then EOF.
        h, _ = read_frame(sock)
        assert h[2] == GOAWAY and h[4] == 0, h
        assert sock.recv(1) == b"", "no EOF after GOAWAY"
        sock.close()
        assert cli.wait(timeout=60) == 0, "the zcperf run failed"
        print("zcperf drain: ok")
    finally:
        if cli and cli.poll() is None:
            cli.kill()
        srv.terminate()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


if __name__ == "__main__":
    main()
