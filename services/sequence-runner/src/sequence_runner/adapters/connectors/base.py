"""The two connector interfaces the runner knows; LDAP, SQL or SCIM connectors implement them."""

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from sequence_runner.domain.records import Key, PlannedChange, SourceEntry, TargetRules


class ConnectorError(Exception):
    """A source or target failed; the message is the reason the sequence fails with."""


class SourceError(ConnectorError):
    pass


class TargetError(ConnectorError):
    pass


class SourceConnector(Protocol):
    @property
    def shown_as(self) -> str:
        """How failure reasons name the source: a file's path, `inputs.<sequence>`."""
        ...

    def read(self) -> AsyncIterator[SourceEntry]:
        """Every record of the source, in order; raises SourceError naming the line."""
        ...


class TargetConnector(Protocol):
    @property
    def rules(self) -> TargetRules:
        """How the target stores and retires records, for the planner."""
        ...

    async def prepare(self) -> None:
        """Make the target ready to be planned against (indexes, schema); idempotent."""

    def read_all(self) -> AsyncIterator[dict[str, Any]]:
        """Every record of the target repository, each with its key attribute."""
        ...

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        """Write one batch of a plan; applying the same batch again gives the same target."""


@runtime_checkable
class PiecedSource(Protocol):
    """A source that reads its records a list at a time (a file parsed off the event loop):
    the runner hands each list on to the planner without a step of its own per record."""

    def read_pieces(self) -> AsyncIterator[list[SourceEntry]]:
        """What `read` yields, in the same order, as lists."""
        ...


@runtime_checkable
class PiecedTarget(Protocol):
    """A target that reads its records a page at a time (a SQL table)."""

    def read_pieces(self) -> AsyncIterator[list[dict[str, Any]]]:
        """What `read_all` yields, in the same order, as lists."""
        ...


@runtime_checkable
class LocatingTarget(Protocol):
    """A target whose changes are written at an address the operator should see beside the key
    (a directory's DN): the plan is stored with it, and the apply writes there."""

    def locate(self, change: PlannedChange) -> PlannedChange:
        """The change with where it will be written; called on every change of a new plan,
        after `read_all`."""
        ...


@runtime_checkable
class DescribedTarget(Protocol):
    """A target whose records compare only once it has read how it stores them (a SQL table's
    column types: the source's "20" is an integer column's 20). Read-only, so a plan that is
    then blocked has written nothing."""

    async def describe(self) -> None:
        """Learn what `rules.stored_as` needs; called before the source is mapped."""
        ...


@runtime_checkable
class ReadsByKey(Protocol):
    """A target that reads records by their keys: what a revert plans against, without
    reading the whole target. A target without it is read whole, once per revert."""

    async def read_keys(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """The records the target holds under these keys, by key (as `read_all` yields them);
        keys without a record are left out."""
        ...
