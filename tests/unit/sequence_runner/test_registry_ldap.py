"""The registry builds ldap connectors from the connections file, and names what is missing."""

from pathlib import Path
from typing import Any

import pytest
from provisioning_common.definitions import SequenceDefinition
from pydantic import SecretStr
from sequence_runner.adapters.connectors.base import ConnectorError
from sequence_runner.adapters.connectors.ldap_target import LdapTargetConnector
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.registry import ConnectorRegistry
from sequence_runner.connections import LdapConnection


def people(connection: str) -> SequenceDefinition:
    return SequenceDefinition.model_validate(
        {
            "name": "people",
            "source": {"type": "inline"},
            "target": {
                "type": "ldap",
                "connection": connection,
                "base_dn": "ou=people,dc=example,dc=org",
                "rdn_attribute": "uid",
                "object_classes": ["inetOrgPerson"],
            },
            "key": "uid",
            "mapping": {"uid": "id", "sn": "last"},
            "thresholds": {"create": {"count": 5}},
        }
    )


def registry() -> ConnectorRegistry:
    directory = LdapConnection(
        url="ldap://127.0.0.1:3389",
        bind_dn="cn=admin,dc=example,dc=org",
        password=SecretStr("s3cret"),
    )
    database: Any = object()  # the mongo target is not built here
    return ConnectorRegistry(
        data_dir=Path("."),
        target_database=database,
        retry=RetryPolicy(),
        connections={"directory": directory},
    )


def test_an_ldap_target_is_built_from_its_named_connection() -> None:
    found = registry()
    target = found.target(people("directory"))
    assert isinstance(target, LdapTargetConnector)
    assert target.shown_as == (
        "connection 'directory' (ldap://127.0.0.1:3389), ou=people,dc=example,dc=org"
    )
    # One connection per name, shared by the sequences that use it.
    again = found.target(people("directory"))
    assert isinstance(again, LdapTargetConnector)
    assert again._connection is target._connection


def test_an_unknown_connection_fails_naming_the_ones_there_are() -> None:
    with pytest.raises(ConnectorError, match=r"no connection named 'hr-ad'.*known: directory"):
        registry().target(people("hr-ad"))
