"""The LDAP target on slapd against raw python-ldap on the same server: applying 10,000
creations then 10,000 modifications with the same window of operations in flight, and reading
100,000 entries as a target against a raw paged search."""

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import ldap
from ldap.controls import SimplePagedResultsControl
from provisioning_common.definitions import LdapTarget
from sequence_runner.adapters.connectors.ldap_client import AsyncLdapConnection
from sequence_runner.adapters.connectors.ldap_target import LdapTargetConnector
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.domain.records import PlannedChange

from bench.timing import report

URL = os.environ.get("LDAP_URI", "ldap://127.0.0.1:13390")
ADMIN = os.environ.get("LDAP_BIND_DN", "cn=admin,dc=example,dc=org")
PASSWORD = os.environ.get("LDAP_ADMIN_PASSWORD", "admin-password")
WINDOW = 128
BATCH = 500
PAGE = 1000
MAPPING = ["uid", "cn", "sn", "mail"]


def admin() -> Any:
    conn = ldap.initialize(URL)
    conn.simple_bind_s(ADMIN, PASSWORD)
    return conn


def new_base() -> str:
    name = f"bench{uuid.uuid4().hex[:8]}"
    admin().add_s(
        f"ou={name},dc=example,dc=org",
        [("objectClass", [b"organizationalUnit"]), ("ou", [name.encode()])],
    )
    return f"ou={name},dc=example,dc=org"


def pipelined(conn: Any, count: int, send: Callable[[int], int]) -> None:
    """Raw python-ldap with a window: at most WINDOW requests unanswered."""
    sent = answered = 0
    while answered < count:
        while sent < count and sent - answered < WINDOW:
            send(sent)
            sent += 1
        conn.result3(ldap.RES_ANY, 1, None)
        answered += 1


def drop(base: str) -> None:
    conn = admin()
    found = conn.search_ext_s(base, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["1.1"])
    dns = [dn for dn, _ in found]
    pipelined(conn, len(dns), lambda i: conn.delete_ext(dns[i]))
    conn.delete_s(base)


def person(i: int, mail: str = "example.org") -> dict[str, Any]:
    return {"uid": f"u{i:07d}", "cn": f"User {i}", "sn": f"Name{i}", "mail": f"u{i}@{mail}"}


def target(base: str, connection: AsyncLdapConnection) -> LdapTargetConnector:
    definition = LdapTarget(
        connection="bench",
        base_dn=base,
        rdn_attribute="uid",
        object_classes=["inetOrgPerson"],
    )
    return LdapTargetConnector(
        "bench", connection, definition, "uid", MAPPING, RetryPolicy(1, 0), PAGE
    )


async def ours_write(count: int) -> tuple[float, float, str]:
    base = new_base()
    connection = AsyncLdapConnection(URL, ADMIN, PASSWORD, window=WINDOW)
    writer = target(base, connection)
    await writer.prepare()
    creates = [
        PlannedChange(seq=i, action="create", key=f"u{i:07d}", before=None, after=person(i))
        for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        await writer.apply(creates[start : start + BATCH])
    created = time.perf_counter() - started
    updates = [
        PlannedChange(
            seq=i,
            action="update",
            key=f"u{i:07d}",
            before={"mail": f"u{i}@example.org"},
            after=person(i, "example.com"),
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        await writer.apply(updates[start : start + BATCH])
    modified = time.perf_counter() - started
    await connection.close()
    return created, modified, base


def raw_write(count: int) -> tuple[float, float, str]:
    base = new_base()
    conn = admin()
    entries = [person(i) for i in range(count)]

    def add(i: int) -> int:
        e = entries[i]
        modlist = [("objectClass", [b"inetOrgPerson"])]
        modlist += [(k, [v.encode()]) for k, v in e.items()]
        msgid: int = conn.add_ext(f"uid={e['uid']},{base}", modlist)
        return msgid

    def modify(i: int) -> int:
        e = entries[i]
        change = [(ldap.MOD_REPLACE, "mail", [f"u{i}@example.com".encode()])]
        msgid: int = conn.modify_ext(f"uid={e['uid']},{base}", change)
        return msgid

    started = time.perf_counter()
    pipelined(conn, count, add)
    created = time.perf_counter() - started
    started = time.perf_counter()
    pipelined(conn, count, modify)
    modified = time.perf_counter() - started
    return created, modified, base


async def ours_read(base: str) -> tuple[float, int]:
    connection = AsyncLdapConnection(URL, ADMIN, PASSWORD, window=WINDOW)
    reader = target(base, connection)
    await reader.prepare()
    started = time.perf_counter()
    count = len([record async for record in reader.read_all()])
    took = time.perf_counter() - started
    await connection.close()
    return took, count


def raw_read(base: str) -> tuple[float, int]:
    conn = admin()
    started = time.perf_counter()
    count = 0
    cookie = b""
    while True:
        control = SimplePagedResultsControl(True, size=PAGE, cookie=cookie)
        msgid = conn.search_ext(
            base,
            ldap.SCOPE_ONELEVEL,
            "(objectClass=inetOrgPerson)",
            MAPPING,
            serverctrls=[control],
        )
        _, entries, _, ctrls = conn.result3(msgid)
        count += len(entries)
        cookie = next(
            (c.cookie for c in ctrls if c.controlType == SimplePagedResultsControl.controlType),
            b"",
        )
        if not cookie:
            break
    return time.perf_counter() - started, count


async def fill(count: int) -> str:
    base = new_base()
    conn = admin()

    def add(i: int) -> int:
        e = person(i)
        modlist = [("objectClass", [b"inetOrgPerson"])]
        modlist += [(k, [v.encode()]) for k, v in e.items()]
        msgid: int = conn.add_ext(f"uid={e['uid']},{base}", modlist)
        return msgid

    pipelined(conn, count, add)
    return base


async def main(
    writes: int = int(os.environ.get("BENCH_LDAP_WRITES", "10000")),
    reads: int = int(os.environ.get("BENCH_LDAP_READS", "100000")),
    runs: int = 2,
) -> list[str]:
    lines = []
    best = [float("inf")] * 4
    for _ in range(runs):
        ours_c, ours_m, ours_base = await ours_write(writes)
        raw_c, raw_m, raw_base = raw_write(writes)
        best = [min(b, t) for b, t in zip(best, (ours_c, ours_m, raw_c, raw_m), strict=True)]
        drop(ours_base)
        drop(raw_base)
    lines.append(report(f"ldap target: {writes} creations", best[0], best[2], "raw python-ldap"))
    lines.append(
        report(f"ldap target: {writes} modifications", best[1], best[3], "raw python-ldap")
    )
    base = await fill(reads)
    try:
        ours_best = raw_best = float("inf")
        for _ in range(runs):
            ours_t, ours_n = await ours_read(base)
            raw_t, raw_n = raw_read(base)
            assert ours_n == raw_n == reads, (ours_n, raw_n)
            ours_best, raw_best = min(ours_best, ours_t), min(raw_best, raw_t)
        lines.append(
            report(f"ldap target: read {reads} entries", ours_best, raw_best, "raw paged search")
        )
    finally:
        drop(base)
    return lines
