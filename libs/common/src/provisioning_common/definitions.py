"""Job definitions: the named list of sequences a job request runs, validated field by field."""

from pathlib import PurePosixPath
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from provisioning_common.definition_options import (
    DEFAULT_NOTIFY_ON,
    NotifyOn,
    Recipient,
    Retention,
    Schedule,
)

Slug = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Letters, digits, '_', '.', '-'; starts with a letter or digit.",
    ),
]
# The actions a threshold can be set on.
Action = Literal["create", "update", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete")
# The actions of a plan's changes: `disable` (a target's `deprovision: "disable"`) is shown as
# its own action and held against the delete threshold. A record that comes back is enabled by
# an update.
ChangeAction = Literal["create", "update", "delete", "disable"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _type_required(schema: JsonDict) -> None:
    required = schema.get("required")
    schema["required"] = ["type", *(required if isinstance(required, list) else [])]


class _Tagged(_Frozen):
    """A source or target: `type` picks the model before its default could apply, so a body
    without it is refused; the JSON schema (OpenAPI, AsyncAPI) says it is required."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_type_required)


class _FileSource(_Tagged):
    path: str = Field(
        min_length=1,
        description="Path relative to the data folder (PROVISIONING_DATA_DIR).",
        examples=["hr/employees.csv"],
    )

    @field_validator("path")
    @classmethod
    def _stays_in_data_folder(cls, value: str) -> str:
        # Checked again against the real folder when the file is opened (symlinks).
        p = PurePosixPath(value)
        if p.is_absolute() or value.startswith("\\") or ".." in p.parts:
            raise ValueError("must be a relative path inside the data folder, without '..'")
        return value


class CsvSource(_FileSource):
    type: Literal["csv"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)


class JsonlSource(_FileSource):
    type: Literal["jsonl"] = "jsonl"


class InlineSource(_Tagged):
    """Records that come with the job request, in `inputs.<sequence name>`."""

    type: Literal["inline"] = "inline"


ConnectionName = Annotated[
    Slug,
    Field(
        description="Name of a connection in the runner's connections file "
        "(PROVISIONING_CONNECTIONS_FILE), which holds the server's URL and bind credentials; "
        "none of them is ever part of a definition.",
        examples=["directory"],
    ),
]
# An RFC 4514 DN, checked loosely here (the server is the judge): `name=value` parts.
DistinguishedName = Annotated[
    str,
    Field(
        min_length=3,
        max_length=1000,
        pattern=r"^[A-Za-z][A-Za-z0-9-]*=.+$",
        examples=["ou=people,dc=example,dc=org"],
    ),
]
# An LDAP attribute description: a name, or an OID.
AttributeName = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^([A-Za-z][A-Za-z0-9-]*|[0-9][0-9.]*)$")
]
LdapFilter = Annotated[
    str,
    Field(
        min_length=3,
        max_length=4000,
        pattern=r"^\(.*\)$",
        description="An RFC 4515 search filter, in parentheses.",
        examples=["(departmentNumber=42)"],
    ),
]


class LdapSource(_Tagged):
    """The entries of a directory, read with paged searches; each record is an entry's
    requested attributes, and errors name the entry's DN."""

    type: Literal["ldap"] = "ldap"
    connection: ConnectionName
    base_dn: DistinguishedName
    scope: Literal["one", "subtree"] = Field(
        default="subtree", description="One level under base_dn, or the whole subtree."
    )
    filter: LdapFilter = "(objectClass=*)"
    attributes: list[AttributeName] = Field(
        min_length=1, max_length=200, description="Attributes read: the record's fields."
    )


# ---- SQL (PostgreSQL, SQLite): names are checked here, so they can be quoted into statements.
SqlColumn = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", examples=["login"])
]
SqlTable = Annotated[
    str,
    Field(
        min_length=1,
        max_length=127,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
        description="A table, or schema.table.",
        examples=["accounts", "app.accounts"],
    ),
]


class SqlSource(_Tagged):
    """The rows of a query, streamed through a server-side cursor; each row is a record whose
    fields are the result's columns, and errors name the row's key."""

    type: Literal["sql"] = "sql"
    connection: ConnectionName
    query: str = Field(
        min_length=1, max_length=20_000, examples=["select id, login, name from employees"]
    )
    key_column: SqlColumn = Field(description="The result column that names a row in errors.")


class SqlTarget(_Tagged):
    """The rows of one table, one per record, found by `key_column` (which needs a unique index
    or primary key of its own)."""

    type: Literal["sql"] = "sql"
    connection: ConnectionName
    table: SqlTable
    key_column: SqlColumn = Field(description="Column that identifies a row: the sequence's key.")
    deprovision: Literal["delete", "disable"] = Field(
        default="delete",
        description="What delete_missing does to a row that left the source: delete it, or set "
        "active_column false (true again if the record comes back). Disables count against the "
        "delete threshold.",
    )
    active_column: SqlColumn = Field(
        default="active", description="The boolean column `deprovision: disable` sets false."
    )


# ---- end SQL


Source = Annotated[
    CsvSource | JsonlSource | InlineSource | LdapSource | SqlSource, Field(discriminator="type")
]


class MongoTarget(_Tagged):
    type: Literal["mongo"] = "mongo"
    collection: Slug = Field(description="Collection in the target repository database.")


class LdapReference(_Frozen):
    """Where the entries an attribute points to live: each value (a key, e.g. a uid) is
    written as the DN `<rdn_attribute>=<value>,<base_dn>`."""

    base_dn: DistinguishedName
    rdn_attribute: AttributeName


class LdapTarget(_Tagged):
    """Entries one level under base_dn (or in its subtree), named `<rdn_attribute>=<value>`;
    new entries are created as `<rdn_attribute>=<value>,<base_dn>`."""

    type: Literal["ldap"] = "ldap"
    connection: ConnectionName
    base_dn: DistinguishedName
    scope: Literal["one", "subtree"] = Field(
        default="one",
        description="Which entries are records of the sequence: one level under base_dn, or "
        "the whole subtree (entries in sub-OUs are updated, disabled and deleted where they "
        "are; new ones are created directly under base_dn).",
    )
    rdn_attribute: AttributeName = Field(
        description="Attribute whose value names the entry (its RDN), e.g. uid or cn; a "
        "changed value renames the entry (modrdn)."
    )
    object_classes: list[AttributeName] = Field(
        min_length=1,
        max_length=20,
        description="Object classes of the entries written; only entries that have all of "
        "them are records of this sequence (an ou or an admin role under the same base is not).",
        examples=[["inetOrgPerson"]],
    )
    filter: LdapFilter | None = Field(
        default=None, description="Narrows the entries read further (ANDed with the classes)."
    )
    references: dict[AttributeName, LdapReference] = Field(
        default_factory=dict,
        max_length=20,
        description="Attributes whose source values are keys of other entries, written as "
        "their DNs (a group's member list from a source field listing member uids). A "
        "groupOfNames without members gets one empty member value (the class requires one).",
        examples=[{"member": {"base_dn": "ou=people,dc=example,dc=org", "rdn_attribute": "uid"}}],
    )
    deprovision: Literal["delete", "disable"] = Field(
        default="delete",
        description="What delete_missing does to an entry that left the source: delete it, or "
        "disable it (ppolicy pwdAccountLockedTime; re-enabled if the record comes back). "
        "Disables count against the delete threshold.",
    )


# --- SCIM 2.0 (issue 11) ---
# A SCIM attribute path (RFC 7644 §3.10), in the forms the connector writes: `title`,
# `name.givenName`, `emails[type eq "work"].value`, or an extension's `urn:…:User:department`.
ScimPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        pattern=r"^(urn:[A-Za-z0-9:._-]+:)?[A-Za-z][A-Za-z0-9_$-]*"
        r'(\[type eq "[^"\]]+"\])?(\.[A-Za-z][A-Za-z0-9_$-]*)?$',
        examples=["name.givenName", 'emails[type eq "work"].value'],
    ),
]


