#!/usr/bin/env python3
"""Readiness probe for a Kafka broker, using only the standard library.

    python3 infra/check_kafka.py 127.0.0.1:9092 [--timeout SECONDS]

Exits 0 once the broker answers a real Metadata request that lists at least
one broker, 1 otherwise. An open port is not enough: a KRaft broker binds its
listener before it has joined the quorum and been unfenced, and clients that
connect in that window fail. Standard library only, so infra.sh can probe
before (or without) the project's virtualenv.

The probe first sends ApiVersions v0 (every broker answers it, whatever it
supports), then Metadata at the highest version both sides know. Kafka 4.0
removed many old protocol versions (KIP-896), so a fixed ancient version would
be fragile; both the classic (v1-v8) and the "flexible" (v9-v12, compact
strings and tagged fields) encodings are implemented.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"infra-check"
# Metadata versions this probe can encode/decode.
METADATA_MIN, METADATA_MAX, METADATA_FIRST_FLEXIBLE = 1, 12, 9


class ProbeError(Exception):
    pass


class Reader:
    """Cursor over a response body with the Kafka primitive decoders we need."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProbeError("truncated response")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int16(self) -> int:
        value: int = struct.unpack(">h", self.take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self.take(4))[0]
        return value

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def string(self) -> str | None:  # classic nullable string
        n = self.int16()
        return None if n < 0 else self.take(n).decode()

    def compact_string(self) -> str | None:  # flexible nullable string
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())  # size + payload


def roundtrip(
    sock: socket.socket, api_key: int, version: int, corr: int, body: bytes, flexible_header: bool
) -> Reader:
    """Send one request and return a Reader positioned after the response header."""
    header = struct.pack(">hhi", api_key, version, corr)
    header += struct.pack(">h", len(CLIENT_ID)) + CLIENT_ID
    if flexible_header:
        header += b"\x00"  # request header v2: empty tagged fields
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    reader = Reader(recv_exact(sock, size))
    if reader.int32() != corr:
        raise ProbeError("correlation id mismatch")
    # ApiVersions always answers with response header v0, even for flexible versions.
    if flexible_header and api_key != API_VERSIONS:
        reader.skip_tagged_fields()
    return reader


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProbeError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def metadata_version_range(sock: socket.socket) -> tuple[int, int]:
    r = roundtrip(sock, API_VERSIONS, 0, 1, b"", flexible_header=False)
    error = r.int16()
    if error != 0:
        raise ProbeError(f"ApiVersions error code {error}")
    for _ in range(r.int32()):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        if key == API_METADATA:
            return lo, hi
    raise ProbeError("broker does not list the Metadata API")


def metadata_brokers(sock: socket.socket, version: int) -> list[tuple[int, str, int]]:
    flexible = version >= METADATA_FIRST_FLEXIBLE
    # topics = null means "all topics"; we only care about the broker list.
    # compact nullable array: null, or the classic array length -1.
    body = b"\x00" if flexible else struct.pack(">i", -1)
    if version >= 4:
        body += b"\x00"  # allow_auto_topic_creation = false
    if 8 <= version <= 10:
        body += b"\x00"  # include_cluster_authorized_operations
    if version >= 8:
        body += b"\x00"  # include_topic_authorized_operations
    if flexible:
        body += b"\x00"  # tagged fields
    r = roundtrip(sock, API_METADATA, version, 2, body, flexible_header=flexible)
    if version >= 3:
        r.int32()  # throttle_time_ms
    brokers = []
    count = r.uvarint() - 1 if flexible else r.int32()
    for _ in range(max(count, 0)):
        node_id = r.int32()
        host = r.compact_string() if flexible else r.string()
        port = r.int32()
        if flexible:
            r.compact_string()  # rack
            r.skip_tagged_fields()
        else:
            r.string()  # rack (v1+)
        brokers.append((node_id, host or "", port))
    return brokers


def probe(
    host: str, port: int, timeout: float, force_version: int | None
) -> list[tuple[int, str, int]]:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        lo, hi = metadata_version_range(sock)
        version = force_version if force_version is not None else min(hi, METADATA_MAX)
        if version < max(lo, METADATA_MIN) or version > hi:
            raise ProbeError(
                f"no common Metadata version (broker {lo}-{hi}, "
                f"probe {METADATA_MIN}-{METADATA_MAX})"
            )
        brokers = metadata_brokers(sock, version)
        if not brokers:
            raise ProbeError("Metadata response lists no brokers yet")
        return brokers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of a broker listener")
    parser.add_argument("--timeout", type=float, default=3.0, help="socket timeout in seconds")
    parser.add_argument(
        "--metadata-version",
        type=int,
        default=None,
        help="force a Metadata version (for testing the probe itself)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    try:
        brokers = probe(host or "127.0.0.1", int(port), args.timeout, args.metadata_version)
    except (OSError, ProbeError, ValueError) as exc:
        if args.verbose:
            print(f"kafka not ready at {args.address}: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        print("brokers:", ", ".join(f"{n}@{h}:{p}" for n, h, p in brokers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
