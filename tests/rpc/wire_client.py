#!/usr/bin/env python3
# A zcrpc client written from docs/PROTOCOL.md alone, with the standard
# library: HELLO, echo calls (one small, one fragmented by max_frame, two
# interleaved by hand), an unknown method, PING.  Proves the document is
# enough to interoperate.  Usage: wire_client.py PORT
import socket
import struct
import sys

HDR = struct.Struct("<HBBHHIIQII")  # magic ver type flags status method len id deadline msg_len
MAGIC, VERSION = 0x525A, 1
HELLO, REQUEST, RESPONSE, ERROR, CANCEL, PING, PONG, GOAWAY = range(1, 9)
MORE = 1
FRAG_MIN = 4096  # smallest fragment that may carry MORE


def frame(ftype, payload=b"", flags=0, status=0, method=0, rid=0, deadline=0, msg_len=None):
    if msg_len is None:
        msg_len = len(payload)
    return HDR.pack(MAGIC, VERSION, ftype, flags, status, method, len(payload),
                    rid, deadline, msg_len) + payload


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("server closed")
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    magic, ver, ftype, flags, status, method, length, rid, deadline, msg_len = \
        HDR.unpack(read_exact(sock, HDR.size))
    assert magic == MAGIC and ver == VERSION, (magic, ver)
    return ftype, flags, status, rid, msg_len, read_exact(sock, length)


def request(sock, rid, method, payload, max_frame, deadline_us=0):
    """Cut the message into frames of at most max_frame bytes."""
    out = b""
    off = 0
    while True:
        part = payload[off:off + max_frame]
        off += len(part)
        more = MORE if off < len(payload) else 0
        out += frame(REQUEST, part, flags=more, method=method, rid=rid,
                     deadline=deadline_us, msg_len=len(payload))
        if not more:
            return out


def hello(sock, max_message=1 << 20):
    """Exchange HELLOs; returns the server's max_frame."""
    sock.sendall(frame(HELLO, struct.pack("<IIII", max_message, 65536, 0, 0)))
    ftype, _, _, _, _, payload = read_frame(sock)
    assert ftype == HELLO
    max_message, max_frame, _, _ = struct.unpack("<IIII", payload)
    assert max_frame >= 4096
    return max_frame


def session(sock):
    """The calls above over a connected socket (plain or TLS)."""
    max_frame = hello(sock)
    big = bytes(i % 251 for i in range(200000))
    sock.sendall(request(sock, 1, 1, b"hello", max_frame, deadline_us=1000000))
    sock.sendall(request(sock, 2, 1, big, max_frame))
    # Two calls interleaved fragment by fragment: A1 B1 A2 B2.  Every
    # fragment but a message's last carries at least 4096 bytes.
    a1, b1 = b"a" * FRAG_MIN, b"W" * FRAG_MIN
    sock.sendall(frame(REQUEST, a1, MORE, method=1, rid=3, msg_len=FRAG_MIN + 3) +
                 frame(REQUEST, b1, MORE, method=1, rid=4, msg_len=FRAG_MIN + 2) +
                 frame(REQUEST, b"def", method=1, rid=3, msg_len=FRAG_MIN + 3) +
                 frame(REQUEST, b"YZ", method=1, rid=4, msg_len=FRAG_MIN + 2))
    sock.sendall(frame(REQUEST, b"?", method=7, rid=5))
    sock.sendall(frame(PING, b"12345678"))

    want = {1: b"hello", 2: big, 3: a1 + b"def", 4: b1 + b"YZ"}
    got, parts, errors, pong = {}, {}, {}, False
    while len(got) + len(errors) < 5 or not pong:
        ftype, flags, status, rid, msg_len, payload = read_frame(sock)
        if ftype == PONG:
            assert payload == b"12345678"
            pong = True
        elif ftype == ERROR:
            errors[rid] = status
        elif ftype == RESPONSE:
            parts[rid] = parts.get(rid, b"") + payload
            if not flags & MORE:
                assert len(parts[rid]) == msg_len
                got[rid] = parts.pop(rid)
        else:
            raise AssertionError("unexpected frame type %d" % ftype)
    assert got == want, "echo mismatch"
    assert errors == {5: 3}, errors  # unknown_method


def main():
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    session(sock)
    sock.close()
    print("wire client: ok")


if __name__ == "__main__":
    main()
