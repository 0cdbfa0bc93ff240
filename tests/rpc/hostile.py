#!/usr/bin/env python3
# Hostile clients against a zcrpc server (issue 15), written from
# docs/PROTOCOL.md with wire_client.py's codec.  For each attack: while it
# runs, a well-behaved neighbour on its own connection keeps getting
# correct echo answers (each within NEIGHBOUR_TIMEOUT s); the server's RSS
# stays under the bound the attack states; within one second after the
# offender has gone, a new connection gets its HELLO and an answer.
#
# Usage: hostile.py PORT ATTACK [--measure], the server's pid in the
# environment as ZC_SERVER_PID (run_py.sh sets it).
#   ATTACK: one name of ATTACKS, or "all".  --measure also prints the
#   neighbour's calls/s and p99 with no attack and during the attack (for
#   docs/RELIABILITY.md; never part of pass/fail); --pin=A,N runs the
#   attack on CPU A and the neighbour on CPU N; --rss-factor=F scales the
#   RSS bounds (a sanitized server's allocator costs several times more),
#   and --time-factor=F the one-second bound on service after the attack
#   (a sanitized server is several times slower at freeing what it held).
# The server is whatever run_py.sh starts: ZC_KV_ARGS=--bulk-reactor gives
# kv_server a bulk reactor (ctest rpc.hostile_bulk.*); nothing asserted
# here changes.
import os
import multiprocessing
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_client import (HELLO, REQUEST, RESPONSE, ERROR, PING, PONG,  # noqa: E402
                         MORE, HDR, frame, read_frame)

ECHO = 1
NEIGHBOUR_TIMEOUT = 5.0
OVERLOADED = 5
MiB = 1 << 20
# --pin A,N (measure only): run the attack on CPU A, the neighbour on N.
NEIGHBOUR_CPU = None


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    s.sendall(frame(HELLO, struct.pack("<IIII", 1 << 30, 65536, 0, 0)))
    ftype, _, _, _, _, payload = read_frame(s)
    assert ftype == HELLO, ftype
    return s, struct.unpack("<IIII", payload)


def send_message(sock, rid, payload, max_frame, stop_before=None):
    """Frames of one echo request; stop_before: leave that many bytes out
    (the message never completes)."""
    n = len(payload)
    end = n - stop_before if stop_before else n
    off = 0
    while off < end:
        part = payload[off:min(off + max_frame, end)]
        off += len(part)
        sock.sendall(frame(REQUEST, part, flags=MORE if off < n else 0,
                           method=ECHO, rid=rid, msg_len=n))


def read_answers(sock, want, deadline):
    """Read until @want ids got a final frame; returns {id: (type,
    status, bytes)}."""
    done, parts = {}, {}
    while len(done) < want and time.monotonic() < deadline:
        ftype, flags, status, rid, msg_len, payload = read_frame(sock)
        if ftype == RESPONSE:
            parts[rid] = parts.get(rid, 0) + len(payload)
            if not flags & MORE:
                done[rid] = (ftype, 0, parts.pop(rid))
        elif ftype == ERROR:
            done[rid] = (ftype, status, 0)
    return done


