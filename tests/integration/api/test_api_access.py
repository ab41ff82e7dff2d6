"""API keys (stored hashed, shown once), /me, and console sessions with their CSRF token."""

import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Infra
from tests.integration.api.harness import (
    ApiHarness,
    harness_settings,
    insert_jobs,
    job_doc,
    running_api,
    threshold_sequence,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def new_key(api: ApiHarness, role: str) -> dict[str, Any]:
    created = await api.client.post(
        "/api/v1/api-keys",
        json={"name": f"{role}-{uuid.uuid4().hex[:6]}", "role": role},
        headers=api.auth("admin"),
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_is_shown_once_and_stored_only_hashed(api: ApiHarness) -> None:
    created = await new_key(api, "operator")
    assert set(created) >= {"id", "name", "role", "key"}
    listed = await api.client.get("/api/v1/api-keys", headers=api.auth("admin"))
    assert listed.status_code == 200
    entry = next(k for k in listed.json()["items"] if k["id"] == created["id"])
    assert "key" not in entry
    assert created["key"] not in listed.text
    stored = await api.db["api_keys"].find_one({"_id": created["id"]})
    assert stored is not None
    assert created["key"] not in str(stored)
    assert stored["key_hash"] == hashlib.sha256(created["key"].encode()).hexdigest()


async def test_a_new_key_works_and_a_deleted_key_is_401(api: ApiHarness) -> None:
    created = await new_key(api, "viewer")
    me = await api.client.get("/api/v1/me", headers=bearer(created["key"]))
    assert me.status_code == 200
    assert me.json() == {"name": created["name"], "role": "viewer", "permissions": ["view"]}
    deleted = await api.client.delete(
        f"/api/v1/api-keys/{created['id']}", headers=api.auth("admin")
    )
    assert deleted.status_code == 204
    refused = await api.client.get("/api/v1/jobs", headers=bearer(created["key"]))
    assert refused.status_code == 401
    assert "not valid" in refused.json()["detail"]
    again = await api.client.delete(f"/api/v1/api-keys/{created['id']}", headers=api.auth("admin"))
    assert again.status_code == 404


async def test_key_names_are_unique_and_roles_known(api: ApiHarness) -> None:
    created = await new_key(api, "viewer")
    duplicate = await api.client.post(
        "/api/v1/api-keys",
        json={"name": created["name"], "role": "admin"},
        headers=api.auth("admin"),
    )
    assert duplicate.status_code == 409
    assert created["name"] in duplicate.json()["detail"]
    bad_role = await api.client.post(
        "/api/v1/api-keys", json={"name": "x-1", "role": "root"}, headers=api.auth("admin")
    )
    assert bad_role.status_code == 422
    assert bad_role.json()["detail"][0]["loc"] == ["body", "role"]


async def test_the_last_admin_key_cannot_be_deleted(api: ApiHarness) -> None:
    listed = await api.client.get("/api/v1/api-keys", headers=api.auth("admin"))
    admins = [k for k in listed.json()["items"] if k["role"] == "admin"]
    assert [k["name"] for k in admins] == ["admin"]
    refused = await api.client.delete(
        f"/api/v1/api-keys/{admins[0]['id']}", headers=api.auth("admin")
    )
    assert refused.status_code == 409
    assert "last admin key" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("role", "permissions"),
    [
        ("viewer", ["view"]),
        ("operator", ["view", "submit", "validate", "cancel", "restart"]),
        (
            "admin",
            [
                "view",
                "submit",
                "validate",
                "cancel",
                "restart",
                "archive",
                "delete",
                "manage_definitions",
                "manage_api_keys",
                "view_audit",
                "revert",
            ],
        ),
    ],
)
async def test_me_lists_the_permissions_of_the_role(
    api: ApiHarness, role: str, permissions: list[str]
) -> None:
    me = await api.client.get("/api/v1/me", headers=api.auth(role))
    assert me.json()["role"] == role
    assert me.json()["permissions"] == permissions


@pytest.mark.parametrize(
    "authorization", ["pj_abc", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Bearer pj_nope"]
)
async def test_malformed_or_wrong_authorization_is_401(api: ApiHarness, authorization: str) -> None:
    response = await api.client.get("/api/v1/jobs", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


async def sign_in(client: httpx.AsyncClient, key: str, *, form: bool = False) -> httpx.Response:
    if form:
        return await client.post("/console/session", data={"api_key": key})
    return await client.post("/console/session", json={"api_key": key})


async def test_sign_in_sets_an_http_only_session_cookie_and_a_csrf_cookie(
    api: ApiHarness,
) -> None:
    async with api.new_client() as browser:
        response = await sign_in(browser, api.keys["viewer"])
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["name"], body["role"], body["permissions"]) == ("viewer-1", "viewer", ["view"])
        cookies = {
            header.split("=", 1)[0]: header.lower()
            for header in response.headers.get_list("set-cookie")
        }
        session, csrf = cookies["pj_session"], cookies["pj_csrf"]
        for attribute in ("samesite=strict", "path=/"):
            assert attribute in session
            assert attribute in csrf
        assert "httponly" in session
        assert "httponly" not in csrf
        assert "secure" not in session  # cookie_secure is off in tests (plain http)
        assert browser.cookies["pj_csrf"] == body["csrf_token"]
        # The cookie holds a token, never the API key, and only its hash is stored.
        token = browser.cookies["pj_session"]
        assert token != api.keys["viewer"]
        stored = await api.db["console_sessions"].find_one(
            {"_id": hashlib.sha256(token.encode()).hexdigest()}
        )
        assert stored is not None
        assert stored["csrf_token"] == body["csrf_token"]

        me = await browser.get("/api/v1/me")
        assert me.json()["name"] == "viewer-1"
        current = await browser.get("/console/session")
        assert current.json()["csrf_token"] == body["csrf_token"]


async def test_a_form_sign_in_works_and_a_bad_key_does_not(api: ApiHarness) -> None:
    async with api.new_client() as browser:
        assert (await sign_in(browser, api.keys["operator"], form=True)).status_code == 200
        assert (await browser.get("/api/v1/me")).json()["role"] == "operator"
    async with api.new_client() as browser:
        refused = await sign_in(browser, "pj_wrong")
        assert refused.status_code == 401
        assert "pj_session" not in browser.cookies
        missing = await browser.post("/console/session", json={})
        assert missing.status_code == 422
        assert "api_key" in missing.json()["detail"]


async def sign_in_audit(api: ApiHarness) -> list[dict[str, Any]]:
    return [
        entry
        async for entry in api.db["audit"]
        .find({"action": "console.sign_in", "outcome": "rejected"})
        .sort("at", -1)
    ]


async def test_a_sign_in_posted_by_another_site_is_refused_and_audited(api: ApiHarness) -> None:
    """Login CSRF: another site's form must not sign this browser in with the attacker's key."""
    async with api.new_client() as browser:
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},  # a sandboxed frame or a file
            {"Sec-Fetch-Site": "cross-site"},
        ):
            refused = await browser.post(
                "/console/session", data={"api_key": api.keys["operator"]}, headers=headers
            )
            assert refused.status_code == 403, (headers, refused.text)
            assert "another site" in refused.json()["detail"]
            assert "pj_session" not in browser.cookies
        newest = (await sign_in_audit(api))[0]
        assert (newest["status_code"], newest["actor"]) == (403, "unknown")
        # The console's own page (same origin), and clients that are not browsers, sign in.
        own = await browser.post(
            "/console/session",
            json={"api_key": api.keys["operator"]},
            headers={"Origin": "http://job-api.test", "Sec-Fetch-Site": "same-origin"},
        )
        assert own.status_code == 200, own.text


