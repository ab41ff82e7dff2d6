"""The authenticated caller of a request: an API key, directly or through a console session."""

from dataclasses import dataclass
from typing import Literal

from job_api.auth.permissions import Permission, Role, role_allows


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    via: Literal["bearer", "session"]

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission)
