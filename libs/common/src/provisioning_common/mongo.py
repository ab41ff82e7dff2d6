"""MongoDB helpers shared by the services."""

from pymongo.errors import DuplicateKeyError

__all__ = ["DuplicateKeyError", "is_duplicate_key"]


def is_duplicate_key(error: BaseException) -> bool:
    """True for E11000, whichever pymongo error class the server's answer came back as."""
    if isinstance(error, DuplicateKeyError):
        return True
    code = getattr(error, "code", None)
    return code == 11000
