#!/usr/bin/env python3
# SIGTERM to kv_server while ten 1 MiB echo answers are being sent and
# small calls keep arriving (issue 15, item 7): each run must get a GOAWAY,
# every call up to its id answered in full, then EOF after our FIN.
# Written from docs/PROTOCOL.md; every wait is bounded.
# Usage: kv_drain.py KV_SERVER RUNS  (prints one line per run; exit 1 if
# any run broke the promise)
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HDR = struct.Struct("<HBBHHIIQII")
HELLO, REQUEST, RESPONSE, ERROR, GOAWAY = 1, 2, 3, 4, 8
MORE = 1


def frame(ftype, payload=b"", flags=0, method=0, rid=0, msg_len=None):
    if msg_len is None:
        msg_len = len(payload)
    return HDR.pack(0x525A, 1, ftype, flags, 0, method, len(payload), rid, 0,
                    msg_len) + payload


def request(rid, payload, max_frame=65536):
    out, off = b"", 0
    while True:
        part = payload[off:off + max_frame]
        off += len(part)
        more = MORE if off < len(payload) else 0
        out += frame(REQUEST, part, more, 1, rid, len(payload))
        if not more:
            return out


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def one_run(server):
    proc = subprocess.Popen([server, "-p", "0"], stdout=subprocess.PIPE,
                            text=True)
    port = int(proc.stdout.readline().split()[-1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(frame(HELLO, struct.pack("<IIII", 64 << 20, 65536, 0, 0)))
    h = HDR.unpack(read_exact(sock, HDR.size))
    read_exact(sock, h[6])
    big = os.urandom(1 << 20)
    for rid in range(1, 11):
        sock.sendall(request(rid, big))
    stop = threading.Event()

    def writer():
        for rid in range(11, 400):
            if stop.is_set():
                return
            try:
                sock.sendall(request(rid, b"x" * 8))
            except OSError:
                return
            time.sleep(0.001)

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    got, done, goaway, end = {}, {}, None, "?"
    try:
        while True:
            h = HDR.unpack(read_exact(sock, HDR.size))
            payload = read_exact(sock, h[6])
            ftype, flags, rid, msg_len = h[2], h[3], h[7], h[9]
            if ftype == GOAWAY:
                goaway = rid
            elif ftype in (RESPONSE, ERROR):
                got[rid] = got.get(rid, 0) + len(payload)
                if ftype == ERROR or not flags & MORE:
                    done[rid] = ftype == RESPONSE and got[rid] == msg_len
            if goaway is not None and all(i in done
                                          for i in range(1, goaway + 1)):
                stop.set()
                th.join()
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
                end = "eof"
                break
    except EOFError:
        end = "eof before the answers"
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    stop.set()
    th.join()
    sock.close()
    proc.wait(timeout=20)
    whole = sum(1 for i in range(1, (goaway or 0) + 1) if done.get(i))
    good = goaway is not None and end == "eof" and whole == goaway
    return good, "goaway %s, %s, %d answered whole up to it" % (goaway, end,
                                                                whole)


def main():
    runs, bad = int(sys.argv[2]), 0
    for run in range(runs):
        good, what = one_run(sys.argv[1])
        bad += not good
        print("run %d: %s: %s" % (run, what, "ok" if good else "BROKEN"))
    print("kv drain: %d of %d runs kept the promise" % (runs - bad, runs))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