class Neighbour:
    """A well-behaved client, one 100-byte echo call at a time, in a
    process of its own: the attacks' Python threads would otherwise make
    it wait for the interpreter lock, not for the server."""

    def __init__(self, port):
        self.port = port
        self.stop = multiprocessing.Event()
        self.pipe, self.child = multiprocessing.Pipe(duplex=False)
        self.proc = multiprocessing.Process(target=self._run, daemon=True)
        self.lat = []
        self.error = None

    def start(self):
        self.proc.start()

    def _run(self):
        lat, error = [], None
        if NEIGHBOUR_CPU is not None:
            os.sched_setaffinity(0, {NEIGHBOUR_CPU})
        try:
            s, _ = connect(self.port)
            s.settimeout(NEIGHBOUR_TIMEOUT)
            rid = 0
            while not self.stop.is_set():
                rid += 1
                body = rid.to_bytes(8, "little") * 12 + b"abcd"
                t0 = time.monotonic()
                s.sendall(frame(REQUEST, body, method=ECHO, rid=rid))
                ftype, flags, status, got, _, payload = read_frame(s)
                if ftype != RESPONSE or got != rid or payload != body:
                    raise AssertionError("neighbour: bad answer %d %d %d" %
                                         (ftype, status, got))
                lat.append((t0, time.monotonic() - t0))
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by the parent
            error = "neighbour: %r" % (e,)
        self.child.send((lat, error))

    def join(self, timeout):
        self.stop.set()
        if self.pipe.poll(timeout):
            self.lat, self.error = self.pipe.recv()
        else:
            self.error = "neighbour: no report"
        self.proc.join(1)

    def window(self, t0, t1):
        return [d for (t, d) in self.lat if t0 <= t < t1]


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def now(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
        return 0

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.02)

    def cpu(self):
        """Server CPU seconds so far (user + system)."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served_after(port, limit=1.0):
    """A new connection gets HELLO and an echo answer within @limit s."""
    t0 = time.monotonic()
    s, _ = connect(port, timeout=limit)
    s.sendall(frame(REQUEST, b"after", method=ECHO, rid=1))
    ftype, _, _, rid, _, payload = read_frame(s)
    s.close()
    took = time.monotonic() - t0
    assert ftype == RESPONSE and payload == b"after", (ftype, payload)
    assert took <= limit, "served %.2f s after the attack" % took
    return took


# ---- attacks: each returns a line about what the offender got -----------

def partial_forever(port):
    """Messages that never finish: one of 64 MiB - 1 B missing its last
    byte, and 16 x 1 MiB on another connection missing their last
    fragment; held 2 s, then reset."""
    a, (_, mf, _, _) = connect(port)
    b, _ = connect(port)
    send_message(a, 1, bytes(64 * MiB - 1), mf, stop_before=1)
    for rid in range(1, 17):
        send_message(b, rid, bytes(MiB), mf, stop_before=mf)
    time.sleep(2)
    a.close()
    b.close()
    return "held 80 MiB of partial messages for 2 s, then closed"


def large_concurrent(port):
    """Legitimate large calls at once: 2 x 40 MiB then 8 x 16 MiB, each on
    its own connection; every one must be answered in full."""
    out = []
    for n, size in ((2, 40 * MiB), (8, 16 * MiB)):
        res = {}

        def one(i):
            s, (_, mf, _, _) = connect(port, timeout=30)
            th = threading.Thread(target=send_message,
                                  args=(s, 1, bytes(size), mf))
            th.start()
            res[i] = read_answers(s, 1, time.monotonic() + 30).get(1)
            th.join()
            s.close()
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        ok = sum(1 for r in res.values() if r == (RESPONSE, 0, size))
        assert ok == n, "%d x %d MiB: %r" % (n, size // MiB, res)
        out.append("%d x %d MiB answered" % (n, size // MiB))
    return ", ".join(out)


def interleaved(port):
    """100 x 1 MiB on one connection, fragments interleaved round-robin
    (as PROTOCOL.md recommends): each gets an answer, the echo or
    OVERLOADED once the connection's request budget is full."""
    s, (_, mf, _, _) = connect(port, timeout=30)
    ids, size = range(1, 101), MiB
    body = bytes(size)

    def send():
        for off in range(0, size, mf):
            part = body[off:off + mf]
            more = MORE if off + len(part) < size else 0
            s.sendall(b"".join(frame(REQUEST, part, flags=more, method=ECHO,
                                     rid=rid, msg_len=size) for rid in ids))
    th = threading.Thread(target=send)
    th.start()
    res = read_answers(s, len(ids), time.monotonic() + 30)
    th.join()
    s.close()
    ok = sum(1 for r in res.values() if r == (RESPONSE, 0, size))
    over = sum(1 for r in res.values() if r == (ERROR, OVERLOADED, 0))
    assert ok + over == len(ids), res
    assert ok > 0
    return "%d answered, %d overloaded" % (ok, over)


