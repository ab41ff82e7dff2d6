"""The SCIM app for connector tests: scim2-server as its own process (TEST_SCIM_PORT, else a
free port), one tenant per test, and SCIM target connectors built over it."""

import os
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from provisioning_common.definitions import ScimTarget
from sequence_runner.adapters.connectors.scim_client import ScimService
from sequence_runner.adapters.connectors.scim_target import ScimTargetConnector
from sequence_runner.connections import ScimConnection

from tests.support.processes import REPO, free_port
from tests.support.scim_server import ScimApp, ScimServer, scim_server

# Where the contract suite's flat attributes live in a SCIM User.
PEOPLE_ATTRIBUTES = {"uid": "userName", "cn": "displayName", "sn": "name.familyName"}
# `mail` is not listed: the built-in alias puts it in emails[type eq "work"].value.


@pytest.fixture(scope="session")
def scim() -> Iterator[ScimServer]:
    port = int(os.environ.get("TEST_SCIM_PORT") or free_port())
    with scim_server(port, REPO / ".infra" / "test" / "logs" / "scim2-server.log") as server:
        yield server


@pytest.fixture
def scim_app(scim: ScimServer) -> ScimApp:
    """An empty tenant of this test's own."""
    return scim.tenant(f"t{uuid.uuid4().hex[:10]}")


def scim_service(app: ScimApp, closing: list[object], **settings: Any) -> ScimService:
    connection = ScimConnection.model_validate(
        {
            "type": "scim",
            "base_url": app.base_url,
            "token": app.token,
            "requests_per_second": 1000,
            **settings,
        }
    )
    service = ScimService(connection)
    closing.append(service)
    return service


def scim_target(
    app: ScimApp,
    closing: list[object],
    *,
    service: ScimService | None = None,
    resource: Literal["User", "Group"] = "User",
    key: str = "uid",
    names: list[str] | None = None,
    attributes: dict[str, str] | None = None,
    deprovision: Literal["delete", "disable"] = "delete",
    scim_filter: str | None = None,
) -> ScimTargetConnector:
    target = ScimTarget(
        connection="app",
        resource=resource,
        filter=scim_filter,
        attributes=PEOPLE_ATTRIBUTES if attributes is None else attributes,
        deprovision=deprovision,
    )
    return ScimTargetConnector(
        "app",
        service or scim_service(app, closing),
        target,
        key,
        names or ["uid", "cn", "sn", "mail"],
    )


def held_people(app: ScimApp) -> dict[str, dict[str, Any]]:
    """The Users as a plain GET sees them, as flat records of the contract's attributes."""
    held = {}
    for user in app.all("Users"):
        work = [e["value"] for e in user.get("emails", []) if e.get("type") == "work"]
        record = {
            "uid": user["userName"],
            "cn": user.get("displayName"),
            "sn": (user.get("name") or {}).get("familyName"),
            "mail": work[0] if work else None,
        }
        held[user["userName"]] = {k: v for k, v in record.items() if v is not None}
    return held
