"""The runner's connections file: where each named connection's server is and how to bind.

A definition names a connection; its URL, bind DN and password live only here, so no
definition, event, API answer or log line carries them. String values may reference the
environment (`${LDAP_ADMIN_PASSWORD}`), which is where secrets are expected to come from."""

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConnectionsError(ValueError):
    """The connections file cannot be used; the message names the file and the field, never a
    value (which may be a secret)."""


class LdapConnection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["ldap"] = "ldap"
    url: str = Field(pattern=r"^ldaps?://", description="ldap://host:port or ldaps://host:port.")
    bind_dn: str = Field(min_length=3, description="The service account the runner binds as.")
    password: SecretStr = Field(description="Its password; reference the environment here.")
    page_size: int = Field(default=1000, ge=1, le=100_000, description="Entries per page read.")
    window: int = Field(
        default=128,
        ge=1,
        le=1024,
        description="Operations in flight on the connection; slapd dropped clients that "
        "pipelined without bound, 64-256 is safe.",
    )
    timeout_seconds: float = Field(
        default=30, gt=0, description="Connect timeout, and the longest wait for one answer."
    )


# --- SCIM 2.0 (issue 11) ---
class ScimConnection(BaseModel):
    """A SCIM 2.0 service provider (a SaaS application), reached with a bearer token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["scim"]
    base_url: str = Field(
        pattern=r"^https?://", description="The SCIM base URL, e.g. https://app.example/scim/v2."
    )
    token: SecretStr = Field(description="The bearer token; reference the environment here.")
    requests_per_second: float = Field(
        default=10, gt=0, le=10_000, description="Requests sent at most, so a big plan is paced."
    )
    concurrency: int = Field(default=8, ge=1, le=256, description="Requests in flight at most.")
    page_size: int = Field(default=100, ge=1, le=10_000, description="Resources per page read.")
    retry_attempts: int = Field(
        default=6, ge=1, le=50, description="Tries of a request answered 429 or 503."
    )
    max_retry_after_seconds: float = Field(
        default=120, gt=0, description="The longest Retry-After honoured; longer ones fail."
    )
    timeout_seconds: float = Field(default=30, gt=0, description="The longest wait for an answer.")


class SqlConnection(BaseModel):
    """A PostgreSQL server (`postgresql://user@host:port/database`) or a SQLite file in the
    data folder (`sqlite:///hr/people.db`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["sql"]
    url: str = Field(
        pattern=r"^(postgres(ql)?://|sqlite:///)",
        description="postgresql://user@host:port/database, or sqlite:///<path in the data folder>",
    )
    password: SecretStr | None = Field(
        default=None, description="The user's password; reference the environment here."
    )
    pool_size: int = Field(default=4, ge=1, le=64, description="Connections kept open at most.")
    fetch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Rows fetched per round trip when reading."
    )
    timeout_seconds: float = Field(default=30, gt=0, description="Connect timeout.")

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, url: str) -> str:
        # A password in the URL would be shown wherever the URL is (reasons, logs).
        authority = url.split("://", 1)[1].split("/", 1)[0]
        if "@" in authority and ":" in authority.split("@", 1)[0]:
            raise ValueError("put the password in `password`, not in the URL")
        return url


def _connection_type(value: Any) -> str:
    # `type` may be left out of an LDAP connection (files written before other types existed).
    found = value.get("type", "ldap") if isinstance(value, dict) else getattr(value, "type", "")
    return str(found)


Connection = Annotated[
    Annotated[LdapConnection, Tag("ldap")]
    | Annotated[ScimConnection, Tag("scim")]
    | Annotated[SqlConnection, Tag("sql")],
    Discriminator(_connection_type),
]
_CONNECTIONS = TypeAdapter(dict[str, Connection])


def _expand(value: Any, where: str, environ: os._Environ[str] | dict[str, str]) -> Any:
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConnectionsError(f"{where}: the environment variable {name} is not set")

        return _REFERENCE.sub(variable, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    return value


def load_connections(
    path: Path | None, environ: os._Environ[str] | dict[str, str] | None = None
) -> dict[str, Connection]:
    """The named connections of a JSON file (none without a file)."""
    if path is None:
        return {}
    environ = os.environ if environ is None else environ
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConnectionsError(f"connections file {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ConnectionsError(
            f"connections file {path}: not JSON (line {error.lineno}: {error.msg})"
        ) from None
    if not isinstance(raw, dict):
        raise ConnectionsError(f"connections file {path}: expected an object of connections")
    expanded = {name: _expand(value, name, environ) for name, value in raw.items()}
    try:
        return _CONNECTIONS.validate_python(expanded)
    except ValidationError as error:
        # Pydantic quotes the input it refused; that input may be a password.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConnectionsError(f"connections file {path}: {problems}") from None
