"""python-ldap driven from asyncio: many operations in flight on one connection, none blocking.

libldap sends a request at once and hands its answer back by message id, so one connection
can carry a window of operations: the descriptor is watched with `loop.add_reader`, answers
are drained with `result3(timeout=0)` and each resolves the future of its message id (a
search's with the entries gathered until its result). The
window is bounded because slapd dropped a client that pipelined without bound. When the
server goes away every pending operation fails with `DirectoryUnavailableError` and the next
operation opens a new connection."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import ldap
from ldap.controls import DecodeControlTuples, SimplePagedResultsControl

from sequence_runner.domain.collector import collector_paused

# What a lost or unreachable server raises; anything else is the server's answer to a request.
_UNAVAILABLE = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT, ldap.UNAVAILABLE, ldap.BUSY)
# The server answered a search, but with fewer entries than there are.
CUT_SHORT = (ldap.SIZELIMIT_EXCEEDED, ldap.TIMELIMIT_EXCEEDED, ldap.ADMINLIMIT_EXCEEDED)
# A definition's `scope`: one level under the base DN, or its whole subtree.
SCOPES = {"one": ldap.SCOPE_ONELEVEL, "subtree": ldap.SCOPE_SUBTREE}

Entry = tuple[str, dict[str, list[bytes]]]
Modlist = list[tuple[Any, ...]]
Answer = asyncio.Future[tuple[list[Entry], list[Any]]]


class DirectoryUnavailableError(Exception):
    """The directory could not be reached or went away; retrying later may succeed."""


class DirectoryRefusedError(Exception):
    """The directory answered an operation with an error (schema, constraint, exists...)."""

    def __init__(self, error: ldap.LDAPError) -> None:
        self.error = error
        super().__init__(describe(error))


def describe(error: BaseException) -> str:
    """The server's answer in one line: its description and its diagnostic message."""
    if isinstance(error, ldap.LDAPError) and error.args and isinstance(error.args[0], dict):
        info = error.args[0]
        desc = str(info.get("desc", type(error).__name__))
        # python-ldap's wrapper adds the system's words for errno; the drain calls the C
        # object without it (see _drain_answers), so they are added here.
        extra = str(info.get("info") or _strerror(info.get("errno"))).strip()
        return f"{desc}: {extra}" if extra else desc
    return str(error) or type(error).__name__


def _strerror(errno: Any) -> str:
    return os.strerror(errno) if isinstance(errno, int) else ""


@dataclass
class _Pending:
    future: asyncio.Future[tuple[list[Entry], list[Any]]]
    sent_at: float
    entries: list[Entry] = field(default_factory=list)


