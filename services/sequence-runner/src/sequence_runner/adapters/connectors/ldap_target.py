"""LDAP target: the entries one level under a base DN that have the definition's object classes.

Each record is an entry's attributes as text (multi-valued ones as sorted lists); its DN is
`<rdn_attribute>=<value>,<base_dn>`. Create is an add, update a modify that replaces only the
changed attributes (preceded by a modrdn when the RDN value changed), delete a delete, and
disable sets the ppolicy lock `pwdAccountLockedTime` (removed again when the record comes
back). A write the server refuses fails the sequence with the DN and the server's message; a
server that goes away mid-batch is waited for, and only what it may not have written is
written again, so nothing is duplicated."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import ldap
from ldap.dn import escape_dn_chars
from ldap.filter import escape_filter_chars
from provisioning_common.definitions import LdapTarget

from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.ldap_client import (
    CUT_SHORT,
    AsyncLdapConnection,
    DirectoryRefusedError,
    DirectoryUnavailableError,
    Modlist,
)
from sequence_runner.adapters.connectors.ldap_values import (
    as_directory_record,
    as_directory_value,
    encoded,
)
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.domain.records import Key, PlannedChange, TargetRules

logger = logging.getLogger(__name__)

LOCK_ATTRIBUTE = "pwdAccountLockedTime"
# Returned with "*" but not attributes of a record.
_NOT_RECORD_ATTRIBUTES = frozenset({"objectClass", "objectclass"})
# Keys looked up by one search when a revert reads the target by key: one filter of a hundred
# alternatives stays well within what a server takes.
_KEYS_PER_SEARCH = 100
# The ppolicy value meaning "locked by an administrator, until unlocked".
LOCKED_FOR_GOOD = "000001010000Z"


class LdapTargetConnector:
    def __init__(
        self,
        connection_name: str,
        connection: AsyncLdapConnection,
        target: LdapTarget,
        key: str,
        attributes: Sequence[str] | None,
        retry: RetryPolicy,
        page_size: int = 1000,
    ) -> None:
        self._name = connection_name
        self._connection = connection
        self._target = target
        self._key = key
        self._retry = retry
        self._page_size = page_size
        self._rdn = target.rdn_attribute
        self._disable = target.deprovision == "disable"
        self._is_group = any(c.lower() == "groupofnames" for c in target.object_classes)
        # The attributes read: those the sequence writes (all user attributes without a mapping).
        self._attributes: list[str] | None = None
        if attributes is not None:
            names = {a.lower(): a for a in attributes}
            names.setdefault(key.lower(), key)
            names.setdefault(self._rdn.lower(), self._rdn)
            self._attributes = list(names.values())
        # Every record has these, None when the entry lacks them (a directory has no null).
        self._always = list(self._attributes or []) + ([LOCK_ATTRIBUTE] if self._disable else [])
        self._rdn_lower = self._rdn.lower()
        self._suffix_lower = "," + target.base_dn.lower()
        self.rules = TargetRules(
            stored_as=self._stored_as,
            absent_is_empty=True,
            deprovision=target.deprovision,
            is_disabled=lambda record: record.get(LOCK_ATTRIBUTE) is not None,
        )

    @property
    def shown_as(self) -> str:
        return f"connection {self._name!r} ({self._connection.url}), {self._target.base_dn}"

    def _stored_as(self, attributes: dict[str, Any]) -> dict[str, Any]:
        stored = as_directory_record(attributes)
        for name, reference in self._target.references.items():
            value = stored.get(name)
            if value is not None:
                keys = [value] if isinstance(value, str) else value
                stored[name] = as_directory_value(
                    [
                        f"{reference.rdn_attribute}={escape_dn_chars(k)},{reference.base_dn}"
                        for k in keys
                    ]
                )
        if self._disable:
            # A record in the source is enabled: a locked entry that comes back is unlocked.
            stored[LOCK_ATTRIBUTE] = None
        return stored

    # ------------------------------------------------------------------ reading

    async def prepare(self) -> None:
        await self._retrying("bind", self._connection.open)

    def _filter(self) -> str:
        classes = "".join(
            f"(objectClass={escape_filter_chars(c)})" for c in self._target.object_classes
        )
        return f"(&{classes}{self._target.filter or ''})"

    async def read_all(self) -> AsyncIterator[dict[str, Any]]:
        records = await self._retrying("search", self._read_everything)
        for record in records:
            yield record

    async def read_keys(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """The entries of the target whose key attribute has one of `keys`, searched for a
        hundred keys at a time."""
        found: dict[Key, dict[str, Any]] = {}
        wanted = [str(key) for key in keys]
        for start in range(0, len(wanted), _KEYS_PER_SEARCH):
            either = "".join(
                f"({self._key}={escape_filter_chars(key)})"
                for key in wanted[start : start + _KEYS_PER_SEARCH]
            )
            filterstr = f"(&{self._filter()}(|{either}))"
            records = await self._retrying(
                "search", lambda filterstr=filterstr: self._read_everything(filterstr)
            )
            for record in records:
                value = record.get(self._key)
                if isinstance(value, str):
                    found[value] = record
        return found

    async def _read_everything(self, filterstr: str | None = None) -> list[dict[str, Any]]:
        requested = list(self._attributes) if self._attributes is not None else ["*"]
        if self._disable:
            requested.append(LOCK_ATTRIBUTE)  # operational: only returned when asked for
        names = {a: a for a in requested} | {a.lower(): a for a in requested}
        records: list[dict[str, Any]] = []
        try:
            async for page in self._connection.paged_search(
                self._target.base_dn,
                ldap.SCOPE_ONELEVEL,
                filterstr or self._filter(),
                requested,
                self._page_size,
            ):
                for dn, values in page:
                    records.append(self._record(dn, values, names))
        except DirectoryRefusedError as refused:
            if isinstance(refused.error, CUT_SHORT):
                raise TargetError(
                    f"{self.shown_as}: the server cut the search short ({refused}); a partial "
                    "read cannot be planned against (entries not read would be planned as "
                    "deletions). Give the bind account unlimited size and time limits"
                ) from None
            if isinstance(refused.error, ldap.NO_SUCH_OBJECT):
                raise TargetError(f"{self.shown_as}: the base DN does not exist") from None
            raise TargetError(f"{self.shown_as}: the search was refused: {refused}") from None
        return records

    def _record(
        self, dn: str, values: Mapping[str, list[bytes]], names: dict[str, str]
    ) -> dict[str, Any]:
        # Run once per entry of the target: kept to dictionary lookups (see make bench).
        record: dict[str, Any] = dict.fromkeys(self._always)
        for attribute, raw in values.items():
            name = names.get(attribute) or names.get(attribute.lower()) or attribute
            if name in _NOT_RECORD_ATTRIBUTES and name not in names:
                continue
            record[name] = as_directory_value(raw)
        value = record.get(self._rdn)
        if not isinstance(value, str) or (
            dn.lower() != f"{self._rdn_lower}={value.lower()}{self._suffix_lower}"
            and dn.lower() != self._dn(value).lower()
        ):
            # Written by other means under another name: the DN this connector would use to
            # update or delete it would reach nothing, or another entry.
            raise TargetError(
                f"{self.shown_as}: the entry {dn} is not named {self._rdn}=<value>,"
                f"{self._target.base_dn}; it cannot be managed by this sequence (rename it or "
                "narrow the target with a filter)"
            )
        return record

    def _dn(self, rdn_value: str) -> str:
        return f"{self._rdn}={escape_dn_chars(rdn_value)},{self._target.base_dn}"

    # ------------------------------------------------------------------ writing

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        remaining = list(changes)
        written = 0
        for attempt in range(1, self._retry.attempts + 1):
            results = await self._attempt(remaining)
            refused: list[tuple[PlannedChange, BaseException]] = []
            unfinished: list[PlannedChange] = []
            for change, result in zip(remaining, results, strict=True):
                if result is None:
                    written += 1
                elif isinstance(result, DirectoryUnavailableError):
                    # It may or may not have reached the server before it went away; writing
                    # it again is safe (see _attempt).
                    unfinished.append(change)
                elif isinstance(result, DirectoryRefusedError):
                    refused.append((change, result))
                else:
                    raise result
            if refused:
                change, error = refused[0]
                more = (
                    f" ({len(refused) - 1} more refused in this batch)" if len(refused) > 1 else ""
                )
                raise TargetError(
                    f"{self.shown_as}: the server refused the {change.action} of "
                    f"{self._change_dn(change)}: {error}{more}; {written} of the batch's "
                    f"{len(changes)} changes were written"
                )
            if not unfinished:
                return
            remaining = unfinished
            if attempt < self._retry.attempts:
                pause = self._retry.backoff_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "%s unreachable with %d changes of the batch unwritten; retrying in %.1fs",
                    self.shown_as,
                    len(remaining),
                    pause,
                )
                await asyncio.sleep(pause)
        raise TargetError(
            f"{self.shown_as}: unreachable after {self._retry.attempts} attempts; {written} of "
            f"the batch's {len(changes)} changes were written"
        )

    async def _attempt(self, changes: Sequence[PlannedChange]) -> list[BaseException | None]:
        """Every change of the batch sent through the window, then every answer collected.
        A change that is one operation (most) is sent directly; a rename (two operations in
        order) gets a task of its own. Writing a change again finds it done: the same plan
        applied twice (a runner restarted mid-apply, a batch retried after the server went
        away) gives the same directory; an answer that may mean "done already" is settled
        after (see _settle), and an entry that exists with other values is still refused."""
        loop = asyncio.get_running_loop()
        sent: list[asyncio.Future[Any]] = []
        lost: DirectoryUnavailableError | None = None
        for change in changes:
            if lost is not None:
                sent.append(_failed(loop, lost))
                continue
            operation = self._one_operation(change)
            if operation is None:
                sent.append(asyncio.ensure_future(self._rename(change)))
                continue
            try:
                sent.append(await self._connection.submit(operation))
            except DirectoryUnavailableError as error:
                lost = error  # the rest would only wait for the same dead server
                sent.append(_failed(loop, error))
            except DirectoryRefusedError as error:
                sent.append(_failed(loop, error))
        results: list[BaseException | None] = []
        for change, answer in zip(changes, sent, strict=True):
            try:
                await answer
            except DirectoryRefusedError as refused:
                try:
                    await self._settle(change, refused)
                except (DirectoryRefusedError, DirectoryUnavailableError) as error:
                    results.append(error)
                    continue
            except DirectoryUnavailableError as error:
                results.append(error)
                continue
            results.append(None)
        return results

    def _one_operation(self, change: PlannedChange) -> Callable[[Any], int] | None:
        connection = self._connection
        match change.action:
            case "create":
                assert change.after is not None
                dn = self._dn(str(change.after[self._rdn]))
                return connection.send_add(dn, self._add_list(change.after))
            case "update":
                assert change.after is not None
                assert change.before is not None
                if self._rdn in change.before:
                    return None
                dn = self._dn(str(change.after[self._rdn]))
                return connection.send_modify(dn, self._replace_list(change.before, change.after))
            case "delete":
                assert change.before is not None
                return connection.send_delete(self._dn(str(change.before[self._rdn])))
            case "disable":
                assert change.before is not None
                return connection.send_modify(
                    self._dn(str(change.before[self._rdn])),
                    [(ldap.MOD_REPLACE, LOCK_ATTRIBUTE, [LOCKED_FOR_GOOD.encode()])],
                )
        return None  # pragma: no cover - every action is matched

    async def _settle(self, change: PlannedChange, refused: DirectoryRefusedError) -> None:
        """A refusal that means the change is in the directory already is no failure."""
        if change.action == "create" and isinstance(refused.error, ldap.ALREADY_EXISTS):
            assert change.after is not None
            if await self._holds(self._dn(str(change.after[self._rdn])), change.after):
                return
        if change.action == "delete" and isinstance(refused.error, ldap.NO_SUCH_OBJECT):
            return
        raise refused

    def _change_dn(self, change: PlannedChange) -> str:
        record = change.after if change.action in ("create", "update") else change.before
        return self._dn(str((record or {}).get(self._rdn, change.key)))

    async def _rename(self, change: PlannedChange) -> None:
        """An update whose RDN value changed: a modrdn, then a modify of the other changed
        attributes, in that order. A modrdn that finds the old name gone and the new one there
        was done by an earlier attempt."""
        assert change.after is not None
        assert change.before is not None
        connection = self._connection
        dn = self._dn(str(change.after[self._rdn]))
        old_dn = self._dn(str(change.before[self._rdn]))
        rdn_text = f"{self._rdn}={escape_dn_chars(str(change.after[self._rdn]))}"
        try:
            await connection.rename(old_dn, rdn_text)
        except DirectoryRefusedError as refused:
            renamed = isinstance(refused.error, ldap.NO_SUCH_OBJECT) and (
                await connection.search_one(dn, ["1.1"]) is not None
            )
            if not renamed:
                raise
        changed = {n: v for n, v in change.before.items() if n != self._rdn}
        if changed:
            await connection.modify(dn, self._replace_list(changed, change.after))

    async def _holds(self, dn: str, wanted: Mapping[str, Any]) -> bool:
        """Whether the entry at `dn` already has exactly the wanted values."""
        names = [n for n in wanted if n.lower() != "objectclass"]
        found = await self._connection.search_one(dn, names)
        if found is None:
            return False
        have = {a.lower(): as_directory_value(v) for a, v in found[1].items()}
        return all(have.get(n.lower()) == as_directory_value(wanted[n]) for n in names)

    def _values(self, name: str, value: Any) -> list[bytes]:
        values = encoded(as_directory_value(value))
        if not values and name.lower() == "member" and self._is_group:
            # groupOfNames must have a member: an empty group keeps one empty value, which
            # reads back as no member at all.
            return [b""]
        return values

    def _add_list(self, after: Mapping[str, Any]) -> Modlist:
        modlist: Modlist = [("objectClass", [c.encode() for c in self._target.object_classes])]
        names = {n.lower() for n in after}
        for name, value in after.items():
            values = self._values(name, value)
            if values and name.lower() != "objectclass":
                modlist.append((name, values))
        if self._is_group and "member" not in names:
            modlist.append(("member", [b""]))
        return modlist

    def _replace_list(self, names: Mapping[str, Any], after: Mapping[str, Any]) -> Modlist:
        # A replace with no values removes the attribute, and is no error if it is absent.
        return [
            (ldap.MOD_REPLACE, name, self._values(name, after.get(name)) or None)
            for name in names
            if name.lower() != "objectclass"
        ]

    # ------------------------------------------------------------------ retries

    async def _retrying(self, what: str, operation: Any) -> Any:
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return await operation()
            except DirectoryUnavailableError as error:
                if attempt == self._retry.attempts:
                    raise TargetError(
                        f"{self.shown_as}: unreachable after {attempt} attempts ({what}): {error}"
                    ) from None
                await asyncio.sleep(self._retry.backoff_seconds * 2 ** (attempt - 1))
            except DirectoryRefusedError as refused:
                if what == "bind":
                    raise TargetError(
                        f"{self.shown_as}: the bind as {self._connection.bind_dn} was refused: "
                        f"{refused}"
                    ) from None
                raise TargetError(f"{self.shown_as}: the {what} was refused: {refused}") from None
        raise AssertionError("unreachable")  # pragma: no cover - attempts >= 1


def _failed(loop: asyncio.AbstractEventLoop, error: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = loop.create_future()
    future.set_exception(error)
    return future