class ScimTarget(_Tagged):
    """The Users or Groups of a SCIM 2.0 service provider (a SaaS application)."""

    type: Literal["scim"] = "scim"
    connection: ConnectionName
    resource: Literal["User", "Group"] = Field(description="The resource type written.")
    attributes: dict[str, ScimPath] = Field(
        default_factory=dict,
        max_length=100,
        description="Target attribute (a key of the mapping) -> the SCIM path it is written to. "
        "Names left out use the built-in aliases (givenName -> name.givenName, email -> "
        'emails[type eq "work"].value, …) or are top-level SCIM attributes of that name.',
        examples=[{"uid": "userName", "mail": 'emails[type eq "work"].value'}],
    )
    filter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="A SCIM filter (RFC 7644 §3.4.2.2) narrowing the resources that are "
        "records of this sequence; the others are never updated or deleted by it.",
        examples=["externalId pr"],
    )
    member_key: Literal["userName", "externalId"] = Field(
        default="userName",
        description="Group only: which User attribute the keys listed in `members` are.",
    )
    deprovision: Literal["delete", "disable"] = Field(
        default="delete",
        description="What delete_missing does to a resource that left the source: DELETE it, "
        "or PATCH active=false (User only; re-enabled if it comes back). Disables count "
        "against the delete threshold.",
    )


