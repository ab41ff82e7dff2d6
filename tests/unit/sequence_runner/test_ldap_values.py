"""Directory values: what the planner compares on both sides of an LDAP sequence."""

from typing import Any

import pytest
from sequence_runner.adapters.connectors.ldap_values import as_directory_value, encoded


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (None, None),
        ("", None),
        ([], None),
        ([""], None),
        ("a", "a"),
        (["a"], "a"),
        ([b"b", b"a", b"a"], ["a", "b"]),
        (["b", "a", "b"], ["a", "b"]),
        (42, "42"),
        (True, "TRUE"),
        ([1, "1"], "1"),
    ],
)
def test_values_as_the_directory_keeps_them(value: Any, stored: Any) -> None:
    assert as_directory_value(value) == stored


def test_encoding_for_the_wire() -> None:
    assert encoded(None) == []
    assert encoded("é") == ["é".encode()]
    assert encoded(["a", "b"]) == [b"a", b"b"]
