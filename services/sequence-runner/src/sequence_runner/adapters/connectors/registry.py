"""Builds the connectors a sequence definition names; a new connector type is added here."""

from pathlib import Path
from typing import Any

from provisioning_common.definitions import (
    CsvSource,
    InlineSource,
    JsonlSource,
    LdapSource,
    LdapTarget,
    MongoTarget,
    ScimTarget,
    SequenceDefinition,
    SqlSource,
    SqlTarget,
)
from pymongo.asynchronous.database import AsyncDatabase

from sequence_runner.adapters.connectors.base import (
    ConnectorError,
    SourceConnector,
    TargetConnector,
)
from sequence_runner.adapters.connectors.csv_source import CsvSourceConnector
from sequence_runner.adapters.connectors.files import resolve_in_data_folder
from sequence_runner.adapters.connectors.inline_source import InlineSourceConnector
from sequence_runner.adapters.connectors.jsonl_source import JsonlSourceConnector
from sequence_runner.adapters.connectors.ldap_client import AsyncLdapConnection
from sequence_runner.adapters.connectors.ldap_source import LdapSourceConnector
from sequence_runner.adapters.connectors.ldap_target import LdapTargetConnector
from sequence_runner.adapters.connectors.mongo_target import MongoTargetConnector, RetryPolicy
from sequence_runner.adapters.connectors.scim_client import ScimService
from sequence_runner.adapters.connectors.scim_target import ScimTargetConnector
from sequence_runner.adapters.connectors.sql_database import (
    PostgresDatabase,
    SqlDatabase,
    SqliteDatabase,
)
from sequence_runner.adapters.connectors.sql_source import SqlSourceConnector
from sequence_runner.adapters.connectors.sql_target import SqlTargetConnector
from sequence_runner.connections import (
    Connection,
    LdapConnection,
    ScimConnection,
    SqlConnection,
)


class ConnectorRegistry:
    def __init__(
        self,
        *,
        data_dir: Path,
        target_database: AsyncDatabase[dict[str, Any]],
        retry: RetryPolicy,
        connections: dict[str, Connection] | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._target_database = target_database
        self._retry = retry
        self._connections = connections or {}
        # One connection per name, shared by every sequence that uses it: the window of
        # operations in flight is the server's, not each sequence's.
        self._ldap: dict[str, AsyncLdapConnection] = {}
        self._scim: dict[str, ScimService] = {}  # likewise: the request rate is the server's

        self._sql: dict[str, SqlDatabase] = {}

    def _settings(self, name: str, kind: str) -> Connection:
        settings = self._connections.get(name)
        if settings is None:
            known = ", ".join(sorted(self._connections)) or "none"
            raise ConnectorError(
                f"no connection named {name!r} in the runner's connections file "
                f"(PROVISIONING_CONNECTIONS_FILE); known: {known}"
            )
        if settings.type != kind:
            raise ConnectorError(
                f"connection {name!r} is a {settings.type} connection, not a {kind} one"
            )
        return settings

    def _scim_service(self, name: str) -> ScimService:
        settings = self._settings(name, "scim")
        assert isinstance(settings, ScimConnection)
        service = self._scim.get(name)
        if service is None:
            service = self._scim[name] = ScimService(settings)
        return service

    def _ldap_connection(self, name: str) -> tuple[AsyncLdapConnection, int]:
        settings = self._settings(name, "ldap")
        assert isinstance(settings, LdapConnection)
        connection = self._ldap.get(name)
        if connection is None:
            connection = AsyncLdapConnection(
                settings.url,
                settings.bind_dn,
                settings.password.get_secret_value(),
                window=settings.window,
                timeout=settings.timeout_seconds,
            )
            self._ldap[name] = connection
        return connection, settings.page_size

    def _sql_database(self, name: str) -> tuple[SqlDatabase, int]:
        settings = self._settings(name, "sql")
        assert isinstance(settings, SqlConnection)
        database = self._sql.get(name)
        if database is None:
            if settings.url.startswith("sqlite:///"):
                # A SQLite file is found like a source file: inside the data folder only.
                relative = settings.url.removeprefix("sqlite:///")
                path = resolve_in_data_folder(self._data_dir, relative)
                database = SqliteDatabase(path, relative, settings.timeout_seconds)
            else:
                password = settings.password
                database = PostgresDatabase(
                    settings.url,
                    password.get_secret_value() if password is not None else None,
                    pool_size=settings.pool_size,
                    timeout=settings.timeout_seconds,
                )
            self._sql[name] = database
        return database, settings.fetch_size

    async def close(self) -> None:
        """Close the directory connections and SQL pools (the next use opens them again)."""
        for connection in self._ldap.values():
            await connection.close()
        for service in self._scim.values():
            await service.close()
        for database in self._sql.values():
            await database.close()

    def source(
        self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
    ) -> SourceConnector:
        source = sequence.source
        match source:
            case CsvSource():
                path = resolve_in_data_folder(self._data_dir, source.path)
                return CsvSourceConnector(path, source.path, source.delimiter)
            case JsonlSource():
                path = resolve_in_data_folder(self._data_dir, source.path)
                return JsonlSourceConnector(path, source.path)
            case InlineSource():
                return InlineSourceConnector(sequence.name, inputs)
            case LdapSource():
                connection, page_size = self._ldap_connection(source.connection)
                return LdapSourceConnector(
                    source.connection, connection, source, self._retry, page_size
                )
            case SqlSource():
                database, fetch_size = self._sql_database(source.connection)
                return SqlSourceConnector(
                    source.connection, database, source, self._retry, fetch_size
                )
        raise TypeError(f"no connector for source type {source.type!r}")  # pragma: no cover

    def target(self, sequence: SequenceDefinition) -> TargetConnector:
        target = sequence.target
        match target:
            case MongoTarget():
                collection = self._target_database[target.collection]
                return MongoTargetConnector(collection, sequence.key, self._retry)
            case LdapTarget():
                connection, page_size = self._ldap_connection(target.connection)
                attributes = list(sequence.mapping) if sequence.mapping is not None else None
                return LdapTargetConnector(
                    target.connection,
                    connection,
                    target,
                    sequence.key,
                    attributes,
                    self._retry,
                    page_size,
                )
            case ScimTarget():
                return ScimTargetConnector(
                    target.connection,
                    self._scim_service(target.connection),
                    target,
                    sequence.key,
                    list(sequence.mapping or {}),
                )
            case SqlTarget():
                database, fetch_size = self._sql_database(target.connection)
                attributes = list(sequence.mapping) if sequence.mapping is not None else None
                return SqlTargetConnector(
                    target.connection, database, target, attributes, self._retry, fetch_size
                )
        raise TypeError(f"no connector for target type {target.type!r}")  # pragma: no cover
