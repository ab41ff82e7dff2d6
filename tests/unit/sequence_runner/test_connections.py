"""The connections file: environment references, and no secret in any error about it."""

import json
from pathlib import Path

import pytest
from sequence_runner.connections import ConnectionsError, LdapConnection, load_connections


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_values_reference_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "directory": {
                "type": "ldap",
                "url": "ldap://127.0.0.1:${LDAP_PORT:-3389}",
                "bind_dn": "cn=admin,dc=example,dc=org",
                "password": "${LDAP_ADMIN_PASSWORD}",
            }
        },
    )
    connections = load_connections(path, {"LDAP_ADMIN_PASSWORD": "s3cret"})
    directory = connections["directory"]
    assert isinstance(directory, LdapConnection)
    assert directory.url == "ldap://127.0.0.1:3389"
    assert directory.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(connections)
    assert directory.window == 128


def test_a_missing_variable_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"d": {"url": "ldap://h", "bind_dn": "cn=a", "password": "${NOT_SET_ANYWHERE}"}},
    )
    with pytest.raises(ConnectionsError, match=r"d\.password: the environment variable NOT_SET"):
        load_connections(path, {})


def test_a_bad_value_is_reported_without_the_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"d": {"url": "http://h", "bind_dn": "cn=a", "password": "hunter2-secret", "x": 1}},
    )
    with pytest.raises(ConnectionsError) as refused:
        load_connections(path, {})
    message = str(refused.value)
    assert "d.ldap.url" in message or "d.url" in message
    assert "hunter2-secret" not in message


def test_no_file_no_connections() -> None:
    assert load_connections(None) == {}


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConnectionsError, match=r"connections\.json"):
        load_connections(tmp_path / "connections.json")
