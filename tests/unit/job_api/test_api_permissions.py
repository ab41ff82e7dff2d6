"""The role table: what each role may do, and what a refused caller is told."""

import pytest
from job_api.auth.permissions import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    least_role_with,
    permissions_of,
    refusal_message,
    role_allows,
)
from job_api.auth.principal import Principal


def test_viewer_only_views() -> None:
    assert ROLE_PERMISSIONS[Role.VIEWER] == {Permission.VIEW}


def test_operator_views_submits_and_decides_but_does_not_administer() -> None:
    assert ROLE_PERMISSIONS[Role.OPERATOR] == {
        Permission.VIEW,
        Permission.SUBMIT,
        Permission.VALIDATE,
        Permission.CANCEL,
        Permission.RESTART,
    }


def test_admin_may_do_everything() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == set(Permission)


def test_roles_nest() -> None:
    assert ROLE_PERMISSIONS[Role.VIEWER] < ROLE_PERMISSIONS[Role.OPERATOR]
    assert ROLE_PERMISSIONS[Role.OPERATOR] < ROLE_PERMISSIONS[Role.ADMIN]


@pytest.mark.parametrize(
    ("permission", "role"),
    [
        (Permission.VIEW, Role.VIEWER),
        (Permission.RESTART, Role.OPERATOR),
        (Permission.DELETE, Role.ADMIN),
        (Permission.VIEW_AUDIT, Role.ADMIN),
    ],
)
def test_the_least_role_with_a_permission(permission: Permission, role: Role) -> None:
    assert least_role_with(permission) is role


def test_a_refusal_names_the_needed_role_and_the_callers() -> None:
    assert refusal_message("ops-1", Role.OPERATOR, Permission.ARCHIVE) == (
        "this call needs the admin role (permission 'archive'); your key 'ops-1' has operator"
    )


def test_permissions_are_listed_in_table_order() -> None:
    assert permissions_of(Role.OPERATOR) == ["view", "submit", "validate", "cancel", "restart"]
    assert permissions_of(Role.ADMIN) == list(Permission)


def test_a_principal_can_what_its_role_allows() -> None:
    viewer = Principal(key_id="k", name="v", role=Role.VIEWER, via="bearer")
    assert viewer.can(Permission.VIEW)
    assert not viewer.can(Permission.CANCEL)
    assert role_allows(Role.ADMIN, Permission.MANAGE_API_KEYS)