async def test_a_refused_sign_in_is_audited_without_the_key(api: ApiHarness) -> None:
    async with api.new_client() as browser:
        refused = await sign_in(browser, "pj_guessed-key-123")
        assert refused.status_code == 401
    newest = (await sign_in_audit(api))[0]
    assert (newest["actor"], newest["status_code"]) == ("unknown", 401)
    assert "not valid" in newest["reason"]
    assert "pj_guessed-key-123" not in str(newest)


async def test_a_session_call_that_changes_state_needs_the_csrf_token(api: ApiHarness) -> None:
    (job_id,) = await insert_jobs(
        api, job_doc(status="THRESHOLD", sequences=[threshold_sequence()])
    )
    async with api.new_client() as browser:
        signed_in = await sign_in(browser, api.keys["operator"])
        csrf_token = signed_in.json()["csrf_token"]
        url = f"/api/v1/jobs/{job_id}/threshold/validate"

        missing = await browser.post(url)
        assert missing.status_code == 403
        assert missing.json()["detail"] == "missing or wrong CSRF token"
        wrong = await browser.post(url, headers={"X-CSRF-Token": "x" + csrf_token})
        assert wrong.status_code == 403
        right = await browser.post(url, headers={"X-CSRF-Token": csrf_token})
        assert right.status_code == 202, right.text
        # Reading needs no token; a Bearer key needs none either.
        assert (await browser.get(f"/api/v1/jobs/{job_id}")).status_code == 200
    bearer_call = await api.client.post(
        f"/api/v1/jobs/{job_id}/restart", headers=api.auth("operator")
    )
    assert bearer_call.status_code == 202