def one_byte_fragments(port):
    """One 1 MiB message in 1 Mi one-byte fragments: the server's verdict
    (the echo, or a refusal of such fragments) comes within 5 s of the
    last fragment, i.e. reassembly is not quadratic."""
    s, _ = connect(port, timeout=60)
    n = MiB
    frames = b"".join(frame(REQUEST, b"x", flags=MORE if i < n - 1 else 0,
                            method=ECHO, rid=1, msg_len=n) for i in range(n))
    s.settimeout(60)
    try:
        s.sendall(frames)
    except OSError:
        pass  # refused midway: the verdict below says how
    t0 = time.monotonic()
    s.settimeout(5)
    try:
        res = read_answers(s, 1, t0 + 5).get(1)
        verdict = "answered" if res == (RESPONSE, 0, n) else repr(res)
    except (EOFError, ConnectionError):
        verdict = "closed"
    took = time.monotonic() - t0
    s.close()
    assert took < 5, "verdict %.1f s after the last fragment" % took
    assert verdict in ("answered", "closed"), verdict
    return "%s %.2f s after the last fragment" % (verdict, took)


def _flood(port, make_frame, seconds):
    """Send make_frame(i) for i = 1, 2, ... for @seconds, never reading
    (each frame whole, so that every call is well formed)."""
    s, _ = connect(port)
    s.setblocking(False)
    sent, i, end = 0, 1, time.monotonic() + seconds
    pending = make_frame(i)
    while time.monotonic() < end:
        _, w, _ = select.select([], [s], [], 0.05)
        if not w:
            continue
        try:
            k = s.send(pending)
        except BlockingIOError:
            continue
        sent += k
        pending = pending[k:]
        if not pending:
            i += 1
            pending = make_frame(i)
    return s, sent


def _echo_1mib(rid):
    """A 1 MiB echo call in 16 fragments of 64 KiB."""
    return b"".join(frame(REQUEST, bytes(65536), flags=MORE if i < 15 else 0,
                          method=ECHO, rid=rid, msg_len=MiB)
                    for i in range(16))


