"""LDAP target: the entries one level under a base DN (or in its subtree) that have the
definition's object classes.

Each record is an entry's attributes as text (multi-valued ones as sorted lists); its DN is
`<rdn_attribute>=<value>,<base_dn>`, or, in a subtree, `<rdn_attribute>=<value>,` under any
entry below the base: each change of a plan carries the DN it is written to. Create is an add,
update a modify that replaces only the changed attributes (preceded by a modrdn when the RDN
value changed), delete a delete, and
disable sets the ppolicy lock `pwdAccountLockedTime` (removed again when the record comes
back). A write the server refuses fails the sequence with the DN and the server's message; a
server that goes away mid-batch is waited for, and only what it may not have written is
written again, so nothing is duplicated."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import ldap
from ldap.dn import dn2str, escape_dn_chars, str2dn
from ldap.filter import escape_filter_chars
from provisioning_common.definitions import LdapTarget

from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.ldap_client import (
    CUT_SHORT,
    SCOPES,
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
from sequence_runner.domain.collector import collector_paused
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
        self._subtree = target.scope == "subtree"
        # The DNs of the records read that are not `<rdn>=<value>,<base_dn>` (in a sub-OU of a
        # subtree target), by key: `locate` gives them to the plan's changes.
        self._found_at: dict[Any, str] = {}
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
        """Every entry as a record, page by page: the target is never held whole. A server
        that goes away before the first page is waited for; after it, the read fails (the
        paging cookie belongs to the lost connection, and what was handed on cannot be taken
        back), and planning again reads from the start."""
        requested, names = self._requested()
        self._found_at = {}
        read = 0
        for attempt in range(1, self._retry.attempts + 1):
            try:
                async for page in self._connection.paged_search(
                    self._target.base_dn,
                    SCOPES[self._target.scope],
                    self._filter(),
                    requested,
                    self._page_size,
                ):
                    # Thousands of acyclic dicts a page: the collections they would trigger
                    # walk the heap for nothing (a fifth of the read's CPU).
                    with collector_paused():
                        records = [self._record(dn, values, names) for dn, values in page]
                    read += len(records)
                    for record in records:
                        yield record
                return
            except DirectoryUnavailableError as error:
                if read:
                    raise TargetError(
                        f"{self.shown_as}: the directory went away while it was read ({read} "
                        f"entries read): {error}; a partial read cannot be planned against, "
                        "plan again"
                    ) from None
                if attempt == self._retry.attempts:
                    raise TargetError(
                        f"{self.shown_as}: unreachable after {attempt} attempts (search): {error}"
                    ) from None
                await asyncio.sleep(self._retry.backoff_seconds * 2 ** (attempt - 1))
            except DirectoryRefusedError as refused:
                raise self._search_refused(refused) from None

    def _requested(self) -> tuple[list[str], dict[str, str]]:
        """The attributes a search asks for, and each name as the server may spell it."""
        requested = list(self._attributes) if self._attributes is not None else ["*"]
        if self._disable:
            requested.append(LOCK_ATTRIBUTE)  # operational: only returned when asked for
        return requested, {a: a for a in requested} | {a.lower(): a for a in requested}

    async def read_keys(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """The entries of the target whose key attribute has one of `keys`, searched for a
        hundred keys at a time (a revert reads only the records its plan touched)."""
        found: dict[Key, dict[str, Any]] = {}
        wanted = [str(key) for key in keys]
        for start in range(0, len(wanted), _KEYS_PER_SEARCH):
            either = "".join(
                f"({self._key}={escape_filter_chars(key)})"
                for key in wanted[start : start + _KEYS_PER_SEARCH]
            )
            filterstr = f"(&{self._filter()}(|{either}))"
            records = await self._retrying(
                "search", lambda filterstr=filterstr: self._search_all(filterstr)
            )
            for record in records:
                value = record.get(self._key)
                if isinstance(value, str):
                    found[value] = record
        return found

    async def _search_all(self, filterstr: str) -> list[dict[str, Any]]:
        """The entries `filterstr` matches, at once: for a few keys, never the whole target."""
        requested, names = self._requested()
        records: list[dict[str, Any]] = []
        try:
            async for page in self._connection.paged_search(
                self._target.base_dn,
                SCOPES[self._target.scope],
                filterstr,
                requested,
                self._page_size,
            ):
                records.extend(self._record(dn, values, names) for dn, values in page)
        except DirectoryRefusedError as refused:
            raise self._search_refused(refused) from None
        return records

    def _search_refused(self, refused: DirectoryRefusedError) -> TargetError:
        if isinstance(refused.error, CUT_SHORT):
            return TargetError(
                f"{self.shown_as}: the server cut the search short ({refused}); a partial "
                "read cannot be planned against (entries not read would be planned as "
                "deletions). Give the bind account unlimited size and time limits"
            )
        if isinstance(refused.error, ldap.NO_SUCH_OBJECT):
            return TargetError(f"{self.shown_as}: the base DN does not exist")
        if isinstance(refused.error, ldap.INVALID_CREDENTIALS):
            return TargetError(
                f"{self.shown_as}: the bind as {self._connection.bind_dn} was refused: {refused}"
            )
        return TargetError(f"{self.shown_as}: the search was refused: {refused}")

    def _record(
        self, dn: str, values: Mapping[str, list[bytes]], names: dict[str, str]
    ) -> dict[str, Any]:
        # Run once per entry of the target: kept to dictionary lookups (see make bench).
        record: dict[str, Any] = dict.fromkeys(self._always)
        for attribute, raw in values.items():
            name = names.get(attribute) or names.get(attribute.lower()) or attribute
            if name in _NOT_RECORD_ATTRIBUTES and name not in names:
                continue
            if len(raw) == 1:
                # as_directory_value's common case, inlined: one value, as text.
                record[name] = raw[0].decode("utf-8") or None
            else:
                record[name] = as_directory_value(raw)
        value = record.get(self._rdn)
        if not isinstance(value, str) or (
            dn.lower() != f"{self._rdn_lower}={value.lower()}{self._suffix_lower}"
            and dn.lower() != self._dn(value).lower()
        ):
            if not (isinstance(value, str) and self._subtree and self._named_below(dn, value)):
                # Written by other means under another name: the DN this connector would use
                # to update or delete it would reach nothing, or another entry.
                below = "<entry below " if self._subtree else ""
                raise TargetError(
                    f"{self.shown_as}: the entry {dn} is not named {self._rdn}=<value>,"
                    f"{below}{self._target.base_dn}{'>' if below else ''}; it cannot be managed "
                    "by this sequence (rename it or narrow the target with a filter)"
                )
            self._found_at[record.get(self._key)] = dn
        return record

    def _named_below(self, dn: str, rdn_value: str) -> bool:
        """In a subtree: whether `dn` is `<rdn_attribute>=<rdn_value>,` under the base DN."""
        if not dn.lower().endswith(self._suffix_lower):
            return False
        try:
            first = str2dn(dn)[0]
        except ldap.DECODING_ERROR:
            return False
        return (
            len(first) == 1
            and first[0][0].lower() == self._rdn_lower
            and first[0][1].lower() == rdn_value.lower()
        )

    def locate(self, change: PlannedChange) -> PlannedChange:
        """The change with the DN it is written to (an update that renames: the DN before)."""
        return dataclasses.replace(change, dn=self._change_dn(change))

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
                return connection.send_add(self._change_dn(change), self._add_list(change.after))
            case "update":
                assert change.after is not None
                assert change.before is not None
                if self._rdn in change.before:
                    return None
                return connection.send_modify(
                    self._change_dn(change), self._replace_list(change.before, change.after)
                )
            case "delete":
                return connection.send_delete(self._change_dn(change))
            case "disable":
                return connection.send_modify(
                    self._change_dn(change),
                    [(ldap.MOD_REPLACE, LOCK_ATTRIBUTE, [LOCKED_FOR_GOOD.encode()])],
                )
        return None  # pragma: no cover - every action is matched

    async def _settle(self, change: PlannedChange, refused: DirectoryRefusedError) -> None:
        """A refusal that means the change is in the directory already is no failure."""
        if change.action == "create" and isinstance(refused.error, ldap.ALREADY_EXISTS):
            assert change.after is not None
            if await self._holds(self._change_dn(change), change.after):
                return
        if change.action == "delete" and isinstance(refused.error, ldap.NO_SUCH_OBJECT):
            return
        raise refused

    def _change_dn(self, change: PlannedChange) -> str:
        """The entry a change is written to: the DN stored with the plan, else (a plan stored
        before changes carried it) `<rdn>=<value>,<base_dn>`, or where the entry was read."""
        if change.dn is not None:
            return change.dn
        if change.action != "create":
            found = self._found_at.get(change.key)
            if found is not None:
                return found
        # An update's `before` holds only the changed attributes: a renamed entry's old value.
        record = (change.after if change.action == "create" else change.before) or {}
        if self._rdn not in record:
            record = change.after or {}
        return self._dn(str(record.get(self._rdn, change.key)))

    async def _rename(self, change: PlannedChange) -> None:
        """An update whose RDN value changed: a modrdn, then a modify of the other changed
        attributes, in that order. A modrdn that finds the old name gone and the new one there
        was done by an earlier attempt."""
        assert change.after is not None
        assert change.before is not None
        connection = self._connection
        old_dn = self._change_dn(change)
        rdn_text = f"{self._rdn}={escape_dn_chars(str(change.after[self._rdn]))}"
        # The entry keeps its parent (a sub-OU of a subtree target).
        dn = f"{rdn_text},{_parent_of(old_dn)}"
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
        if type(value) is str and value:
            return [value.encode("utf-8")]  # the common case, once per attribute written
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


def _parent_of(dn: str) -> str:
    """The DN without its first RDN (its escapes kept, so it names the same entry)."""
    return str(dn2str(str2dn(dn)[1:]))