async def test_sign_out_ends_the_session(api: ApiHarness) -> None:
    async with api.new_client() as browser:
        signed_in = await sign_in(browser, api.keys["viewer"])
        token = browser.cookies["pj_session"]
        csrf_token = signed_in.json()["csrf_token"]
        assert (await browser.delete("/console/session")).status_code == 403
        out = await browser.delete("/console/session", headers={"X-CSRF-Token": csrf_token})
        assert out.status_code == 204
        assert "pj_session" not in browser.cookies
    async with api.new_client() as replay:
        replay.cookies.set("pj_session", token)
        refused = await replay.get("/api/v1/me")
        assert refused.status_code == 401
        assert "sign in again" in refused.json()["detail"]


async def test_deleting_a_key_ends_its_sessions(api: ApiHarness) -> None:
    created = await new_key(api, "operator")
    async with api.new_client() as browser:
        assert (await sign_in(browser, created["key"])).status_code == 200
        assert (await browser.get("/api/v1/me")).status_code == 200
        deleted = await api.client.delete(
            f"/api/v1/api-keys/{created['id']}", headers=api.auth("admin")
        )
        assert deleted.status_code == 204
        assert (await browser.get("/api/v1/me")).status_code == 401
        assert (await browser.get("/console/session")).status_code == 401


async def test_an_expired_session_is_401(api: ApiHarness) -> None:
    async with api.new_client() as browser:
        assert (await sign_in(browser, api.keys["viewer"])).status_code == 200
        token = browser.cookies["pj_session"]
        await api.db["console_sessions"].update_one(
            {"_id": hashlib.sha256(token.encode()).hexdigest()},
            {"$set": {"expires_at": job_doc()["created_at"]}},
        )
        assert (await browser.get("/api/v1/me")).status_code == 401


async def test_two_admins_deleting_each_others_keys_at_once_leave_one(infra: Infra) -> None:
    """Each saw two admin keys and deleted the other's: without a check after the delete,
    nobody could manage keys any more."""
    settings = harness_settings(infra, f"api_admins_{uuid.uuid4().hex[:6]}")
    async with running_api(settings) as api:
        first = await api.client.get("/api/v1/api-keys", headers=api.auth("admin"))
        (admin,) = [k for k in first.json()["items"] if k["role"] == "admin"]
        admin_key = api.keys["admin"]
        for _ in range(8):  # a race: several rounds, each starting from two admin keys
            other = await new_key_as(api, admin_key, "admin")
            answers = await asyncio.gather(
                api.client.delete(f"/api/v1/api-keys/{other['id']}", headers=bearer(admin_key)),
                api.client.delete(f"/api/v1/api-keys/{admin['id']}", headers=bearer(other["key"])),
            )
            codes = sorted(a.status_code for a in answers)
            left = {k["_id"] async for k in api.db["api_keys"].find({"role": "admin"})}
            # At most one deletion wins; a refused one puts its key back (401: the other
            # deletion was over before this caller's key was checked).
            assert codes in ([204, 409], [409, 409], [204, 401]), [a.text for a in answers]
            assert len(left) == (2 if codes == [409, 409] else 1), codes
            for answer in answers:
                if answer.status_code == 409:
                    assert "last admin key" in answer.json()["detail"]
            if other["id"] in left and admin["id"] not in left:
                admin, admin_key = other, other["key"]
            elif other["id"] in left:
                assert (
                    await api.client.delete(
                        f"/api/v1/api-keys/{other['id']}", headers=bearer(admin_key)
                    )
                ).status_code == 204


async def new_key_as(api: ApiHarness, key: str, role: str) -> dict[str, Any]:
    created = await api.client.post(
        "/api/v1/api-keys",
        json={"name": f"{role}-{uuid.uuid4().hex[:6]}", "role": role},
        headers=bearer(key),
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body
