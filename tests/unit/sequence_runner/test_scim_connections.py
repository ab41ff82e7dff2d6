"""SCIM connections in the connections file, and the pieces of the SCIM connector that need no
server: attribute paths, Retry-After, the request pacer."""

import json
import time
from pathlib import Path

import pytest
from sequence_runner.adapters.connectors.scim_client import RequestPacer, retry_after_seconds
from sequence_runner.adapters.connectors.scim_paths import (
    parse_path,
    patch_operation,
    paths_for,
    read_value,
    write_value,
)
from sequence_runner.connections import ConnectionsError, ScimConnection, load_connections

TOKEN = "tok-7f3e-never-shown"


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_a_scim_connection_takes_its_token_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "app": {
                "type": "scim",
                "base_url": "https://app.example/scim/v2",
                "token": "${APP_TOKEN}",
                "requests_per_second": 5,
            },
            "directory": {"url": "ldap://h", "bind_dn": "cn=a", "password": "p"},
        },
    )
    connections = load_connections(path, {"APP_TOKEN": TOKEN})
    app = connections["app"]
    assert isinstance(app, ScimConnection)
    assert app.token.get_secret_value() == TOKEN
    assert app.requests_per_second == 5
    assert TOKEN not in repr(connections)
    assert connections["directory"].type == "ldap"  # `type` may still be left out for LDAP


def test_a_bad_scim_connection_is_reported_without_the_token(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"app": {"type": "scim", "base_url": "ftp://x", "token": TOKEN, "page_size": 0}},
    )
    with pytest.raises(ConnectionsError) as refused:
        load_connections(path, {})
    message = str(refused.value)
    assert "app.scim.base_url" in message
    assert "app.scim.page_size" in message
    assert TOKEN not in message


@pytest.mark.parametrize(
    ("name", "explicit", "path"),
    [
        ("userName", {}, "userName"),
        ("givenName", {}, "name.givenName"),
        ("mail", {}, 'emails[type eq "work"].value'),
        ("department", {}, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
        ("login", {"login": "userName"}, "userName"),
        ("mail", {"mail": 'emails[type eq "home"].value'}, 'emails[type eq "home"].value'),
    ],
)
def test_attribute_names_get_their_scim_paths(
    name: str, explicit: dict[str, str], path: str
) -> None:
    assert paths_for([name], explicit)[name].text == path


def test_values_are_read_and_written_at_their_paths() -> None:
    paths = paths_for(["uid", "givenName", "mail", "department"], {"uid": "userName"})
    resource: dict[str, object] = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}
    values = {"uid": "ann", "givenName": "Ann", "mail": "a@x.org", "department": "Sales"}
    for name, value in values.items():
        write_value(resource, paths[name], value)
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert resource == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
        "userName": "ann",
        "name": {"givenName": "Ann"},
        "emails": [{"type": "work", "value": "a@x.org"}],
        enterprise: {"department": "Sales"},
    }
    # Names are compared without case, as SCIM does.
    assert read_value({"USERNAME": "ann"}, paths["uid"]) == "ann"
    assert {n: read_value(resource, p) for n, p in paths.items()} == values


def test_patch_operations_add_an_absent_element_and_remove_an_emptied_one() -> None:
    mail = parse_path('emails[type eq "work"].value')
    assert patch_operation(mail, None, "a@x.org") == {
        "op": "add",
        "path": "emails",
        "value": [{"type": "work", "value": "a@x.org"}],
    }
    assert patch_operation(mail, "a@x.org", "b@x.org") == {
        "op": "replace",
        "path": 'emails[type eq "work"].value',
        "value": "b@x.org",
    }
    assert patch_operation(mail, "a@x.org", "") == {
        "op": "remove",
        "path": 'emails[type eq "work"]',
    }


def test_retry_after_is_seconds_or_a_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    in_two = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
    assert 0.5 < (retry_after_seconds(in_two) or 0) <= 2.0


async def test_the_pacer_spaces_requests_and_holds_them_off() -> None:
    pacer = RequestPacer(per_second=50)
    started = time.monotonic()
    for _ in range(11):
        await pacer.wait()
    assert time.monotonic() - started >= 0.19  # 10 intervals of 20 ms
    pacer.hold_off(0.2)
    held = time.monotonic()
    await pacer.wait()
    assert time.monotonic() - held >= 0.19


def scim_sequence(**target: object) -> dict[str, object]:
    return {
        "name": "apps",
        "source": {"type": "inline"},
        "target": {"type": "scim", "connection": "app", "resource": "User", **target},
        "key": "uid",
        "mapping": {"uid": "id"},
        "thresholds": {"create": {"count": 10}},
    }


def test_a_scim_definition_is_checked_where_it_is_written() -> None:
    from provisioning_common.definitions import ScimTarget, SequenceDefinition

    sequence = SequenceDefinition.model_validate(scim_sequence())
    assert isinstance(sequence.target, ScimTarget)
    with pytest.raises(ValueError, match="a SCIM Group cannot be disabled"):
        SequenceDefinition.model_validate(scim_sequence(resource="Group", deprovision="disable"))
    with pytest.raises(ValueError, match="a SCIM target needs one"):
        SequenceDefinition.model_validate({**scim_sequence(), "mapping": None})
    with pytest.raises(ValueError, match="attributes"):
        SequenceDefinition.model_validate(scim_sequence(attributes={"uid": "emails[0]"}))
