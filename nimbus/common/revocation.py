"""Revocation events, as Keystone models them, applied by every process that validates tokens.

An event revokes every token issued at or before ``issued_before`` whose fields match all the
fields the event sets. Identity stores events in its database and announces each on the bus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nimbus.common.tokens import TokenData

MATCH_FIELDS = ("audit_id", "audit_chain_id", "user_id", "project_id", "domain_id", "role_id",
                "app_cred_id")


@dataclass(frozen=True)
class RevocationEvent:
    issued_before: float
    revoked_at: float
    audit_id: str | None = None
    audit_chain_id: str | None = None
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    role_id: str | None = None
    app_cred_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RevocationEvent:
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)

    def matches(self, token: TokenData) -> bool:
        if token.issued_at > self.issued_before:
            return False
        if self.audit_id is not None and self.audit_id != token.audit_ids[0]:
            return False
        if self.audit_chain_id is not None and self.audit_chain_id != token.audit_ids[-1]:
            return False
        if self.user_id is not None and self.user_id != token.user_id:
            return False
        if self.project_id is not None and self.project_id != token.project_id:
            return False
        if self.domain_id is not None and self.domain_id not in (
            token.domain_id, token.user_domain_id, token.project_domain_id
        ):
            return False
        if self.role_id is not None and self.role_id not in (r[0] for r in token.roles):
            return False
        if self.app_cred_id is not None and self.app_cred_id != token.app_cred_id:
            return False
        return True


class RevocationList:
    """Events indexed by the fields tokens are usually revoked by, so checks stay cheap."""

    def __init__(self) -> None:
        self._by_audit: dict[str, list[RevocationEvent]] = {}
        self._by_user: dict[str, list[RevocationEvent]] = {}
        self._by_project: dict[str, list[RevocationEvent]] = {}
        self._other: list[RevocationEvent] = []
        self._seen: set[RevocationEvent] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, event: RevocationEvent) -> None:
        if event in self._seen:
            return
        self._seen.add(event)
        if event.audit_id:
            self._by_audit.setdefault(event.audit_id, []).append(event)
        elif event.user_id:
            self._by_user.setdefault(event.user_id, []).append(event)
        elif event.project_id:
            self._by_project.setdefault(event.project_id, []).append(event)
        else:
            self._other.append(event)

    def events(self) -> list[RevocationEvent]:
        return list(self._seen)

    def is_revoked(self, token: TokenData) -> bool:
        candidates = (
            self._by_audit.get(token.audit_ids[0], ()),
            self._by_audit.get(token.audit_ids[-1], ()) if len(token.audit_ids) > 1 else (),
            self._by_user.get(token.user_id, ()),
            self._by_project.get(token.project_id or "", ()),
            self._other,
        )
        return any(event.matches(token) for group in candidates for event in group)

    def prune(self, older_than: float) -> None:
        """Drop events that can no longer match a live token."""
        keep = [e for e in self._seen if e.revoked_at >= older_than]
        self.__init__()  # type: ignore[misc]
        for e in keep:
            self.add(e)
