"""The LDAP source on the real slapd: paged, streamed, errors naming the entry's DN, and a
directory-to-directory sequence (staff -> people)."""

from typing import Literal

import ldap
import pytest
from provisioning_common.definitions import LdapSource
from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.adapters.connectors.ldap_client import AsyncLdapConnection
from sequence_runner.adapters.connectors.ldap_source import LdapSourceConnector
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlanError, SourceEntry

from tests.integration.connectors.conftest import READER_DN, READER_PASSWORD, Directory
from tests.integration.connectors.ldap_rig import ldap_target, plan_against

RETRY = RetryPolicy(attempts=2, backoff_seconds=0.05)


def make_staff(directory: Directory, base_dn: str, count: int) -> str:
    staff = f"ou=staff,{base_dn}"
    conn = directory.admin()
    conn.add_s(staff, [("objectClass", [b"organizationalUnit"]), ("ou", [b"staff"])])
    for i in range(count):
        conn.add_s(
            f"uid=s{i:03},{staff}",
            [
                ("objectClass", [b"inetOrgPerson"]),
                ("uid", [f"s{i:03}".encode()]),
                ("cn", [f"Staff {i}".encode()]),
                ("sn", [b"Staff"]),
                ("mail", [f"s{i}@example.org".encode(), f"staff{i}@example.org".encode()]),
            ],
        )
    return staff


def source(
    directory: Directory,
    base: str,
    closing: list[object],
    *,
    bind_dn: str | None = None,
    password: str | None = None,
    attributes: list[str] | None = None,
    scope: Literal["one", "subtree"] = "subtree",
) -> LdapSourceConnector:
    connection = AsyncLdapConnection(
        directory.url, bind_dn or directory.bind_dn, password or directory.password, timeout=10
    )
    closing.append(connection)
    definition = LdapSource(
        connection="directory",
        base_dn=base,
        filter="(objectClass=inetOrgPerson)",
        attributes=attributes or ["uid", "cn", "sn", "mail"],
        scope=scope,
    )
    return LdapSourceConnector("directory", connection, definition, RETRY, page_size=4)


async def test_entries_are_read_page_by_page_as_records(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    staff = make_staff(directory, base_dn, 10)
    records = [r async for r in source(directory, staff, closing).read()]
    assert len(records) == 10
    first = next(r for r in records if r.fields["uid"] == "s000")
    assert first.dn == f"uid=s000,{staff}"
    assert first.fields == {
        "uid": "s000",
        "cn": "Staff 0",
        "sn": "Staff",
        "mail": ["s0@example.org", "staff0@example.org"],
    }


async def test_an_error_about_a_record_names_its_dn(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    staff = make_staff(directory, base_dn, 2)
    reader = source(directory, staff, closing, attributes=["uid", "employeeNumber"])
    records: list[SourceEntry] = [r async for r in reader.read()]
    with pytest.raises(PlanError) as refused:
        plan(records, [], "employeeNumber", None, False, reader.shown_as)
    assert f"uid=s000,{staff}" in str(refused.value)
    assert "the key attribute 'employeeNumber' is missing" in str(refused.value)


async def test_a_source_search_cut_short_fails_loudly(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    staff = make_staff(directory, base_dn, 5)
    reader = source(directory, staff, closing, bind_dn=READER_DN, password=READER_PASSWORD)
    with pytest.raises(SourceError, match="cut the search short"):
        _ = [r async for r in reader.read()]


async def test_directory_to_directory_staff_to_people(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    staff = make_staff(directory, base_dn, 12)
    people = f"ou=people,{base_dn}"
    directory.admin().add_s(people, [("objectClass", [b"organizationalUnit"]), ("ou", [b"people"])])
    mapping = {"uid": "uid", "cn": "cn", "sn": "sn", "mail": "mail"}
    target = ldap_target(directory, people, closing, mapping=mapping)
    reader = source(directory, staff, closing)
    records = [r async for r in reader.read()]
    planned = await plan_against(target, records, mapping=mapping)
    assert planned.counts.create == 12
    await target.apply(planned.changes)
    copied = directory.admin().search_s(people, ldap.SCOPE_ONELEVEL, "(uid=s003)", ["mail", "cn"])
    assert copied[0][1]["mail"] == [b"s3@example.org", b"staff3@example.org"]
    again = await plan_against(target, [r async for r in reader.read()], mapping=mapping)
    assert again.changes == ()


async def test_a_source_reads_the_subtree_by_default_and_one_level_when_asked(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    staff = make_staff(directory, base_dn, 2)
    conn = directory.admin()
    conn.add_s(
        f"ou=interns,{staff}", [("objectClass", [b"organizationalUnit"]), ("ou", [b"interns"])]
    )
    conn.add_s(
        f"uid=i000,ou=interns,{staff}",
        [("objectClass", [b"inetOrgPerson"]), ("uid", [b"i000"]), ("cn", [b"I"]), ("sn", [b"I"])],
    )
    everyone = [r.fields["uid"] async for r in source(directory, staff, closing).read()]
    assert sorted(everyone) == ["i000", "s000", "s001"]
    one_level = [
        r.fields["uid"] async for r in source(directory, staff, closing, scope="one").read()
    ]
    assert sorted(one_level) == ["s000", "s001"]
