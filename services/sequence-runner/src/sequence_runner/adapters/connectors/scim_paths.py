"""Where a flat record's attributes live in a SCIM resource: paths, read, written and patched.

The planner works on flat records (`{"uid": "ann", "mail": "ann@example.org"}`); a SCIM
resource nests them (`userName`, `emails[type eq "work"].value`). Each target attribute is
given a path by the target's `attributes`, else by the aliases below, else it is a top-level
attribute of its own name. Names are compared without case, as RFC 7643 §2.1 says."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# What a team mapping its HR fields usually means; a target's `attributes` overrides these.
ALIASES: dict[str, str] = {
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "middleName": "name.middleName",
    "formattedName": "name.formatted",
    "email": 'emails[type eq "work"].value',
    "mail": 'emails[type eq "work"].value',
    "phone": 'phoneNumbers[type eq "work"].value',
    "mobile": 'phoneNumbers[type eq "mobile"].value',
    "employeeNumber": f"{ENTERPRISE}:employeeNumber",
    "department": f"{ENTERPRISE}:department",
    "costCenter": f"{ENTERPRISE}:costCenter",
    "organization": f"{ENTERPRISE}:organization",
    "division": f"{ENTERPRISE}:division",
    "manager": f"{ENTERPRISE}:manager.value",
}

_PATH = re.compile(
    r"^(?:(?P<schema>urn:[A-Za-z0-9:._-]+):)?(?P<attribute>[A-Za-z][A-Za-z0-9_$-]*)"
    r'(?:\[type eq "(?P<type>[^"\]]+)"\])?(?:\.(?P<sub>[A-Za-z][A-Za-z0-9_$-]*))?$'
)
EMPTY: tuple[Any, ...] = (None, "", [])


@dataclass(frozen=True)
class ScimPath:
    text: str
    schema: str | None  # an extension's URN; None for the core schema
    attribute: str
    type: str | None  # `emails[type eq "work"]`: the element of that type
    sub: str | None

    @property
    def whole_attribute(self) -> str:
        """The path of the attribute itself, without the element filter or sub-attribute."""
        return f"{self.schema}:{self.attribute}" if self.schema else self.attribute


def parse_path(text: str) -> ScimPath:
    found = _PATH.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a SCIM attribute path this connector writes")
    sub = found["sub"]
    if found["type"] is not None and sub is None:
        sub = "value"
    return ScimPath(text, found["schema"], found["attribute"], found["type"], sub)


def paths_for(names: list[str], explicit: Mapping[str, str]) -> dict[str, ScimPath]:
    return {name: parse_path(explicit.get(name) or ALIASES.get(name, name)) for name in names}


def _get(container: Any, name: str) -> Any:
    if not isinstance(container, Mapping):
        return None
    if name in container:
        return container[name]
    lowered = name.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), None)


def read_value(resource: Mapping[str, Any], path: ScimPath) -> Any:
    container = _get(resource, path.schema) if path.schema else resource
    value = _get(container, path.attribute)
    if path.type is not None:
        elements = value if isinstance(value, list) else []
        value = next((e for e in elements if _get(e, "type") == path.type), None)
    if path.sub is not None:
        value = _get(value, path.sub)
    return value


def write_value(resource: dict[str, Any], path: ScimPath, value: Any) -> None:
    """Set a value in a resource being built for a POST (empty values are left out)."""
    if value in EMPTY:
        return
    container = resource
    if path.schema:
        container = resource.setdefault(path.schema, {})
        if path.schema not in resource["schemas"]:
            resource["schemas"].append(path.schema)
    if path.type is not None:
        elements: list[dict[str, Any]] = container.setdefault(path.attribute, [])
        element = next((e for e in elements if e.get("type") == path.type), None)
        if element is None:
            element = {"type": path.type}
            elements.append(element)
        element[path.sub or "value"] = value
    elif path.sub is not None:
        container.setdefault(path.attribute, {})[path.sub] = value
    else:
        container[path.attribute] = value


def patch_operation(path: ScimPath, old: Any, new: Any) -> dict[str, Any]:
    """One PATCH operation (RFC 7644 §3.5.2) taking an attribute from `old` to `new`."""
    if new in EMPTY:
        if path.type is not None:
            # The whole element goes: an email without a value is no email.
            return {"op": "remove", "path": f'{path.whole_attribute}[type eq "{path.type}"]'}
        return {"op": "remove", "path": path.text}
    if path.type is not None and old in EMPTY:
        # A filter that matches no element is `noTarget` for replace: add the element instead.
        return {
            "op": "add",
            "path": path.whole_attribute,
            "value": [{"type": path.type, path.sub or "value": new}],
        }
    return {"op": "replace", "path": path.text, "value": new}
