"""The SCIM target against scim2-server run as its own process: what each action sends, what
the server then holds (read with a plain HTTP GET), and how throttling, conflicts and refusals
are met."""

import time
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.scim_target import ScimTargetConnector
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import Plan, SourceEntry

from tests.integration.connectors.scim_rig import (
    held_people,
    scim_service,
    scim_target,
)
from tests.support.scim_server import ScimApp, throttling_proxy

MAPPING = {"uid": "id", "cn": "name", "sn": "last", "mail": "mail"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def people(*ids: str, last: str = "Lee") -> list[SourceEntry]:
    return [
        SourceEntry(
            line=i,
            fields={"id": p, "name": f"{p.title()} {last}", "last": last, "mail": f"{p}@x.org"},
        )
        for i, p in enumerate(ids, start=2)
    ]


async def planned(
    target: ScimTargetConnector,
    source: list[SourceEntry],
    mapping: dict[str, str] | None = None,
    key: str = "uid",
) -> Plan:
    await target.prepare()
    current = [record async for record in target.read_all()]
    return plan(source, current, key, mapping or MAPPING, True, "people", target.rules)


async def applied(target: ScimTargetConnector, source: list[SourceEntry], **kw: Any) -> Plan:
    result = await planned(target, source, **kw)
    await target.apply(result.changes)
    return result


def test_the_test_server_is_a_conforming_scim_service(scim_app: ScimApp) -> None:
    # scim2-tester's whole suite (discovery, CRUD of Users and Groups, PATCH, errors): the
    # other tests here may trust that what they see is what a conforming server does.
    client = httpx2.Client(
        base_url=scim_app.base_url + "/", headers={"Authorization": f"Bearer {scim_app.token}"}
    )
    results = check_server(SyncSCIMClient(client))
    failed = [
        (r.title, r.reason)
        for r in results
        if r.status in (Status.ERROR, Status.CRITICAL, Status.DEVIATION)
    ]
    assert failed == []
    assert len(results) >= 100


async def test_users_are_created_with_their_attributes_at_their_paths(
    scim_app: ScimApp, closing: list[object]
) -> None:
    target = scim_target(scim_app, closing)
    await applied(target, people("ann"))
    (user,) = scim_app.all("Users")
    assert user["userName"] == "ann"
    assert user["displayName"] == "Ann Lee"
    assert user["name"] == {"familyName": "Lee"}
    assert user["emails"] == [{"type": "work", "value": "ann@x.org"}]


async def test_every_page_is_read_until_the_announced_total(
    scim_app: ScimApp, closing: list[object]
) -> None:
    await applied(scim_target(scim_app, closing), people("a1", "a2", "a3", "a4", "a5"))
    small_pages = scim_target(
        scim_app, closing, service=scim_service(scim_app, closing, page_size=2)
    )
    read = [record["uid"] async for record in small_pages.read_all()]
    assert sorted(read) == ["a1", "a2", "a3", "a4", "a5"]


async def test_a_filter_keeps_the_apps_other_users_out_of_the_sequence(
    scim_app: ScimApp, closing: list[object]
) -> None:
    # An administrator of the app, not from HR (no externalId): never planned for deletion.
    scim_app.post("Users", {"schemas": [USER], "userName": "admin"})
    target = scim_target(
        scim_app,
        closing,
        names=["uid", "ext"],
        attributes={"uid": "userName", "ext": "externalId"},
        scim_filter="externalId pr",
    )
    mapping = {"uid": "id", "ext": "id"}
    await applied(target, people("ann", "bob"), mapping=mapping)
    result = await applied(target, people("bob"), mapping=mapping)
    assert [(c.action, c.key) for c in result.changes] == [("delete", "ann")]
    assert result.counts.target_size == 2
    assert sorted(u["userName"] for u in scim_app.all("Users")) == ["admin", "bob"]


async def test_a_server_answering_429_to_every_third_request_gets_each_record_once(
    scim: Any, scim_app: ScimApp, closing: list[object]
) -> None:
    origin = f"http://{scim.host}:{scim.port}"
    with throttling_proxy(origin, every=3) as (proxy_url, proxy):
        behind = ScimApp(scim_app.base_url.replace(origin, proxy_url), scim_app.token)
        service = scim_service(behind, closing, concurrency=4)
        target = scim_target(behind, closing, service=service)
        ids = [f"u{i}" for i in range(9)]
        result = await applied(target, people(*ids))
        assert result.counts.create == 9
        posts = [(path, status) for method, path, status, _ in proxy.forwarded if method == "POST"]
        # Each record reached the server once, and none came back as a conflict (a resend).
        assert sorted(posts) == sorted([(posts[0][0], 201)] * 9)
        assert proxy.requests - len(proxy.forwarded) >= 3  # the 429s answered
        assert service.transport.retried == proxy.requests - len(proxy.forwarded)
    assert sorted(held_people(scim_app)) == sorted(ids)


async def test_a_503_without_retry_after_is_waited_out_with_backoff(
    scim: Any, scim_app: ScimApp, closing: list[object]
) -> None:
    origin = f"http://{scim.host}:{scim.port}"
    with throttling_proxy(origin, every=4, status=503, retry_after=None) as (proxy_url, _):
        behind = ScimApp(scim_app.base_url.replace(origin, proxy_url), scim_app.token)
        service = scim_service(behind, closing, concurrency=2)
        result = await applied(scim_target(behind, closing, service=service), people("a", "b"))
        assert result.counts.create == 2
        assert service.transport.retried >= 1
    assert sorted(held_people(scim_app)) == ["a", "b"]


async def test_a_server_that_keeps_throttling_fails_the_sequence_saying_so(
    scim: Any, scim_app: ScimApp, closing: list[object]
) -> None:
    origin = f"http://{scim.host}:{scim.port}"
    with throttling_proxy(origin, every=1, retry_after="0") as (proxy_url, _):
        behind = ScimApp(scim_app.base_url.replace(origin, proxy_url), scim_app.token)
        service = scim_service(behind, closing, retry_attempts=3)
        with pytest.raises(TargetError, match="still answered 429 after 3 attempts"):
            await planned(scim_target(behind, closing, service=service), people("a"))


async def test_a_create_that_finds_the_user_already_there_updates_it(
    scim_app: ScimApp, closing: list[object]
) -> None:
    target = scim_target(scim_app, closing)
    result = await planned(target, people("ann", "bob"))
    assert [c.action for c in result.changes] == ["create", "create"]
    # Someone else creates ann between the plan and its apply: the POST answers 409.
    scim_app.post(
        "Users",
        {
            "schemas": [USER],
            "userName": "ann",
            "displayName": "Someone Else",
            "title": "kept",
        },
    )
    await target.apply(result.changes)
    users = {u["userName"]: u for u in scim_app.all("Users")}
    assert sorted(users) == ["ann", "bob"]
    assert held_people(scim_app)["ann"] == {
        "uid": "ann",
        "cn": "Ann Lee",
        "sn": "Lee",
        "mail": "ann@x.org",
    }
    assert users["ann"]["title"] == "kept"  # only the planned attributes were written
    again = await planned(target, people("ann", "bob"))
    assert again.changes == ()


async def test_an_update_patches_only_the_changed_attributes(
    scim_app: ScimApp, closing: list[object]
) -> None:
    target = scim_target(scim_app, closing)
    await applied(target, people("ann"))
    result = await applied(target, people("ann", last="Ray"))
    (change,) = result.changes
    assert change.before == {"cn": "Ann Lee", "sn": "Lee"}
    assert held_people(scim_app)["ann"] == {
        "uid": "ann",
        "cn": "Ann Ray",
        "sn": "Ray",
        "mail": "ann@x.org",
    }


async def test_an_emptied_email_is_removed_and_a_new_one_added(
    scim_app: ScimApp, closing: list[object]
) -> None:
    target = scim_target(scim_app, closing)
    await applied(target, people("ann"))
    no_mail = [SourceEntry(2, {"id": "ann", "name": "Ann Lee", "last": "Lee", "mail": ""})]
    await applied(target, no_mail)
    assert "mail" not in held_people(scim_app)["ann"]
    await applied(target, people("ann"))
    assert held_people(scim_app)["ann"]["mail"] == "ann@x.org"


async def test_a_refused_change_fails_naming_the_record_and_the_servers_detail(
    scim_app: ScimApp, closing: list[object]
) -> None:
    # `nickname` is no attribute of the User schema (the attribute is nickName): a 400.
    target = scim_target(
        scim_app,
        closing,
        names=["uid", "cn", "nick"],
        attributes={"uid": "userName", "cn": "displayName", "nick": "nickname_x"},
    )
    source = [SourceEntry(2, {"id": "ann", "name": "Ann", "nick": "annie"})]
    with pytest.raises(TargetError) as refused:
        await applied(target, source, mapping={"uid": "id", "cn": "name", "nick": "nick"})
    message = str(refused.value)
    assert "the server refused the create of uid='ann'" in message
    assert "HTTP 400" in message
    assert "nickname_x" in message  # the server's detail
    assert "0 of the batch's 1 changes were written" in message


async def test_a_wrong_token_fails_the_read_without_showing_the_token(
    scim_app: ScimApp, closing: list[object]
) -> None:
    wrong = "wrong-token-never-shown-7c1f"
    app = ScimApp(scim_app.base_url, wrong)
    target = scim_target(app, closing)
    with pytest.raises(TargetError) as refused:
        await planned(target, people("ann"))
    assert "401" in str(refused.value)
    assert wrong not in str(refused.value)
    assert scim_app.token not in str(refused.value)


async def test_records_that_left_are_disabled_and_enabled_when_they_come_back(
    scim_app: ScimApp, closing: list[object]
) -> None:
    target = scim_target(scim_app, closing, deprovision="disable")
    await applied(target, people("ann", "bob"))
    result = await applied(target, people("bob"))
    assert [(c.action, c.key) for c in result.changes] == [("disable", "ann")]
    users = {u["userName"]: u for u in scim_app.all("Users")}
    assert (users["ann"]["active"], users["bob"]["active"]) == (False, True)
    again = await planned(target, people("bob"))
    assert again.changes == ()
    back = await applied(target, people("ann", "bob"))
    assert [(c.action, c.key) for c in back.changes] == [("update", "ann")]
    assert {u["userName"]: u["active"] for u in scim_app.all("Users")} == {
        "ann": True,
        "bob": True,
    }


async def test_group_members_are_resolved_to_ids_and_patched(
    scim_app: ScimApp, closing: list[object]
) -> None:
    await applied(scim_target(scim_app, closing), people("ann", "bob", "cy"))
    ids = {u["userName"]: u["id"] for u in scim_app.all("Users")}
    groups = scim_target(
        scim_app,
        closing,
        resource="Group",
        key="cn",
        names=["cn", "members"],
        attributes={"cn": "displayName"},
    )
    mapping = {"cn": "group", "members": "members"}

    def group(*members: str) -> list[SourceEntry]:
        return [SourceEntry(2, {"group": "finance", "members": list(members)})]

    await applied(groups, group("ann", "bob"), mapping=mapping, key="cn")
    (held,) = scim_app.all("Groups")
    assert held["displayName"] == "finance"
    assert sorted(m["value"] for m in held["members"]) == sorted([ids["ann"], ids["bob"]])

    result = await applied(groups, group("bob", "cy"), mapping=mapping, key="cn")
    assert [c.action for c in result.changes] == ["update"]
    (held,) = scim_app.all("Groups")
    assert sorted(m["value"] for m in held["members"]) == sorted([ids["bob"], ids["cy"]])
    again = await planned(groups, group("cy", "bob"), mapping=mapping, key="cn")
    assert again.changes == ()

    with pytest.raises(TargetError, match="the member userName='zoe' is no User"):
        await applied(groups, group("bob", "zoe"), mapping=mapping, key="cn")

    # cy is deleted by other means: if the server leaves the id in the group, it goes.
    scim_app.delete("Users", ids["cy"])
    await applied(groups, group("bob"), mapping=mapping, key="cn")
    (held,) = scim_app.all("Groups")
    assert [m["value"] for m in held["members"]] == [ids["bob"]]
    assert (await planned(groups, group("bob"), mapping=mapping, key="cn")).changes == ()


async def test_requests_are_paced_to_the_connections_rate(
    scim_app: ScimApp, closing: list[object]
) -> None:
    service = scim_service(scim_app, closing, requests_per_second=20)
    target = scim_target(scim_app, closing, service=service)
    result = await planned(target, people(*[f"p{i}" for i in range(20)]))
    started = time.monotonic()
    await target.apply(result.changes)
    # 20 requests at 20 per second: the last starts about 0.95 s after the first.
    assert time.monotonic() - started >= 0.9
    assert len(scim_app.all("Users")) == 20
