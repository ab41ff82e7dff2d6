"""The asyncio driver of python-ldap, over a fake libldap connection: the window of operations
in flight, answers matched by message id, and a lost server failing every pending operation
and reconnecting. (On the real slapd: tests/integration/connectors.)"""

import asyncio
import contextlib
import os
import socket
from collections import deque
from typing import Any

import ldap
import pytest
from sequence_runner.adapters.connectors.ldap_client import (
    AsyncLdapConnection,
    DirectoryRefusedError,
    DirectoryUnavailableError,
    describe,
)


class FakeServerConnection:
    """Stands for an LDAPObject: requests get message ids, answers wait in a queue and the
    socket pair's readable end wakes the loop as libldap's descriptor would."""

    def __init__(self, world: "FakeWorld") -> None:
        self.world = world
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.answers: deque[tuple[Any, ...] | BaseException] = deque()
        self.next_id = 0
        self.in_flight = 0

    def set_option(self, *_: Any) -> None:
        pass

    def simple_bind_s(self, dn: str, password: str) -> None:
        if password != "right":
            raise ldap.INVALID_CREDENTIALS({"desc": "Invalid credentials"})

    def fileno(self) -> int:
        return self.reader.fileno()

    def unbind_ext(self) -> None:
        self.reader.close()
        self.writer.close()

    def _send(self, dn: str) -> int:
        self.next_id += 1
        self.in_flight += 1
        self.world.most_in_flight = max(self.world.most_in_flight, self.in_flight)
        msgid = self.next_id
        if self.world.down_after is not None and self.next_id > self.world.down_after:
            return msgid  # the server never answers: it is about to go away
        loop = asyncio.get_running_loop()
        loop.call_later(0.001, self._answer, msgid, dn)
        return msgid

    def _answer(self, msgid: int, dn: str) -> None:
        if dn.startswith("uid=bad"):
            error = ldap.CONSTRAINT_VIOLATION({"desc": "Constraint violation", "msgid": msgid})
            self.answers.append(error)
        else:
            self.answers.append((ldap.RES_ADD, [], msgid, []))
        self.writer.send(b"x")

    def go_down(self) -> None:
        self.answers.append(ldap.SERVER_DOWN({"desc": "Can't contact LDAP server"}))
        self.writer.send(b"x")

    def add_ext(self, dn: str, modlist: Any) -> int:
        return self._send(dn)

    @property
    def _l(self) -> "FakeServerConnection":
        """python-ldap's C object, whose result4 the drain calls directly."""
        return self

    def result4(self, *_: Any) -> tuple[Any, ...]:
        return self.result3()

    def result3(self, *_: Any) -> tuple[Any, ...]:
        with contextlib.suppress(BlockingIOError):
            self.reader.recv(4096)
        if not self.answers:
            return (None, None, None, None)
        answer = self.answers.popleft()
        if isinstance(answer, BaseException):
            raise answer
        self.in_flight -= 1
        return answer


class FakeWorld:
    def __init__(self) -> None:
        self.connections: list[FakeServerConnection] = []
        self.most_in_flight = 0
        self.down_after: int | None = None

    def initialize(self, url: str) -> FakeServerConnection:
        connection = FakeServerConnection(self)
        self.connections.append(connection)
        return connection


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> FakeWorld:
    fake = FakeWorld()
    monkeypatch.setattr(ldap, "initialize", fake.initialize)
    return fake


async def test_at_most_a_window_of_operations_is_in_flight(world: FakeWorld) -> None:
    connection = AsyncLdapConnection("ldap://fake", "cn=admin", "right", window=8, timeout=5)
    await asyncio.gather(*(connection.add(f"uid=u{i}", []) for i in range(200)))
    assert world.most_in_flight == 8
    await connection.close()


async def test_a_refused_operation_fails_alone(world: FakeWorld) -> None:
    connection = AsyncLdapConnection("ldap://fake", "cn=admin", "right", window=4, timeout=5)
    results = await asyncio.gather(
        connection.add("uid=ok1", []),
        connection.add("uid=bad", []),
        connection.add("uid=ok2", []),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], DirectoryRefusedError)
    assert str(results[1]) == "Constraint violation"
    await connection.close()


async def test_a_lost_server_fails_every_pending_operation_and_the_next_one_reconnects(
    world: FakeWorld,
) -> None:
    connection = AsyncLdapConnection("ldap://fake", "cn=admin", "right", window=16, timeout=5)
    await connection.add("uid=first", [])
    world.down_after = 1
    pending = [asyncio.create_task(connection.add(f"uid=u{i}", [])) for i in range(5)]
    await asyncio.sleep(0.01)
    world.connections[0].go_down()
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(isinstance(r, DirectoryUnavailableError) for r in results)
    world.down_after = None
    await connection.add("uid=after", [])
    assert len(world.connections) == 2
    await connection.close()


async def test_a_refused_bind_says_so_and_never_holds_the_password(world: FakeWorld) -> None:
    connection = AsyncLdapConnection("ldap://fake", "cn=admin", "wrong-secret", timeout=5)
    with pytest.raises(DirectoryRefusedError) as refused:
        await connection.add("uid=x", [])
    assert "Invalid credentials" in str(refused.value)
    assert "wrong-secret" not in repr(connection)


def test_a_lost_connection_is_described_with_the_systems_words_for_its_errno() -> None:
    # What libldap raises when the server resets the connection: no "info", an errno.
    error = ldap.SERVER_DOWN({"result": -1, "desc": "Can't contact LDAP server", "errno": 104})
    assert describe(error) == f"Can't contact LDAP server: {os.strerror(104)}"
