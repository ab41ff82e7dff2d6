"""Building LDAP connectors over the real directory, and planning and applying as the engine
does (read the target, plan with its rules, apply batch by batch)."""

from typing import Any, Literal

from provisioning_common.definitions import LdapTarget
from sequence_runner.adapters.connectors.ldap_client import AsyncLdapConnection
from sequence_runner.adapters.connectors.ldap_target import LdapTargetConnector
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import Plan, SourceEntry

from tests.integration.connectors.conftest import Directory

PEOPLE_MAPPING = {"uid": "id", "cn": "name", "sn": "last", "mail": "mail"}


def ldap_target(
    directory: Directory,
    base_dn: str,
    closing: list[object],
    *,
    key: str = "uid",
    rdn: str = "uid",
    mapping: dict[str, str] | None = None,
    deprovision: Literal["delete", "disable"] = "delete",
    bind_dn: str | None = None,
    password: str | None = None,
    retry: RetryPolicy | None = None,
    window: int = 64,
    page_size: int = 100,
    object_classes: list[str] | None = None,
    references: dict[str, dict[str, str]] | None = None,
    scope: Literal["one", "subtree"] = "one",
) -> LdapTargetConnector:
    connection = AsyncLdapConnection(
        directory.url,
        bind_dn or directory.bind_dn,
        password if password is not None else directory.password,
        window=window,
        timeout=10,
    )
    closing.append(connection)
    target = LdapTarget(
        connection="directory",
        base_dn=base_dn,
        rdn_attribute=rdn,
        object_classes=object_classes or ["inetOrgPerson"],
        references=references or {},
        deprovision=deprovision,
        scope=scope,
    )
    mapping = PEOPLE_MAPPING if mapping is None else mapping
    return LdapTargetConnector(
        "directory",
        connection,
        target,
        key,
        list(mapping),
        retry or RetryPolicy(attempts=3, backoff_seconds=0.05),
        page_size,
    )


def people(*rows: tuple[str, ...] | dict[str, Any]) -> list[SourceEntry]:
    records = []
    for line, row in enumerate(rows, start=2):
        fields = (
            row
            if isinstance(row, dict)
            else {
                "id": row[0],
                "name": row[1],
                "last": row[2],
                "mail": row[3] if len(row) > 3 else "",
            }
        )
        records.append(SourceEntry(line=line, fields=dict(fields)))
    return records


async def plan_against(
    target: LdapTargetConnector,
    source: list[SourceEntry],
    *,
    key: str = "uid",
    mapping: dict[str, str] | None = None,
    delete_missing: bool = True,
) -> Plan:
    await target.prepare()
    current = [record async for record in target.read_all()]
    planned = plan(
        source,
        current,
        key,
        PEOPLE_MAPPING if mapping is None else mapping,
        delete_missing,
        "test source",
        target.rules,
    )
    # Each change with the DN it is written to, as the runner stores the plan.
    return Plan(planned.counts, tuple(target.locate(change) for change in planned.changes))


async def plan_and_apply(
    target: LdapTargetConnector, source: list[SourceEntry], batch: int = 50, **options: Any
) -> Plan:
    planned = await plan_against(target, source, **options)
    changes = list(planned.changes)
    for start in range(0, len(changes), batch):
        await target.apply(changes[start : start + batch])
    return planned
