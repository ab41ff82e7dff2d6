"""Values as a directory holds them: text, compared as sets when an attribute has several.

The planner compares what a source wants with what the directory has; both sides go through
`as_directory_value`, so 42 and "42", ["b", "a"] and ["a", "b", "a"], "" and an absent
attribute are the same to it, as they are to the server."""

from collections.abc import Iterable, Mapping
from typing import Any

DirectoryValue = str | list[str] | None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"  # the LDAP Boolean syntax
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def as_directory_value(value: Any) -> DirectoryValue:
    """One attribute's value: None when absent or empty, a text, or sorted distinct texts."""
    if value is None:
        return None
    if type(value) is str:
        # What a file or a mapping hands over for most attributes: the text itself (or absent,
        # when empty). Made cheap: planning a million records into a directory goes through
        # here for each of their values (about 2 s of the planning at a million).
        return value or None
    if type(value) is list and len(value) == 1 and type(value[0]) is bytes:
        # What a directory answers for most attributes: one value. The common case, made cheap
        # for reads of large targets.
        text = value[0].decode("utf-8")
        return text or None
    items: Iterable[Any] = value if isinstance(value, list | tuple | set) else (value,)
    texts = sorted({t for t in (_text(item) for item in items if item is not None) if t != ""})
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else texts


def as_directory_record(attributes: Mapping[str, Any]) -> dict[str, Any]:
    for value in attributes.values():
        if type(value) is not str or not value:
            return {name: as_directory_value(value) for name, value in attributes.items()}
    # Every value non-empty text (a file's record, mapped), which is its own directory form:
    # the record copied, with no call per value (about half the time of one call per value,
    # for each of a million records planned into a directory).
    return dict(attributes)


def encoded(value: DirectoryValue) -> list[bytes]:
    if value is None:
        return []
    return [v.encode("utf-8") for v in ([value] if isinstance(value, str) else value)]
