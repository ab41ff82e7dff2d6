"""SCIM 2.0 target: the Users or Groups of a service provider, one resource per record.

Records are flat (the planner's view); `scim_paths` places each attribute in the resource.
A resource is found by its key attribute (`userName`, `displayName` or `externalId`, as the
definition says); its SCIM `id` is the server's and is looked up, never planned."""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from provisioning_common.definitions import ScimTarget

from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.scim_client import (
    ScimAnswer,
    ScimService,
    ScimUnavailableError,
)
from sequence_runner.adapters.connectors.scim_paths import (
    EMPTY,
    ScimPath,
    parse_path,
    patch_operation,
    paths_for,
    read_value,
    write_value,
)
from sequence_runner.domain.records import PlannedChange, TargetRules

logger = logging.getLogger(__name__)

SCHEMAS = {
    "User": "urn:ietf:params:scim:schemas:core:2.0:User",
    "Group": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
ACTIVE = "active"


class ScimRefusedError(Exception):
    """The server refused one change for good (a 4xx that waiting does not cure)."""


class ScimTargetConnector:
    # Changes per batch: each is a request of its own, and a batch's are sent at once.
    apply_batch_size = 500

    def __init__(
        self,
        connection_name: str,
        service: ScimService,
        target: ScimTarget,
        key: str,
        attributes: Sequence[str],
    ) -> None:
        self._name = connection_name
        self._service = service
        self._target = target
        self._resource = target.resource
        self._endpoint = "/Users" if target.resource == "User" else "/Groups"
        self._key = key
        names = list(dict.fromkeys([key, *attributes]))
        self._paths = paths_for(names, target.attributes)
        self._disable = target.deprovision == "disable"
        # The attribute holding `active` (mapped, or added to read and re-enable disabled ones).
        self._active = next((n for n, p in self._paths.items() if p.text == ACTIVE), None)
        if self._disable and self._active is None:
            self._active = ACTIVE
            self._paths[ACTIVE] = parse_path(ACTIVE)
        self._members = next(
            (n for n, p in self._paths.items() if p.text.lower() == "members"), None
        )
        self._ids: dict[Any, str] = {}  # key -> SCIM id, learnt by reading and creating
        self._member_ids: dict[str, str] | None = None  # a member's key -> its User id
        active = self._active
        self.rules = TargetRules(
            stored_as=self._stored_as,
            absent_is_empty=True,
            deprovision=target.deprovision,
            is_disabled=(lambda record: record.get(active) is False) if active else None,
        )

    @property
    def shown_as(self) -> str:
        return f"connection {self._name!r} ({self._service.base_url}), {self._resource}s"

    def _stored_as(self, attributes: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for name, value in attributes.items():
            if value in EMPTY:
                value = None  # a SCIM server leaves empty attributes out
            elif name == self._active and isinstance(value, str):
                value = value.strip().lower() == "true"
            elif name == self._members:
                value = sorted(str(k) for k in ([value] if isinstance(value, str) else value))
            stored[name] = value
        if self._disable and self._active is not None and self._active not in attributes:
            # A record in the source is enabled: a disabled resource that comes back is enabled.
            stored[self._active] = True
        return stored

    # ------------------------------------------------------------------ reading

    async def prepare(self) -> None:
        """Nothing to create on a SCIM server; the first request discovers its resource types."""

    async def read_all(self) -> AsyncIterator[dict[str, Any]]:
        ids = await self._user_ids_by_id() if self._members else {}
        async for resource in self._every(self._resource, self._target.filter):
            record = {name: read_value(resource, path) for name, path in self._paths.items()}
            if self._members:
                record[self._members] = sorted(
                    ids.get(str(m.get("value")), str(m.get("value")))
                    for m in resource.get("members") or []
                    if isinstance(m, Mapping)
                )
            record["_id"] = resource.get("id")
            if record.get(self._key) is not None:
                self._ids[record[self._key]] = str(resource.get("id"))
            yield record

    async def _every(
        self, resource: str, scim_filter: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every resource, by pages of startIndex/count (RFC 7644 §3.4.2.4). One page is not
        trusted to be all: pages are read until totalResults is reached, and a page that comes
        back empty before that fails the read, since planning against a partial read would
        delete what it missed."""
        start, seen, total = 1, 0, None
        while total is None or seen < total:
            answer = await self._checked(
                "read", self._service.page(resource, start, self._service.page_size, scim_filter)
            )
            payload = answer.payload or {}
            total = int(payload.get("totalResults", 0))
            page = payload.get("Resources") or []
            if not page:
                break
            for found in page:
                yield found
            seen += len(page)
            start += len(page)
        if total is not None and seen < total:
            raise TargetError(
                f"{self.shown_as}: the server announced {total} resources but its pages "
                f"ended after {seen}; a partial read cannot be planned against"
            )

    async def _checked(self, what: str, request: Any) -> ScimAnswer:
        try:
            answer: ScimAnswer = await request
        except ScimUnavailableError as error:
            raise TargetError(f"{self.shown_as}: the {what} failed: {error}") from None
        if not answer.ok:
            raise TargetError(f"{self.shown_as}: the {what} was refused: {answer.detail}")
        return answer

    async def _user_ids_by_id(self) -> dict[str, str]:
        """Every User's id -> its member key, so a group's members read as keys."""
        by_id: dict[str, str] = {}
        member_key = parse_path(self._target.member_key)
        async for user in self._every("User"):
            value = read_value(user, member_key)
            if value is not None:
                by_id[str(user.get("id"))] = str(value)
        self._member_ids = {key: id for id, key in by_id.items()}
        return by_id

    # ------------------------------------------------------------------ writing

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        if not changes:
            return
        # After a restart the ids learnt while planning are gone: one paged read finds them.
        if any(c.action != "create" and not c.by_id and c.key not in self._ids for c in changes):
            async for _ in self.read_all():
                pass
        if self._members and self._member_ids is None:
            await self._user_ids_by_id()
        results = await asyncio.gather(
            *(self._apply_one(change) for change in changes), return_exceptions=True
        )
        written = sum(1 for r in results if r is None)
        failures = [(c, r) for c, r in zip(changes, results, strict=True) if r is not None]
        if not failures:
            return
        for _, error in failures:
            if not isinstance(error, ScimRefusedError | ScimUnavailableError):
                raise error
        change, error = failures[0]
        more = f" ({len(failures) - 1} more failed in this batch)" if len(failures) > 1 else ""
        what = (
            "the server refused"
            if isinstance(error, ScimRefusedError)
            else "the server could not be used for"
        )
        raise TargetError(
            f"{self.shown_as}: {what} the {change.action} of {self._key}={change.key!r}: "
            f"{error}{more}; {written} of the batch's {len(changes)} changes were written"
        )

    async def _apply_one(self, change: PlannedChange) -> None:
        if change.action == "create":
            await self._create(change.after or {})
            return
        id = str(change.key) if change.by_id else self._ids.get(change.key)
        if id is None:
            if change.action == "delete":
                return  # already gone
            raise ScimRefusedError(f"no {self._resource} with {self._key}={change.key!r} exists")
        if change.action == "delete":
            answer = await self._service.delete(self._resource, id)
            if not answer.ok and answer.status != 404:  # a resource already gone is done
                raise ScimRefusedError(answer.detail)
            self._ids.pop(change.key, None)
        elif change.action == "disable":
            await self._patch(id, [{"op": "replace", "path": ACTIVE, "value": False}])
        else:
            before, after = change.before or {}, change.after or {}
            await self._patch(id, self._operations(before, after))

    async def _create(self, after: Mapping[str, Any]) -> None:
        answer = await self._service.create(self._endpoint, self._resource_of(after))
        if answer.ok and answer.payload is not None:
            self._ids[after[self._key]] = str(answer.payload.get("id"))
            return
        if answer.status != 409:
            raise ScimRefusedError(answer.detail)
        # Already there (written by other means, or by an apply that was cut short): the
        # resource with this key is made to hold the planned values.
        key_path = self._paths[self._key]
        found = await self._service.find(
            self._resource, f'{key_path.text} eq "{_quoted(str(after[self._key]))}"'
        )
        resources = (found.payload or {}).get("Resources") or [] if found.ok else []
        if len(resources) != 1:
            raise ScimRefusedError(
                f"{answer.detail}; and no single {self._resource} has "
                f"{key_path.text}={after[self._key]!r} to update instead"
            )
        existing = resources[0]
        id = str(existing.get("id"))
        self._ids[after[self._key]] = id
        current = {name: read_value(existing, path) for name, path in self._paths.items()}
        if self._members:
            current[self._members] = None  # replaced below as a whole
        operations = self._operations(
            {n: current.get(n) for n in after if current.get(n) != after[n]}, after
        )
        if self._members and after.get(self._members) is not None:
            operations = [o for o in operations if o.get("path") != "members"]
            operations.append(
                {"op": "replace", "path": "members", "value": self._member_values(after)}
            )
        if operations:
            await self._patch(id, operations)

    async def _patch(self, id: str, operations: list[dict[str, Any]]) -> None:
        if not operations:
            return
        answer = await self._service.modify(self._resource, id, operations)
        if not answer.ok:
            raise ScimRefusedError(answer.detail)

    def _operations(
        self, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """PATCH operations for the attributes that changed (the keys of `before`)."""
        operations: list[dict[str, Any]] = []
        for name in before:
            if name not in self._paths:
                continue
            if name == self._members:
                old = {str(k) for k in before[name] or []}
                new = {str(k) for k in after.get(name) or []}
                added = [{"value": self._member_id(k)} for k in sorted(new - old)]
                if added:
                    operations.append({"op": "add", "path": "members", "value": added})
                for k in sorted(old - new):
                    # A member that is no User any more was read as its bare id: removed by it.
                    member = (self._member_ids or {}).get(k, k)
                    operations.append(
                        {"op": "remove", "path": f'members[value eq "{_quoted(member)}"]'}
                    )
                continue
            # A filtered path whose element is absent is added, not replaced (noTarget);
            # adding a value the attribute already holds changes nothing (RFC 7644 §3.5.2.1).
            operations.append(patch_operation(self._paths[name], before[name], after.get(name)))
        return operations

    def _resource_of(self, after: Mapping[str, Any]) -> dict[str, Any]:
        resource: dict[str, Any] = {"schemas": [SCHEMAS[self._resource]]}
        for name, value in after.items():
            path: ScimPath | None = self._paths.get(name)
            if path is None:
                continue
            if name == self._members:
                resource["members"] = self._member_values(after)
            else:
                write_value(resource, path, value)
        return resource

    def _member_values(self, after: Mapping[str, Any]) -> list[dict[str, str]]:
        assert self._members is not None
        return [{"value": self._member_id(str(k))} for k in after.get(self._members) or []]

    def _member_id(self, key: str) -> str:
        member = (self._member_ids or {}).get(key)
        if member is None:
            raise ScimRefusedError(
                f"the member {self._target.member_key}={key!r} is no User of the server"
            )
        return member


def _quoted(value: str) -> str:
    """A value inside a SCIM filter's double quotes (RFC 7644 §3.4.2.2: JSON string rules)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
