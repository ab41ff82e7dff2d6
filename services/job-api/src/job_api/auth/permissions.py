"""The one table of what each role may do, used by the routes and by GET /api/v1/me."""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW = "view"
    SUBMIT = "submit"
    VALIDATE = "validate"
    CANCEL = "cancel"
    RESTART = "restart"
    ARCHIVE = "archive"
    DELETE = "delete"
    MANAGE_DEFINITIONS = "manage_definitions"
    MANAGE_API_KEYS = "manage_api_keys"
    VIEW_AUDIT = "view_audit"
    # Undo an applied sequence: writes to a target like a decision, and is the admin's alone.
    REVERT = "revert"


_OPERATOR = frozenset(
    {
        Permission.VIEW,
        Permission.SUBMIT,
        Permission.VALIDATE,
        Permission.CANCEL,
        Permission.RESTART,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.OPERATOR: _OPERATOR,
    Role.ADMIN: frozenset(Permission),
}

# Least to most privileged: the order in which a refusal names the role a call needs.
ROLES_BY_PRIVILEGE: tuple[Role, ...] = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def permissions_of(role: Role) -> list[Permission]:
    """In the table's declaration order, so /me answers the same list every time."""
    return [p for p in Permission if p in ROLE_PERMISSIONS[role]]


def least_role_with(permission: Permission) -> Role:
    for role in ROLES_BY_PRIVILEGE:
        if role_allows(role, permission):
            return role
    raise ValueError(f"no role has {permission}")  # pragma: no cover - the table gives admin all


def refusal_message(name: str, role: Role, permission: Permission) -> str:
    """What a refused caller reads: which role the call needs and which one their key has."""
    needed = least_role_with(permission)
    return (
        f"this call needs the {needed} role (permission '{permission}'); "
        f"your key '{name}' has {role}"
    )
