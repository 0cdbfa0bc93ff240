#!/usr/bin/env python3
# zcrpc over TLS from a client nobody here wrote: Python's ssl module
# around the client of wire_client.py (docs/PROTOCOL.md, "TLS").
#   wire_tls.py CERTDIR TLS_PORT MTLS_PORT PLAIN_PORT
# TLS_PORT: kv_server --cert/--key; MTLS_PORT: the same with --ca (client
# certificates required); PLAIN_PORT: kv_server without TLS.
# Checks: echo calls over TLS 1.3 with ALPN zcrpc/1, every size class from
# 1 B to 16 MiB byte-identical; mutual TLS; and refusals, each with its
# error: no client certificate, a TLS 1.2-only client, a host name
# mismatch, a plaintext client to a TLS server, a TLS client to a
# plaintext server.
import os
import socket
import ssl
import struct
import sys

from wire_client import (ERROR, MORE, REQUEST, RESPONSE, frame, hello,
                         read_frame, session)

CERTS = sys.argv[1]
TLS_PORT, MTLS_PORT, PLAIN_PORT = (int(p) for p in sys.argv[2:5])
ECHO = 1


def ctx(cert=None, tls12_only=False):
    c = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    c.set_alpn_protocols(["zcrpc/1"])
    if cert:
        c.load_cert_chain(os.path.join(CERTS, cert + ".pem"),
                          os.path.join(CERTS, cert + ".key"))
    if tls12_only:
        c.maximum_version = ssl.TLSVersion.TLSv1_2
    return c


def connect(port, cert=None, host="localhost", tls12_only=False):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    return ctx(cert, tls12_only).wrap_socket(raw, server_hostname=host)


def echo(sock, rid, payload, max_frame):
    """One call, its fragments sent one by one (no 16 MiB concatenation)."""
    off = 0
    while True:
        part = payload[off:off + max_frame]
        off += len(part)
        more = MORE if off < len(payload) else 0
        sock.sendall(frame(REQUEST, part, flags=more, method=ECHO, rid=rid,
                           msg_len=len(payload)))
        if not more:
            break
    got = bytearray()
    while True:
        ftype, flags, status, frid, msg_len, data = read_frame(sock)
        assert ftype == RESPONSE and frid == rid, (ftype, status, frid)
        got += data
        if not flags & MORE:
            assert len(got) == msg_len
            return bytes(got)


def sizes_both_ways(sock):
    max_frame = hello(sock, max_message=64 << 20)
    rid = 100
    for size in (1, 2, 100, 4095, 4096, 16383, 16384, 16385, 65535, 65536,
                 65537, 1 << 20, (1 << 20) + 7, 16 << 20):
        payload = os.urandom(size)
        rid += 1
        assert echo(sock, rid, payload, max_frame) == payload, size


def refused(what, fn):
    try:
        fn()
    except (ssl.SSLError, ConnectionError, EOFError) as e:
        print("refused as expected (%s): %s" % (what, e))
        return
    raise AssertionError(what + ": not refused")


def main():
    s = connect(TLS_PORT)
    assert s.version() == "TLSv1.3", s.version()
    assert s.selected_alpn_protocol() == "zcrpc/1"
    session(s)
    s.close()
    s = connect(TLS_PORT)
    sizes_both_ways(s)
    s.close()
    print("tls: echo calls ok, 1 B .. 16 MiB byte-identical")

    s = connect(MTLS_PORT, cert="client")
    session(s)
    s.close()
    print("mtls: echo calls ok")

    def no_client_cert():
        # TLS 1.3: the handshake ends on our side; the server's alert
        # comes with the first read.
        s = connect(MTLS_PORT)
        session(s)
    refused("no client certificate", no_client_cert)
    refused("TLS 1.2 only", lambda: connect(TLS_PORT, tls12_only=True))
    refused("host name mismatch",
            lambda: connect(TLS_PORT, host="db.example.org"))

    def plaintext_to_tls():
        raw = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=20)
        raw.sendall(frame(1, struct.pack("<IIII", 1 << 20, 65536, 0, 0)))
        data = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        # At most a TLS alert record, never a zcrpc frame.
        assert not data or data[0] == 0x15, data[:16]
        raise EOFError("closed after %d bytes" % len(data))
    refused("plaintext client to a TLS server", plaintext_to_tls)
    refused("TLS client to a plaintext server",
            lambda: connect(PLAIN_PORT))
    print("wire tls: ok")


if __name__ == "__main__":
    main()
