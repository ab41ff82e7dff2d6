#!/usr/bin/env python3
"""Readiness probe for a MongoDB wire-protocol server, using only the standard library.

    python3 infra/check_mongo.py 127.0.0.1:27017 [--timeout SECONDS]

Sends OP_MSG {hello: 1, $db: "admin"} -- the handshake every current driver
opens with -- and exits 0 when the reply has ok == 1, 1 otherwise. Standard
library only, so infra.sh can probe without pymongo and independently of
which interpreter runs the server.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys

OP_MSG = 2013


class ProbeError(Exception):
    pass


def cstring(s: str) -> bytes:
    return s.encode() + b"\x00"


def bson_doc(fields: list[tuple[str, object]]) -> bytes:
    """Encode the handful of BSON types a probe needs (int32, string)."""
    body = b""
    for key, value in fields:
        if isinstance(value, int):
            body += b"\x10" + cstring(key) + struct.pack("<i", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\x00"
            body += b"\x02" + cstring(key) + struct.pack("<i", len(raw)) + raw
        else:
            raise TypeError(value)
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


# Fixed-size BSON element types -> payload size, for skipping values we don't read.
_FIXED = {
    0x01: 8,
    0x07: 12,
    0x08: 1,
    0x09: 8,
    0x0A: 0,
    0x10: 4,
    0x11: 8,
    0x12: 8,
    0x13: 16,
    0x7F: 0,
    0xFF: 0,
}


def top_level_fields(doc: bytes) -> dict[str, object]:
    """Decode scalar top-level fields of a BSON document; nested values are skipped."""
    out: dict[str, object] = {}
    pos, end = 4, struct.unpack_from("<i", doc)[0] - 1
    while pos < end:
        etype = doc[pos]
        name_end = doc.index(b"\x00", pos + 1)
        name = doc[pos + 1 : name_end].decode()
        pos = name_end + 1
        if etype == 0x01:
            out[name] = struct.unpack_from("<d", doc, pos)[0]
        elif etype == 0x08:
            out[name] = doc[pos] == 1
        elif etype == 0x10:
            out[name] = struct.unpack_from("<i", doc, pos)[0]
        elif etype == 0x12:
            out[name] = struct.unpack_from("<q", doc, pos)[0]
        elif etype == 0x02:
            n = struct.unpack_from("<i", doc, pos)[0]
            out[name] = doc[pos + 4 : pos + 3 + n].decode(errors="replace")
        if etype in _FIXED:
            pos += _FIXED[etype]
        elif etype in (0x02, 0x0D, 0x0E):  # string, JS code, symbol
            pos += 4 + struct.unpack_from("<i", doc, pos)[0]
        elif etype in (0x03, 0x04, 0x0F):  # document, array, code_w_scope
            pos += struct.unpack_from("<i", doc, pos)[0]
        elif etype == 0x05:  # binary: length, subtype, bytes
            pos += 5 + struct.unpack_from("<i", doc, pos)[0]
        elif etype == 0x0B:  # regex: two cstrings
            pos = doc.index(b"\x00", doc.index(b"\x00", pos) + 1) + 1
        elif etype == 0x0C:  # DBPointer
            pos += 4 + struct.unpack_from("<i", doc, pos)[0] + 12
        else:
            raise ProbeError(f"unexpected BSON type 0x{etype:02x}")
    return out


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProbeError("connection closed by server")
        buf += chunk
    return bytes(buf)


def hello(host: str, port: int, timeout: float) -> dict[str, object]:
    doc = bson_doc([("hello", 1), ("$db", "admin")])
    # flagBits=0, one kind-0 (body) section.
    msg = struct.pack("<I", 0) + b"\x00" + doc
    header = struct.pack("<iiii", 16 + len(msg), 1, 0, OP_MSG)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(header + msg)
        length, _req, response_to, opcode = struct.unpack("<iiii", recv_exact(sock, 16))
        body = recv_exact(sock, length - 16)
    if opcode != OP_MSG or response_to != 1:
        raise ProbeError(f"unexpected reply opcode={opcode} responseTo={response_to}")
    if body[4] != 0:
        raise ProbeError("reply does not start with a body section")
    return top_level_fields(body[5:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of the server")
    parser.add_argument("--timeout", type=float, default=3.0, help="socket timeout in seconds")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    try:
        reply = hello(host or "127.0.0.1", int(port), args.timeout)
        if reply.get("ok") != 1:
            raise ProbeError(f"hello returned {reply}")
    except (OSError, ProbeError, ValueError, IndexError, struct.error) as exc:
        if args.verbose:
            print(f"mongo not ready at {args.address}: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        print(
            "hello:",
            {
                k: v
                for k, v in reply.items()
                if k in ("ok", "isWritablePrimary", "setName", "maxWireVersion")
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
