"""The LDAP target on slapd against raw python-ldap on the same server: applying 10,000
creations then 10,000 modifications with the same window of operations in flight, and reading
100,000 entries as a target against a raw paged search.

The same work on both sides: the same entries and attributes, the same window (128) for
writes, a modification replacing the same one attribute, pages of the same size and the same
requested attributes for reads. The raw read does less: it keeps the values as bytes, where
the target decodes each into the text the planner compares. Each run alternates which side
goes first, so neither always meets the server fresh; the best run of each side is the ratio,
and the spread of the per-run ratios and the client's CPU seconds (the work that is ours,
whatever else loads the machine) are printed with it."""

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Took:
    """Wall-clock and this process's CPU seconds of one measured phase."""

    wall: float
    cpu: float


class Clock:
    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def took(self) -> Took:
        return Took(time.perf_counter() - self._wall, time.process_time() - self._cpu)


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


async def ours_write(count: int) -> tuple[Took, Took, str]:
    base = new_base()
    connection = AsyncLdapConnection(URL, ADMIN, PASSWORD, window=WINDOW)
    writer = target(base, connection)
    await writer.prepare()
    creates = [
        PlannedChange(seq=i, action="create", key=f"u{i:07d}", before=None, after=person(i))
        for i in range(count)
    ]
    clock = Clock()
    for start in range(0, count, BATCH):
        await writer.apply(creates[start : start + BATCH])
    created = clock.took()
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
    clock = Clock()
    for start in range(0, count, BATCH):
        await writer.apply(updates[start : start + BATCH])
    modified = clock.took()
    await connection.close()
    return created, modified, base


def raw_write(count: int) -> tuple[Took, Took, str]:
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

    clock = Clock()
    pipelined(conn, count, add)
    created = clock.took()
    clock = Clock()
    pipelined(conn, count, modify)
    modified = clock.took()
    return created, modified, base


async def ours_read(base: str) -> tuple[Took, int]:
    connection = AsyncLdapConnection(URL, ADMIN, PASSWORD, window=WINDOW)
    reader = target(base, connection)
    await reader.prepare()
    clock = Clock()
    count = 0
    async for _ in reader.read_all():
        count += 1  # the records are not kept, as the raw read keeps no entries
    took = clock.took()
    await connection.close()
    return took, count


def raw_read(base: str) -> tuple[Took, int]:
    conn = admin()
    clock = Clock()
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
    return clock.took(), count


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


class Figures:
    """The runs of one comparison: the best of each side and the ratio of each run."""

    def __init__(self, name: str, baseline: str) -> None:
        self.name = name
        self.baseline = baseline
        self.ours: list[Took] = []
        self.raw: list[Took] = []

    def add(self, ours: Took, raw: Took) -> None:
        self.ours.append(ours)
        self.raw.append(raw)

    def lines(self) -> list[str]:
        best_ours = min(t.wall for t in self.ours)
        best_raw = min(t.wall for t in self.raw)
        ratios = [o.wall / r.wall for o, r in zip(self.ours, self.raw, strict=True)]
        cpu = min(t.cpu for t in self.ours) / max(1e-9, min(t.cpu for t in self.raw))
        spread = (
            f"{'':<44} per run {min(ratios):.2f}x to {max(ratios):.2f}x over {len(ratios)} runs; "
            f"client CPU {min(t.cpu for t in self.ours):.2f} s vs "
            f"{min(t.cpu for t in self.raw):.2f} s, ratio {cpu:.2f}x"
        )
        print(spread, flush=True)
        return [report(self.name, best_ours, best_raw, self.baseline), spread]


async def main(
    writes: int = int(os.environ.get("BENCH_LDAP_WRITES", "10000")),
    reads: int = int(os.environ.get("BENCH_LDAP_READS", "100000")),
    runs: int = int(os.environ.get("BENCH_LDAP_RUNS", "3")),
) -> list[str]:
    creations = Figures(f"ldap target: {writes} creations", "raw python-ldap")
    modifications = Figures(f"ldap target: {writes} modifications", "raw python-ldap")
    for run in range(runs):
        if run % 2 == 0:
            ours_c, ours_m, ours_base = await ours_write(writes)
            raw_c, raw_m, raw_base = raw_write(writes)
        else:
            raw_c, raw_m, raw_base = raw_write(writes)
            ours_c, ours_m, ours_base = await ours_write(writes)
        creations.add(ours_c, raw_c)
        modifications.add(ours_m, raw_m)
        drop(ours_base)
        drop(raw_base)
    lines = creations.lines() + modifications.lines()
    base = await fill(reads)
    try:
        reading = Figures(f"ldap target: read {reads} entries", "raw paged search")
        for run in range(runs):
            if run % 2 == 0:
                ours_t, ours_n = await ours_read(base)
                raw_t, raw_n = raw_read(base)
            else:
                raw_t, raw_n = raw_read(base)
                ours_t, ours_n = await ours_read(base)
            assert ours_n == raw_n == reads, (ours_n, raw_n)
            reading.add(ours_t, raw_t)
        lines += reading.lines()
    finally:
        drop(base)
    return lines
