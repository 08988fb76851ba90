"""The request context: who is calling, in which scope, with which roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestContext:
    request_id: str = ""
    global_request_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    user_domain_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_id: str | None = None  # domain-scoped token
    domain_name: str | None = None
    system_scope: str | None = None  # "all" for system-scoped tokens
    roles: list[str] = field(default_factory=list)  # role names, implied roles included
    role_ids: list[str] = field(default_factory=list)
    auth_token: str | None = None
    audit_ids: list[str] = field(default_factory=list)
    application_credential_id: str | None = None
    is_admin_override: bool = False  # internal calls made by the cloud itself

    @property
    def is_admin(self) -> bool:
        return self.is_admin_override or "admin" in self.roles

    @property
    def is_system_admin(self) -> bool:
        return self.is_admin_override or (self.system_scope == "all" and "admin" in self.roles)

    def policy_credentials(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "domain_id": self.domain_id,
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
            "system_scope": self.system_scope,
            "roles": self.roles,
            "is_admin": self.is_admin_override,
        }

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "auth_token"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestContext:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def admin(cls, request_id: str = "") -> RequestContext:
        """The cloud acting on its own behalf (bootstrap, periodic tasks)."""
        return cls(request_id=request_id, roles=["admin"], is_admin_override=True,
                   system_scope="all")
