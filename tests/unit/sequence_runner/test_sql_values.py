"""SQL values, definitions and connections without a database: a source's text becomes what
the column gives back (so an unchanged row compares equal), and no password leaks."""

import json
from pathlib import Path
from typing import Any

import pytest
from provisioning_common.definitions import SequenceDefinition
from pydantic import ValidationError
from sequence_runner.adapters.connectors.sql_database import Kind, as_column_value, plain
from sequence_runner.connections import ConnectionsError, SqlConnection, load_connections


@pytest.mark.parametrize(
    ("value", "kind", "stored"),
    [
        ("42", "int", 42),
        (" 42 ", "int", 42),
        (42.0, "int", 42),
        ("", "int", None),  # an empty CSV cell is no number: NULL
        ("forty", "int", "forty"),  # left for the server to refuse, naming the row
        ("1.5", "float", 1.5),
        ("12.50", "decimal", "12.5"),
        (3, "decimal", "3"),
        ("yes", "bool", True),
        ("FALSE", "bool", False),
        (1, "bool", True),
        ("true", "bool01", 1),
        ("2024-02-01", "date", "2024-02-01"),
        ("2024-02-01T10:00:00Z", "datetime", "2024-02-01T10:00:00+00:00"),
        ("", "text", ""),  # "" is not NULL in a text column
        (None, "text", None),
        (7, "text", "7"),
        (True, "text", "true"),
        ({"a": 1}, "other", {"a": 1}),
    ],
)
def test_a_source_value_becomes_what_the_column_gives_back(
    value: Any, kind: Kind, stored: Any
) -> None:
    assert as_column_value(value, kind) == stored
    assert type(as_column_value(value, kind)) is type(stored)


def test_values_read_are_plain_json() -> None:
    import datetime as dt
    from decimal import Decimal
    from uuid import UUID

    assert plain(Decimal("12.50")) == "12.5"
    assert plain(dt.date(2024, 2, 1)) == "2024-02-01"
    assert plain(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert plain(7) == 7


def sequence(target: dict[str, Any], key: str = "login") -> dict[str, Any]:
    return {
        "name": "accounts",
        "source": {"type": "sql", "connection": "hr-db", "query": "select *", "key_column": "id"},
        "target": {"type": "sql", "connection": "app-db", "table": "app.accounts", **target},
        "key": key,
        "thresholds": {"create": {"count": 10}},
    }


def test_a_sql_target_is_found_by_the_sequence_key() -> None:
    SequenceDefinition.model_validate(sequence({"key_column": "login"}))
    with pytest.raises(ValidationError, match="must be the sequence's key"):
        SequenceDefinition.model_validate(sequence({"key_column": "uid"}))
    with pytest.raises(ValidationError, match="table"):
        SequenceDefinition.model_validate(
            sequence({"key_column": "login", "table": "accounts; drop table x"})
        )


def test_a_sql_password_comes_from_the_environment_and_never_from_the_url(tmp_path: Path) -> None:
    path = tmp_path / "connections.json"
    path.write_text(
        json.dumps(
            {
                "app-db": {
                    "type": "sql",
                    "url": "postgresql://app@127.0.0.1:5433/app",
                    "password": "${APP_DB_PASSWORD}",
                },
                "hr-file": {"type": "sql", "url": "sqlite:///hr/people.db"},
            }
        ),
        encoding="utf-8",
    )
    connections = load_connections(path, {"APP_DB_PASSWORD": "s3cret"})
    app = connections["app-db"]
    assert isinstance(app, SqlConnection)
    assert app.password is not None
    assert app.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(connections)

    path.write_text(
        json.dumps({"app-db": {"type": "sql", "url": "postgresql://app:s3cret@h/app"}}),
        encoding="utf-8",
    )
    with pytest.raises(ConnectionsError) as refused:
        load_connections(path, {})
    assert "put the password in `password`" in str(refused.value)
    assert "s3cret" not in str(refused.value)