def non_reader(port):
    """Never read: 1 MiB echo calls for 2 s, then 64 B calls, then PINGs;
    the server must stop reading this peer (its send queue is bounded)
    while the neighbour goes on."""
    out = []
    def small(rid):
        return frame(REQUEST, bytes(64), method=ECHO, rid=rid)

    def ping(_):
        return frame(PING, b"12345678")
    socks = []
    for name, f in (("1 MiB calls", _echo_1mib), ("64 B calls", small),
                    ("PINGs", ping)):
        # Well-formed calls with increasing ids (PROTOCOL.md): the only
        # fault is that this peer never reads its answers.
        s, sent = _flood(port, f, 2)
        socks.append(s)
        out.append("%s: %d MiB accepted" % (name, sent // MiB))
    for s in socks:
        s.close()
    return "; ".join(out)


def non_readers(port):
    """Twelve peers at once that send 1 MiB echo calls and never read:
    their unread answers together would hold more than the reactor's
    64 MiB pool if they kept the requests' receive buffers."""
    res = []

    def one():
        res.append(_flood(port, _echo_1mib, 3))
    ts = [threading.Thread(target=one) for _ in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for s, _ in res:
        s.close()
    return "12 peers: %d MiB accepted" % (sum(n for _, n in res) // MiB)


def pipelined_big(port):
    """40 x 8 MiB pipelined on one connection (answers read): the
    neighbour's small calls keep being answered (the lost wake-up)."""
    s, (_, mf, _, _) = connect(port, timeout=30)
    body = bytes(8 * MiB)

    def send():
        for rid in range(1, 41):
            send_message(s, rid, body, mf)
    th = threading.Thread(target=send)
    th.start()
    res = read_answers(s, 40, time.monotonic() + 60)
    th.join()
    s.close()
    ok = sum(1 for r in res.values() if r == (RESPONSE, 0, 8 * MiB))
    over = sum(1 for r in res.values() if r == (ERROR, OVERLOADED, 0))
    assert ok + over == 40, res
    return "%d answered, %d overloaded" % (ok, over)


def idle_burst(port):
    """1000 connections at once that never read the server's HELLO nor
    send theirs: each may cost a little memory, never a pool buffer
    (before, each accept took a 64 KiB stage buffer for its HELLO, and
    the pool kept them mapped: +18 MiB per 500).  Held 1 s, closed."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    socks = [socket.create_connection(("127.0.0.1", port))
             for _ in range(1000)]
    time.sleep(1)
    for s in socks:
        s.close()
    return "1000 connections held 1 s"


# name -> (attack, RSS bound in MiB, bound on the RSS growth in MiB,
#          fewest neighbour answers per second of attack: a liveness floor
#          far below the healthy rate, above that of a starved ring)
ATTACKS = {
    "partial_forever": (partial_forever, 400, None, None),
    "large_concurrent": (large_concurrent, 800, None, None),
    "interleaved": (interleaved, 400, None, None),
    "one_byte_fragments": (one_byte_fragments, 400, None, None),
    "non_reader": (non_reader, 400, None, None),
    "pipelined_big": (pipelined_big, 400, None, None),
    "non_readers": (non_readers, 400, None, 500),
    "idle_burst": (idle_burst, 400, 12, None),
}


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")


def run(port, pid, name, measure, rss_factor, time_factor):
    attack, bound, growth, min_rate = ATTACKS[name]
    bound *= rss_factor
    growth = growth and growth * rss_factor
    rss = RssSampler(pid)
    base_rss = rss.now()
    rss.start()
    # Control experiment (measure only): the neighbour calls another
    # server, to see what the machine itself costs it during the attack.
    nb = Neighbour(int(os.environ.get("HOSTILE_NEIGHBOUR_PORT", port)))
    nb.start()
    time.sleep(1.0)
    t_base = time.monotonic()
    time.sleep(1.0 if measure else 0.2)
    t0, cpu0 = time.monotonic(), rss.cpu()
    what = attack(port)
    t1, cpu1 = time.monotonic(), rss.cpu()
    after = served_after(port, 1.0 * time_factor)
    time.sleep(1.0)
    final_rss = rss.now()
    nb.join(NEIGHBOUR_TIMEOUT + 5)
    rss.stop.set()
    rss.join()
    assert nb.error is None, nb.error
    during = nb.window(t0, t1)
    assert during, "the neighbour got no answer during the attack"
    assert min_rate is None or len(during) >= min_rate * (t1 - t0), \
        "the neighbour got %d answers in %.1f s" % (len(during), t1 - t0)
    assert rss.peak <= bound, "RSS %d MiB > %d MiB" % (rss.peak, bound)
    assert growth is None or rss.peak - base_rss <= growth, \
        "RSS grew %d MiB > %d MiB" % (rss.peak - base_rss, growth)
    line = "%s: %s; neighbour %d answers during; served %.3f s after; " \
           "RSS %d -> peak %d -> %d MiB" % (name, what, len(during), after,
                                             base_rss, rss.peak, final_rss)
    if measure:
        base = nb.window(t_base, t0)
        line += "; neighbour calls/s %.0f -> %.0f, p99 %.0f -> %.0f us" \
            "; server CPU %.0f%% over %.1f s" % (
                len(base) / (t0 - t_base), len(during) / (t1 - t0),
                p99(base) * 1e6, p99(during) * 1e6,
                100 * (cpu1 - cpu0) / (t1 - t0), t1 - t0)
    print(line, flush=True)


def main():
    port, name = int(sys.argv[1]), sys.argv[2]
    pid = int(os.environ["ZC_SERVER_PID"])
    measure = "--measure" in sys.argv[3:]
    rss_factor = time_factor = 1
    for a in sys.argv[3:]:
        if a.startswith("--rss-factor="):
            rss_factor = int(a[13:])
        if a.startswith("--time-factor="):
            time_factor = int(a[14:])
        if a.startswith("--pin="):
            global NEIGHBOUR_CPU
            cpus = [int(x) for x in a[6:].split(",")]
            os.sched_setaffinity(0, {cpus[0]})
            NEIGHBOUR_CPU = cpus[1]
    for n in (ATTACKS if name == "all" else [name]):
        run(port, pid, n, measure, rss_factor, time_factor)


if __name__ == "__main__":
    main()