class AsyncLdapConnection:
    """One bound connection; `open` is called lazily by the first operation."""

    def __init__(
        self, url: str, bind_dn: str, password: str, *, window: int = 128, timeout: float = 30
    ) -> None:
        self.url = url
        self.bind_dn = bind_dn
        self._password = password
        self._window = asyncio.Semaphore(window)
        self._timeout = timeout
        self._conn: Any = None
        self._fd: int | None = None
        self._pending: dict[int, _Pending] = {}
        self._opening: asyncio.Lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:  # never the password
        return f"AsyncLdapConnection({self.url!r}, bind_dn={self.bind_dn!r})"

    async def open(self) -> None:
        async with self._opening:
            if self._conn is not None:
                return
            loop = asyncio.get_running_loop()
            # Connecting and binding block in libldap; a thread keeps the loop free.
            conn = await asyncio.to_thread(self._connect)
            self._loop = loop
            self._conn = conn
            self._fd = conn.fileno()
            loop.add_reader(self._fd, self._drain)
            self._watchdog = loop.call_later(self._timeout / 4, self._watch)

    def _watch(self) -> None:
        """An operation unanswered for `timeout` seconds means a server that hangs: the
        connection is dropped like a lost one. One timer per connection, not one per operation."""
        if self._conn is None or self._loop is None:
            return
        oldest = min((p.sent_at for p in self._pending.values()), default=None)
        if oldest is not None and self._loop.time() - oldest > self._timeout:
            self._broken(DirectoryUnavailableError(f"no answer within {self._timeout:g}s"))
            return
        self._watchdog = self._loop.call_later(self._timeout / 4, self._watch)

    def _connect(self) -> Any:
        conn = ldap.initialize(self.url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self._timeout)
        try:
            conn.simple_bind_s(self.bind_dn, self._password)
        except _UNAVAILABLE as error:
            raise DirectoryUnavailableError(describe(error)) from None
        except ldap.LDAPError as error:
            raise DirectoryRefusedError(error) from None
        return conn

    async def close(self) -> None:
        self._broken(DirectoryUnavailableError("connection closed"))

    def _broken(self, error: Exception) -> None:
        """Forget the connection and fail every operation still waiting on it."""
        conn, self._conn = self._conn, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._fd = None
        pending, self._pending = self._pending, {}
        for waiting in pending.values():
            if not waiting.future.done():
                waiting.future.set_exception(error)
        if conn is not None:
            with contextlib.suppress(ldap.LDAPError):
                conn.unbind_ext()

    def _drain(self) -> None:
        """Every answer that has arrived, each to its operation's future."""
        # A search's entries arrive here by the thousand and are kept until its page is done:
        # acyclic tuples and dicts the collector need not walk while they come in.
        with collector_paused():
            self._drain_answers()

    def _drain_answers(self) -> None:
        while self._conn is not None:
            try:
                # all=0: one message per call, a search's entries one by one. With all=1 an
                # unfinished search answers None after each entry it reads, which cannot be
                # told from "nothing more has arrived".
                # Called once per entry read, so straight on python-ldap's C object (`_l`):
                # LDAPObject.result3 adds four Python calls, a lock and a control decoding per
                # entry (a fifth of a 100,000-entry read, see make bench), and only this loop's
                # thread uses the connection once it is bound.
                answer = self._conn._l.result4(ldap.RES_ANY, 0, 0, 0, 0, 0)
            except _UNAVAILABLE as error:
                self._broken(DirectoryUnavailableError(describe(error)))
                return
            except ldap.LDAPError as error:
                info = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
                waiting = self._pending.pop(info.get("msgid", -1), None)
                if waiting is None:  # an answer nobody waits for any more (a cancelled call)
                    continue
                if not waiting.future.done():
                    waiting.future.set_exception(DirectoryRefusedError(error))
                continue
            rtype = answer[0] if answer is not None else None
            if rtype is None:
                return
            if rtype == ldap.RES_SEARCH_ENTRY:
                waiting = self._pending.get(answer[2])
                if waiting is not None:
                    waiting.entries.extend(answer[1])
                continue
            if rtype == ldap.RES_SEARCH_REFERENCE:
                continue  # continuation references are not followed
            waiting = self._pending.pop(answer[2], None)
            if waiting is not None and not waiting.future.done():
                waiting.future.set_result((waiting.entries, DecodeControlTuples(answer[3])))

    async def submit(self, send: Callable[[Any], int]) -> Answer:
        """Send one operation as soon as the window has room; the returned future resolves
        with its answer (entries, controls). Writers send a whole batch this way, then wait
        for the answers: no task per operation."""
        await self._window.acquire()
        try:
            if self._conn is None:
                await self.open()
            loop = self._loop
            assert loop is not None
            try:
                msgid = send(self._conn)
            except _UNAVAILABLE as error:
                self._broken(DirectoryUnavailableError(describe(error)))
                raise DirectoryUnavailableError(describe(error)) from None
            except ldap.LDAPError as error:
                raise DirectoryRefusedError(error) from None
        except BaseException:
            self._window.release()
            raise
        future: Answer = loop.create_future()
        future.add_done_callback(self._answered)
        self._pending[msgid] = _Pending(future, loop.time())
        return future

    def _answered(self, _: Answer) -> None:
        self._window.release()

    async def _call(self, send: Callable[[Any], int]) -> tuple[list[Entry], list[Any]]:
        return await (await self.submit(send))

    def send_add(self, dn: str, modlist: Modlist) -> Callable[[Any], int]:
        return lambda c: c.add_ext(dn, modlist)

    def send_modify(self, dn: str, modlist: Modlist) -> Callable[[Any], int]:
        return lambda c: c.modify_ext(dn, modlist)

    def send_delete(self, dn: str) -> Callable[[Any], int]:
        return lambda c: c.delete_ext(dn)

    async def add(self, dn: str, modlist: Modlist) -> None:
        await self._call(lambda c: c.add_ext(dn, modlist))

    async def modify(self, dn: str, modlist: Modlist) -> None:
        await self._call(lambda c: c.modify_ext(dn, modlist))

    async def rename(self, dn: str, new_rdn: str) -> None:
        await self._call(lambda c: c.rename(dn, new_rdn, None, 1))

    async def delete(self, dn: str) -> None:
        await self._call(lambda c: c.delete_ext(dn))

    async def search_one(self, dn: str, attributes: list[str]) -> Entry | None:
        try:
            entries, _ = await self._call(
                lambda c: c.search_ext(dn, ldap.SCOPE_BASE, "(objectClass=*)", attributes)
            )
        except DirectoryRefusedError as refused:
            if isinstance(refused.error, ldap.NO_SUCH_OBJECT):
                return None
            raise
        return entries[0] if entries else None

    async def paged_search(
        self, base: str, scope: int, filterstr: str, attributes: list[str], page_size: int
    ) -> AsyncIterator[list[Entry]]:
        """Pages of entries (RFC 2696). A search the server cut short raises DirectoryRefusedError
        with its SIZELIMIT/TIMELIMIT/ADMINLIMIT error: the caller must not take it as all."""
        cookie = b""
        while True:
            control = SimplePagedResultsControl(True, size=page_size, cookie=cookie)

            def send(conn: Any, control: Any = control) -> int:
                msgid: int = conn.search_ext(
                    base, scope, filterstr, attributes, serverctrls=[control]
                )
                return msgid

            entries, ctrls = await self._call(send)
            yield entries
            cookie = b""
            for ctrl in ctrls:
                if ctrl.controlType == SimplePagedResultsControl.controlType:
                    cookie = ctrl.cookie
            if not cookie:
                return