Target = Annotated[MongoTarget | LdapTarget | ScimTarget | SqlTarget, Field(discriminator="type")]


class ThresholdLimit(_Frozen):
    count: int | None = Field(
        default=None,
        ge=1,
        # Stored as a 64-bit integer, the largest MongoDB holds.
        le=2**63 - 1,
        description="Reached when the planned number is at least this.",
    )
    percent: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Reached when the planned number is at least this % of the target size "
        "before the sequence; not applied to an empty target.",
    )

    @model_validator(mode="after")
    def _has_a_limit(self) -> Self:
        if self.count is None and self.percent is None:
            raise ValueError("give a count, a percent or both")
        return self


class Thresholds(_Frozen):
    create: ThresholdLimit | None = None
    update: ThresholdLimit | None = None
    delete: ThresholdLimit | None = None

    @model_validator(mode="after")
    def _guards_something(self) -> Self:
        # A sequence that can wipe a repository unguarded is the accident this product prevents.
        if self.create is None and self.update is None and self.delete is None:
            raise ValueError("a sequence needs at least one threshold (create, update or delete)")
        return self

    def for_action(self, action: Action) -> ThresholdLimit | None:
        limit: ThresholdLimit | None = getattr(self, action)
        return limit


class SequenceDefinition(_Frozen):
    name: Slug
    source: Source
    target: Target
    key: str = Field(min_length=1, description="Target attribute that identifies a record.")
    mapping: dict[str, str] | None = Field(
        default=None,
        description="Target attribute -> source field; absent: the source fields as they are.",
    )
    delete_missing: bool = Field(
        default=False, description="Delete target records that the source no longer has."
    )
    thresholds: Thresholds

    @model_validator(mode="after")
    def _key_is_mapped(self) -> Self:
        if self.mapping is not None:
            if not self.mapping:
                raise ValueError("mapping: give at least one attribute, or leave it out")
            if self.key not in self.mapping:
                raise ValueError(f"key: {self.key!r} must be a target attribute of the mapping")
        return self

    @model_validator(mode="after")
    def _ldap_entries_are_named(self) -> Self:
        # The RDN value comes from the mapped attributes; without it no DN can be made.
        if (
            isinstance(self.target, LdapTarget)
            and self.mapping is not None
            and self.target.rdn_attribute not in self.mapping
        ):
            raise ValueError(
                f"target.rdn_attribute: {self.target.rdn_attribute!r} must be a target "
                "attribute of the mapping (it names each entry)"
            )
        return self

    @model_validator(mode="after")
    def _scim_targets_are_mapped(self) -> Self:
        if not isinstance(self.target, ScimTarget):
            return self
        # The attributes read from the server are the mapped ones: without a mapping the
        # connector could not tell which parts of a resource are the sequence's.
        if self.mapping is None:
            raise ValueError("mapping: a SCIM target needs one (target attribute -> source field)")
        # SCIM Groups have no `active` attribute: there is nothing to disable.
        if self.target.resource == "Group" and self.target.deprovision == "disable":
            raise ValueError('target.deprovision: a SCIM Group cannot be disabled, use "delete"')
        return self

    @model_validator(mode="after")
    def _sql_rows_are_found_by_the_key(self) -> Self:
        if isinstance(self.target, SqlTarget) and self.target.key_column != self.key:
            raise ValueError(
                f"target.key_column: {self.target.key_column!r} must be the sequence's key "
                f"{self.key!r} (the column that identifies a row)"
            )
        return self

    @model_validator(mode="after")
    def _deletions_are_guarded(self) -> Self:
        # delete_missing with an empty or truncated source file plans the deletion of the whole
        # repository: without a delete threshold, nothing would stop it.
        if self.delete_missing and self.thresholds.delete is None:
            raise ValueError(
                "thresholds.delete: a sequence with delete_missing needs a delete threshold, "
                "or an empty source would delete the whole target unguarded"
            )
        return self


class JobDefinitionBody(_Frozen):
    """What a client sends to create or replace a definition."""

    id: Slug
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    sequences: list[SequenceDefinition] = Field(min_length=1, max_length=50)
    # Operations (definition_options.py): who is told, when it runs by itself, how long kept.
    recipients: list[Recipient] = Field(default_factory=list, max_length=20)
    notify_on: list[NotifyOn] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_ON))
    schedule: Schedule | None = None
    retention: Retention | None = None

    @model_validator(mode="after")
    def _sequence_names_unique(self) -> Self:
        names = [s.name for s in self.sequences]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sequences: names must be unique, repeated: {', '.join(dupes)}")
        return self


class JobDefinition(JobDefinitionBody):
    """A stored definition; `version` grows by one on every replacement."""

    version: int = Field(ge=1, default=1)
