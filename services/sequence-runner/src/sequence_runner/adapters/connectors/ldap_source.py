"""LDAP source: the entries of a directory, read page by page (RFC 2696) and streamed.

Each record's fields are the requested attributes as text (several values as a sorted list,
an absent attribute as None); errors name the entry's DN where a file source names a line."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ldap
from provisioning_common.definitions import LdapSource

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.adapters.connectors.ldap_client import (
    CUT_SHORT,
    SCOPES,
    AsyncLdapConnection,
    DirectoryRefusedError,
    DirectoryUnavailableError,
)
from sequence_runner.adapters.connectors.ldap_values import as_directory_value
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.domain.records import SourceEntry


class LdapSourceConnector:
    def __init__(
        self,
        connection_name: str,
        connection: AsyncLdapConnection,
        source: LdapSource,
        retry: RetryPolicy,
        page_size: int = 1000,
    ) -> None:
        self._name = connection_name
        self._connection = connection
        self._source = source
        self._retry = retry
        self._page_size = page_size

    @property
    def shown_as(self) -> str:
        return f"connection {self._name!r} ({self._connection.url}), {self._source.base_dn}"

    async def read(self) -> AsyncIterator[SourceEntry]:
        names = {a.lower(): a for a in self._source.attributes}
        position = 0
        # A search that fails part-way cannot be resumed where it stopped (the paging cookie
        # belongs to the lost connection): it is retried from the start, before anything of it
        # was handed on, and fails the sequence once a page has been.
        for attempt in range(1, self._retry.attempts + 1):
            try:
                async for page in self._connection.paged_search(
                    self._source.base_dn,
                    SCOPES[self._source.scope],
                    self._source.filter,
                    list(self._source.attributes),
                    self._page_size,
                ):
                    for dn, values in page:
                        position += 1
                        fields: dict[str, Any] = dict.fromkeys(self._source.attributes)
                        for attribute, raw in values.items():
                            fields[names.get(attribute.lower(), attribute)] = as_directory_value(
                                raw
                            )
                        yield SourceEntry(line=position, fields=fields, dn=dn)
                return
            except DirectoryUnavailableError as error:
                if position or attempt == self._retry.attempts:
                    raise SourceError(
                        f"{self.shown_as}: the directory went away while it was read "
                        f"({position} entries read): {error}"
                    ) from None
                await asyncio.sleep(self._retry.backoff_seconds * 2 ** (attempt - 1))
            except DirectoryRefusedError as refused:
                if isinstance(refused.error, CUT_SHORT):
                    raise SourceError(
                        f"{self.shown_as}: the server cut the search short after {position} "
                        f"entries ({refused}); give the bind account unlimited size and time "
                        "limits"
                    ) from None
                if isinstance(refused.error, ldap.INVALID_CREDENTIALS):
                    raise SourceError(
                        f"{self.shown_as}: the bind as {self._connection.bind_dn} was refused: "
                        f"{refused}"
                    ) from None
                raise SourceError(f"{self.shown_as}: the search was refused: {refused}") from None
