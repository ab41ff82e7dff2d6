"""The LDAP target on the real slapd: each action as the server sees it afterwards."""

import asyncio
import logging
import os
import signal
import time

import ldap
import pytest
from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy

from tests.integration.connectors.conftest import READER_DN, READER_PASSWORD, Directory
from tests.integration.connectors.ldap_rig import ldap_target, people, plan_against, plan_and_apply


def entries(directory: Directory, base_dn: str) -> dict[str, dict[str, list[bytes]]]:
    conn = directory.admin()
    found = conn.search_s(
        base_dn, ldap.SCOPE_ONELEVEL, "(objectClass=inetOrgPerson)", ["*", "pwdAccountLockedTime"]
    )
    return {dn.lower(): attrs for dn, attrs in found}


async def test_create_update_delete_as_the_server_sees_them(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    target = ldap_target(directory, base_dn, closing)
    created = await plan_and_apply(
        target,
        people(("ann", "Ann Lee", "Lee", "ann@example.org"), ("bob", "Bob Ray", "Ray")),
    )
    assert (created.counts.create, created.counts.update, created.counts.delete) == (2, 0, 0)
    found = entries(directory, base_dn)
    ann = found[f"uid=ann,{base_dn}".lower()]
    assert ann["mail"] == [b"ann@example.org"]
    assert b"inetOrgPerson" in ann["objectClass"]
    assert "mail" not in found[f"uid=bob,{base_dn}".lower()]  # empty: not written at all

    changed = await plan_and_apply(target, people(("ann", "Ann Lee", "Lee-Smith", "")))
    assert (changed.counts.update, changed.counts.delete, changed.counts.unchanged) == (1, 1, 0)
    update = next(c for c in changed.changes if c.action == "update")
    # Only the changed attributes are replaced: sn changed, mail emptied.
    assert update.before == {"sn": "Lee", "mail": "ann@example.org"}
    found = entries(directory, base_dn)
    assert list(found) == [f"uid=ann,{base_dn}".lower()]
    assert found[f"uid=ann,{base_dn}".lower()]["sn"] == [b"Lee-Smith"]
    assert "mail" not in found[f"uid=ann,{base_dn}".lower()]


async def test_planning_again_after_applying_finds_nothing_to_do(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    """Multi-valued attributes are compared as sets, numbers as the text the server keeps."""
    mapping = {"uid": "id", "cn": "names", "sn": "last", "employeeNumber": "number"}
    target = ldap_target(directory, base_dn, closing, mapping=mapping)
    rows = people({"id": "ann", "names": ["Ann Lee", "Ann"], "last": "Lee", "number": 42})
    await plan_and_apply(target, rows, mapping=mapping)
    again = people({"id": "ann", "names": ["Ann", "Ann Lee", "Ann"], "last": "Lee", "number": "42"})
    replanned = await plan_against(target, again, mapping=mapping)
    assert replanned.changes == ()
    assert replanned.counts.unchanged == 1


async def test_applying_the_same_batch_twice_gives_the_same_directory(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    target = ldap_target(directory, base_dn, closing)
    await plan_and_apply(target, people(("gone", "Gone", "Away")))
    planned = await plan_against(
        target, people(("ann", "Ann", "Lee"), ("bob", "Bob", "Ray")), delete_missing=True
    )
    await target.apply(planned.changes)
    before = entries(directory, base_dn)
    await target.apply(planned.changes)  # a runner restarted mid-apply writes it again
    assert entries(directory, base_dn) == before
    assert sorted(before) == sorted(f"uid={u},{base_dn}".lower() for u in ("ann", "bob"))


async def test_a_changed_rdn_value_is_a_rename_counted_as_an_update(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    mapping = {"employeeNumber": "id", "uid": "login", "cn": "name", "sn": "last"}
    target = ldap_target(directory, base_dn, closing, key="employeeNumber", mapping=mapping)
    rows = {"id": "E1", "login": "alee", "name": "Ann Lee", "last": "Lee"}
    await plan_and_apply(target, people(rows), key="employeeNumber", mapping=mapping)
    conn = directory.admin()
    conn.add_s(  # a group that lists her: refint follows the rename
        f"cn=team,{base_dn}",
        [
            ("objectClass", [b"groupOfNames"]),
            ("cn", [b"team"]),
            ("member", [f"uid=alee,{base_dn}".encode()]),
        ],
    )
    renamed = {**rows, "login": "ann.lee", "last": "Lee-Smith"}
    planned = await plan_and_apply(target, people(renamed), key="employeeNumber", mapping=mapping)
    assert (planned.counts.create, planned.counts.update, planned.counts.delete) == (0, 1, 0)
    found = entries(directory, base_dn)
    assert list(found) == [f"uid=ann.lee,{base_dn}".lower()]
    assert found[f"uid=ann.lee,{base_dn}".lower()]["sn"] == [b"Lee-Smith"]
    assert found[f"uid=ann.lee,{base_dn}".lower()]["uid"] == [b"ann.lee"]  # old value removed
    group = conn.search_s(f"cn=team,{base_dn}", ldap.SCOPE_BASE, attrlist=["member"])
    assert group[0][1]["member"] == [f"uid=ann.lee,{base_dn}".encode()]


async def test_disable_locks_the_account_and_a_returning_record_is_enabled(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    mapping = {"uid": "id", "cn": "name", "sn": "last", "userPassword": "password"}
    target = ldap_target(directory, base_dn, closing, mapping=mapping, deprovision="disable")
    ann = {"id": "ann", "name": "Ann", "last": "Lee", "password": "s3cret-Ann"}
    bob = {"id": "bob", "name": "Bob", "last": "Ray", "password": "s3cret-Bob"}
    await plan_and_apply(target, people(ann, bob), mapping=mapping)
    ann_dn = f"uid=ann,{base_dn}"

    def binds() -> bool:
        conn = ldap.initialize(directory.url)
        try:
            conn.simple_bind_s(ann_dn, "s3cret-Ann")
        except ldap.INVALID_CREDENTIALS:
            return False
        return True

    assert binds()
    left = await plan_and_apply(target, people(bob), mapping=mapping)
    assert [c.action for c in left.changes] == ["disable"]
    # Its own count, held against the delete threshold with the deletions.
    assert (left.counts.delete, left.counts.disable, left.counts.for_action("delete")) == (0, 1, 1)
    assert entries(directory, base_dn)[ann_dn.lower()]["pwdAccountLockedTime"] == [b"000001010000Z"]
    assert not binds()  # pwdLockout TRUE: the lock is real
    still_gone = await plan_against(target, people(bob), mapping=mapping)
    assert still_gone.changes == ()  # disabled already: nothing to do, nothing counted

    back = await plan_and_apply(target, people(ann, bob), mapping=mapping)
    assert [(c.action, c.before) for c in back.changes] == [
        ("update", {"pwdAccountLockedTime": "000001010000Z"})
    ]
    assert "pwdAccountLockedTime" not in entries(directory, base_dn)[ann_dn.lower()]
    assert binds()


async def test_an_entry_the_server_refuses_fails_with_its_dn_and_the_servers_message(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    target = ldap_target(directory, base_dn, closing, mapping={"uid": "id", "cn": "name"})
    # inetOrgPerson requires sn: a schema violation.
    with pytest.raises(TargetError) as refused:
        await plan_and_apply(
            target, people({"id": "ann", "name": "Ann"}), mapping={"uid": "id", "cn": "name"}
        )
    message = str(refused.value)
    assert f"uid=ann,{base_dn}" in message
    assert "Object class violation" in message
    assert "0 of the batch's 1 changes were written" in message


async def test_an_entry_that_exists_with_other_values_is_refused(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    target = ldap_target(directory, base_dn, closing)
    planned = await plan_against(target, people(("ann", "Ann", "Lee")))
    directory.admin().add_s(  # someone else creates her meanwhile, differently
        f"uid=ann,{base_dn}",
        [
            ("objectClass", [b"inetOrgPerson"]),
            ("uid", [b"ann"]),
            ("cn", [b"Other"]),
            ("sn", [b"Other"]),
        ],
    )
    with pytest.raises(TargetError, match="Already exists"):
        await target.apply(planned.changes)


async def test_a_search_the_server_cuts_short_refuses_to_plan(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    await plan_and_apply(
        ldap_target(directory, base_dn, closing),
        people(*((f"u{i}", f"U {i}", "X") for i in range(5))),
    )
    limited = ldap_target(directory, base_dn, closing, bind_dn=READER_DN, password=READER_PASSWORD)
    with pytest.raises(TargetError, match="cut the search short") as cut:
        await plan_against(limited, people())
    assert "Size limit exceeded" in str(cut.value)


async def test_a_wrong_bind_password_names_the_connection_never_the_password(
    directory: Directory, base_dn: str, closing: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-Pa55word-xyz"
    target = ldap_target(directory, base_dn, closing, password=secret)
    with pytest.raises(TargetError) as refused:
        await plan_against(target, people(("ann", "Ann", "Lee")))
    message = str(refused.value)
    assert "connection 'directory'" in message
    assert "Invalid credentials" in message
    assert secret not in message
    assert secret not in repr(refused.value.__cause__)
    assert secret not in caplog.text


async def test_reading_pages_through_more_entries_than_a_page(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    target = ldap_target(directory, base_dn, closing, page_size=7)
    rows = people(*((f"u{i:03}", f"U {i}", "X") for i in range(50)))
    await plan_and_apply(target, rows)
    again = await plan_against(target, rows)
    assert again.counts.unchanged == 50
    assert again.counts.target_size == 50


async def test_a_server_killed_mid_apply_is_waited_for_and_nothing_is_duplicated(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    if directory.infra_dir is None:
        pytest.fail("set TEST_LDAP_INFRA_DIR: this test stops and starts the test slapd")
    target = ldap_target(
        directory, base_dn, closing, retry=RetryPolicy(attempts=8, backoff_seconds=0.25)
    )
    count = 3000
    rows = people(*((f"u{i:05}", f"U {i}", "X") for i in range(count)))
    planned = await plan_against(target, rows)

    async def stop_and_start() -> None:
        await asyncio.sleep(0.3)
        assert directory.infra_dir is not None
        # kill -9: no goodbye to the clients, as when the host or the process dies.
        pid = int((directory.infra_dir / "ldap.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(directory.infra, "up")

    started = time.monotonic()
    outage = asyncio.create_task(stop_and_start())
    changes = list(planned.changes)
    for start in range(0, count, 500):
        await target.apply(changes[start : start + 500])
    await outage
    assert time.monotonic() - started > 1.0, "the server was not stopped during the apply"
    found = entries(directory, base_dn)
    assert len(found) == count
    replanned = await plan_against(target, rows)
    assert replanned.changes == ()


async def test_groups_get_their_members_as_dns_and_an_empty_group_is_kept_valid(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    person_mapping = {"uid": "id", "cn": "name", "sn": "last"}
    await plan_and_apply(
        ldap_target(directory, base_dn, closing, mapping=person_mapping),
        people(*({"id": u, "name": u, "last": u} for u in ("ann", "bob", "cat"))),
        mapping=person_mapping,
    )
    groups_dn = f"ou=groups,{base_dn}"
    directory.admin().add_s(
        groups_dn, [("objectClass", [b"organizationalUnit"]), ("ou", [b"groups"])]
    )
    mapping = {"cn": "name", "member": "members"}
    groups = ldap_target(
        directory,
        groups_dn,
        closing,
        key="cn",
        rdn="cn",
        mapping=mapping,
        object_classes=["groupOfNames"],
        references={"member": {"base_dn": base_dn, "rdn_attribute": "uid"}},
    )
    rows = people({"name": "team", "members": ["bob", "ann"]}, {"name": "empty", "members": []})
    await plan_and_apply(groups, rows, key="cn", mapping=mapping)
    conn = directory.admin()
    team = conn.search_s(f"cn=team,{groups_dn}", ldap.SCOPE_BASE, attrlist=["member"])[0][1]
    assert sorted(team["member"]) == [f"uid=ann,{base_dn}".encode(), f"uid=bob,{base_dn}".encode()]
    ann = conn.search_s(f"uid=ann,{base_dn}", ldap.SCOPE_BASE, attrlist=["memberOf"])[0][1]
    assert ann["memberOf"] == [f"cn=team,{groups_dn}".encode()]  # the memberof overlay

    assert (await plan_against(groups, rows, key="cn", mapping=mapping)).changes == ()
    moved = people({"name": "team", "members": ["cat"]}, {"name": "empty", "members": ["ann"]})
    changed = await plan_and_apply(groups, moved, key="cn", mapping=mapping)
    assert (changed.counts.update, changed.counts.create) == (2, 0)
    team = conn.search_s(f"cn=team,{groups_dn}", ldap.SCOPE_BASE, attrlist=["member"])[0][1]
    assert team["member"] == [f"uid=cat,{base_dn}".encode()]
    emptied = await plan_and_apply(
        groups,
        people({"name": "team", "members": []}, {"name": "empty", "members": ["ann"]}),
        key="cn",
        mapping=mapping,
    )
    assert emptied.counts.update == 1
    team = conn.search_s(f"cn=team,{groups_dn}", ldap.SCOPE_BASE, attrlist=["member"])[0][1]
    assert team["member"] == [b""]


def add_person(directory: Directory, dn: str, uid: str, sn: str) -> None:
    conn = directory.admin()
    conn.add_s(
        dn,
        [
            ("objectClass", [b"inetOrgPerson"]),
            ("uid", [uid.encode()]),
            ("cn", [uid.encode()]),
            ("sn", [sn.encode()]),
        ],
    )


def add_unit(directory: Directory, dn: str) -> None:
    name = dn.split(",", 1)[0].split("=", 1)[1]
    directory.admin().add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [name.encode()])])


async def test_each_planned_change_names_the_dn_it_is_written_to(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    target = ldap_target(directory, base_dn, closing)
    await plan_and_apply(target, people(("ann", "Ann", "Lee"), ("bob", "Bob", "Ray")))
    planned = await plan_against(target, people(("ann", "Ann", "Lee-Smith"), ("cy", "Cy", "Oh")))
    assert sorted((c.action, c.dn) for c in planned.changes) == [
        ("create", f"uid=cy,{base_dn}"),
        ("delete", f"uid=bob,{base_dn}"),
        ("update", f"uid=ann,{base_dn}"),
    ]


async def test_one_level_is_the_default_and_leaves_entries_in_sub_units_alone(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    add_unit(directory, f"ou=east,{base_dn}")
    add_person(directory, f"uid=eve,ou=east,{base_dn}", "eve", "East")
    target = ldap_target(directory, base_dn, closing)
    planned = await plan_and_apply(target, people(("ann", "Ann", "Lee")))
    assert [(c.action, c.key) for c in planned.changes] == [("create", "ann")]
    assert planned.counts.target_size == 0  # eve is not a record of this sequence
    conn = directory.admin()
    assert conn.search_s(f"uid=eve,ou=east,{base_dn}", ldap.SCOPE_BASE)  # untouched


async def test_a_subtree_target_writes_entries_of_sub_units_where_they_are(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    mapping = {"employeeNumber": "id", "uid": "login", "cn": "name", "sn": "last"}
    add_unit(directory, f"ou=east,{base_dn}")
    add_unit(directory, f"ou=west,{base_dn}")
    for login, unit, number in (
        ("eve", "east", "E1"),
        ("wes", "west", "E2"),
        ("old", "west", "E3"),
    ):
        add_person(directory, f"uid={login},ou={unit},{base_dn}", login, "X")
        directory.admin().modify_s(
            f"uid={login},ou={unit},{base_dn}",
            [(ldap.MOD_ADD, "employeeNumber", [number.encode()])],
        )
    target = ldap_target(
        directory, base_dn, closing, key="employeeNumber", mapping=mapping, scope="subtree"
    )
    rows = people(
        {"id": "E1", "login": "eve", "name": "eve", "last": "East"},  # update in ou=east
        {"id": "E2", "login": "wes.t", "name": "wes", "last": "X"},  # rename in ou=west
        {"id": "E4", "login": "neu", "name": "Neu", "last": "New"},  # create under the base
    )
    planned = await plan_and_apply(target, rows, key="employeeNumber", mapping=mapping)
    assert sorted((c.action, c.dn) for c in planned.changes) == [
        ("create", f"uid=neu,{base_dn}"),
        ("delete", f"uid=old,ou=west,{base_dn}"),
        ("update", f"uid=eve,ou=east,{base_dn}"),
        ("update", f"uid=wes,ou=west,{base_dn}"),  # the DN before the rename
    ]
    found = {
        dn.lower(): attrs
        for dn, attrs in directory.admin().search_s(
            base_dn, ldap.SCOPE_SUBTREE, "(objectClass=inetOrgPerson)", ["sn", "uid"]
        )
    }
    assert sorted(found) == sorted(
        dn.lower()
        for dn in (
            f"uid=eve,ou=east,{base_dn}",
            f"uid=wes.t,ou=west,{base_dn}",  # renamed in its own unit
            f"uid=neu,{base_dn}",
        )
    )
    assert found[f"uid=eve,ou=east,{base_dn}".lower()]["sn"] == [b"East"]
    again = await plan_against(target, rows, key="employeeNumber", mapping=mapping)
    assert again.changes == ()


async def test_a_subtree_target_disables_an_entry_in_a_sub_unit(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    add_unit(directory, f"ou=east,{base_dn}")
    add_person(directory, f"uid=eve,ou=east,{base_dn}", "eve", "East")
    target = ldap_target(directory, base_dn, closing, scope="subtree", deprovision="disable")
    planned = await plan_and_apply(target, people(("ann", "Ann", "Lee")))
    assert sorted((c.action, c.dn) for c in planned.changes) == [
        ("create", f"uid=ann,{base_dn}"),
        ("disable", f"uid=eve,ou=east,{base_dn}"),
    ]
    locked = directory.admin().search_s(
        f"uid=eve,ou=east,{base_dn}", ldap.SCOPE_BASE, attrlist=["pwdAccountLockedTime"]
    )
    assert locked[0][1]["pwdAccountLockedTime"] == [b"000001010000Z"]


def kill_slapd(directory: Directory) -> None:
    """kill -9: no goodbye to the clients, as when the host or the process dies."""
    if directory.infra_dir is None:
        pytest.fail("set TEST_LDAP_INFRA_DIR: this test stops and starts the test slapd")
    os.kill(int((directory.infra_dir / "ldap.pid").read_text()), signal.SIGKILL)


async def test_a_read_waits_for_a_server_away_before_its_first_page(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    writer = ldap_target(directory, base_dn, closing)
    await plan_and_apply(writer, people(("ann", "Ann", "Lee"), ("bob", "Bob", "Ray")))
    reader = ldap_target(
        directory, base_dn, closing, retry=RetryPolicy(attempts=8, backoff_seconds=0.25)
    )
    kill_slapd(directory)
    try:
        reading = asyncio.create_task(plan_against(reader, people(("ann", "Ann", "Lee"))))
        await asyncio.sleep(0.5)
        assert not reading.done()  # waiting for the server, not failed
    finally:
        await asyncio.to_thread(directory.infra, "up")
    planned = await reading
    assert [(c.action, c.key) for c in planned.changes] == [("delete", "bob")]


async def test_a_server_lost_after_the_first_page_fails_the_read_naming_what_was_read(
    directory: Directory, base_dn: str, closing: list[object]
) -> None:
    writer = ldap_target(directory, base_dn, closing)
    await plan_and_apply(writer, people(*((f"u{i:03}", f"U {i}", "X") for i in range(150))))
    reader = ldap_target(
        directory, base_dn, closing, retry=RetryPolicy(attempts=3, backoff_seconds=0.05)
    )
    read = 0

    async def read_while_the_server_dies() -> None:
        nonlocal read
        async for _ in reader.read_all():
            read += 1
            if read == 1:  # the first page (100 entries) is handed on
                kill_slapd(directory)

    try:
        with pytest.raises(TargetError, match=r"went away while it was read \(100 entries read\)"):
            await read_while_the_server_dies()
    finally:
        await asyncio.to_thread(directory.infra, "up")
    # What was handed on cannot be taken back: the read fails rather than starting again,
    # and the planner never sees a target read twice or in part.
    assert read == 100
