"""Job definitions refuse the sequences that could damage a repository unguarded."""

from typing import Any

import pytest
from provisioning_common.definitions import JobDefinitionBody
from pydantic import ValidationError


def body(**sequence: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "employees",
        "source": {"type": "csv", "path": "hr/employees.csv"},
        "target": {"type": "mongo", "collection": "identities"},
        "key": "uid",
        "thresholds": {"create": {"count": 100}},
    }
    return {"id": "hr-import", "name": "HR import", "sequences": [base | sequence]}


def test_a_valid_definition_is_accepted() -> None:
    definition = JobDefinitionBody.model_validate(
        body(delete_missing=True, thresholds={"delete": {"count": 10, "percent": 5}})
    )
    assert definition.sequences[0].thresholds.delete is not None


def test_a_sequence_without_any_threshold_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs at least one threshold"):
        JobDefinitionBody.model_validate(body(thresholds={}))


def test_delete_missing_without_a_delete_threshold_is_refused() -> None:
    # An empty or truncated source file would plan deleting every record, and no threshold
    # on creations or updates would stop that.
    with pytest.raises(
        ValidationError, match=r"thresholds\.delete: a sequence with delete_missing"
    ):
        JobDefinitionBody.model_validate(body(delete_missing=True))


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.csv", "hr/../../x.csv"])
def test_a_source_path_leaving_the_data_folder_is_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="relative path inside the data folder"):
        JobDefinitionBody.model_validate(body(source={"type": "csv", "path": path}))


def test_a_key_outside_the_mapping_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be a target attribute of the mapping"):
        JobDefinitionBody.model_validate(body(mapping={"mail": "email"}))


def test_sequence_names_must_be_unique() -> None:
    definition = body()
    definition["sequences"] = definition["sequences"] * 2
    with pytest.raises(ValidationError, match="names must be unique, repeated: employees"):
        JobDefinitionBody.model_validate(definition)
