"""Issuing tokens: the auth methods, scope resolution, and the token body Keystone returns."""

from __future__ import annotations

import base64
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.timeutils import aware, isotime, utcnow
from nimbus.common.tokens import InvalidToken, TokenData
from nimbus.identity import effective, trusts
from nimbus.identity.models import ROOT_DOMAIN, ApplicationCredential, Project, User
from nimbus.web.errors import BadRequest, Forbidden, Unauthorized

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

AUTH_FAILED = "The request you have made requires authentication."
SUPPORTED_METHODS = ("password", "token", "application_credential")


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def _dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field '{field}': expected an object.")
    return value


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise BadRequest(f"Invalid input for field '{field}': expected a non-empty string.")
    return value


async def _domain_ref(session: AsyncSession, ref: Any, field: str) -> Project:
    ref = _dict(ref, field)
    if "id" in ref:
        domain = await session.get(Project, _str(ref["id"], f"{field}.id"))
    elif "name" in ref:
        domain = (await session.scalars(select(Project).where(
            Project.domain_id == ROOT_DOMAIN, Project.name == _str(ref["name"], field)))).first()
    else:
        raise BadRequest(f"Invalid input for field '{field}': give an id or a name.")
    if domain is None or not domain.is_domain:
        raise Unauthorized(AUTH_FAILED)
    return domain


async def _user_ref(session: AsyncSession, ref: Any, field: str) -> User:
    ref = _dict(ref, field)
    if "id" in ref:
        user = await session.get(User, _str(ref["id"], f"{field}.id"))
    elif "name" in ref:
        if "domain" not in ref:
            raise BadRequest(f"Invalid input for field '{field}': a user name needs a domain.")
        domain = await _domain_ref(session, ref["domain"], f"{field}.domain")
        user = (await session.scalars(select(User).where(
            User.domain_id == domain.id, User.name == _str(ref["name"], field)))).first()
    else:
        raise BadRequest(f"Invalid input for field '{field}': give an id or a name.")
    if user is None:
        raise Unauthorized(AUTH_FAILED)
    return user


async def _check_user_usable(session: AsyncSession, user: User) -> Project:
    domain = await session.get(Project, user.domain_id)
    if not user.enabled or domain is None or not domain.enabled:
        raise Unauthorized(AUTH_FAILED)
    return domain


class Authenticated:
    """What the auth methods established, before scoping."""

    def __init__(self, user: User, user_domain: Project, methods: list[str]) -> None:
        self.user = user
        self.user_domain = user_domain
        self.methods = methods
        self.expires_at: float | None = None
        self.audit_chain: str | None = None
        self.base_token: TokenData | None = None
        self.app_cred: ApplicationCredential | None = None


async def authenticate(session: AsyncSession, svc: IdentityService, auth: dict[str, Any],
                       ) -> Authenticated:
    identity = _dict(auth.get("identity"), "auth.identity")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods or not all(
            isinstance(m, str) for m in methods):
        raise BadRequest("Invalid input for field 'identity.methods': expected a list of "
                         "method names.")
    found: Authenticated | None = None
    for method in methods:
        if method not in SUPPORTED_METHODS:
            raise Unauthorized(f"Attempted to authenticate with an unsupported method: {method}.")
        if method not in identity:
            raise BadRequest(f"Invalid input for field 'identity.{method}': it is required "
                             f"by the methods list.")
        result = await _METHODS[method](session, svc, identity[method])
        if found is not None and found.user.id != result.user.id:
            raise Unauthorized(AUTH_FAILED)
        if found is not None:
            result.expires_at = result.expires_at or found.expires_at
            result.base_token = result.base_token or found.base_token
            result.app_cred = result.app_cred or found.app_cred
        found = result
    assert found is not None
    # A token re-issued with the token method keeps the methods that proved the identity.
    inherited = found.base_token.methods if found.base_token is not None else []
    found.methods = list(dict.fromkeys([*inherited, *methods]))
    return found


async def _password(session: AsyncSession, svc: IdentityService, data: Any) -> Authenticated:
    data = _dict(data, "identity.password")
    ref = _dict(data.get("user"), "identity.password.user")
    password = ref.get("password")
    if not isinstance(password, str):
        raise BadRequest("Invalid input for field 'identity.password.user.password'.")
    user = await _user_ref(session, ref, "identity.password.user")
    domain = await _check_user_usable(session, user)
    if not await svc.hasher.verify(user.password_hash, password):
        raise Unauthorized(AUTH_FAILED)
    if user.password_expires_at and aware(user.password_expires_at) <= utcnow():
        raise Unauthorized(f"The password is expired and needs to be changed for user: "
                           f"{user.id}.")
    return Authenticated(user, domain, ["password"])


async def _token(session: AsyncSession, svc: IdentityService, data: Any) -> Authenticated:
    data = _dict(data, "identity.token")
    token_id = data.get("id")
    if not isinstance(token_id, str) or not token_id or len(token_id) > 8192:
        raise BadRequest("Invalid input for field 'identity.token.id': expected a token.")
    try:
        base = svc.cloud.token_auth.validate(token_id)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None
    if base.app_cred_id:
        raise Forbidden("Cannot rescope a token that was issued for an application credential.")
    if base.trust_id:
        raise Forbidden("You are not authorized to perform the requested action: Using "
                        "trust-scoped token to create another token. Create a new trust-scoped "
                        "token instead.")
    user = await session.get(User, base.user_id)
    if user is None:
        raise Unauthorized(AUTH_FAILED)
    domain = await _check_user_usable(session, user)
    found = Authenticated(user, domain, ["token"])
    found.expires_at = base.expires_at
    found.audit_chain = base.audit_ids[-1]
    found.base_token = base
    return found


async def _app_cred(session: AsyncSession, svc: IdentityService, data: Any) -> Authenticated:
    data = _dict(data, "identity.application_credential")
    secret = data.get("secret")
    if not isinstance(secret, str):
        raise BadRequest("Invalid input for field 'identity.application_credential.secret'.")
    if "id" in data:
        cred = await session.get(ApplicationCredential, _str(data["id"], "id"))
    else:
        name = _str(data.get("name"), "identity.application_credential.name")
        if "user" not in data:
            raise BadRequest("Invalid input for field 'identity.application_credential': a "
                             "name needs a user.")
        owner = await _user_ref(session, data["user"], "identity.application_credential.user")
        cred = (await session.scalars(select(ApplicationCredential).where(
            ApplicationCredential.user_id == owner.id,
            ApplicationCredential.name == name))).first()
    if cred is None or not await svc.hasher.verify(cred.secret_hash, secret):
        raise Unauthorized(AUTH_FAILED)
    if cred.expires_at and aware(cred.expires_at) <= utcnow():
        raise Unauthorized("The application credential has expired.")
    user = await session.get(User, cred.user_id)
    if user is None:
        raise Unauthorized(AUTH_FAILED)
    domain = await _check_user_usable(session, user)
    found = Authenticated(user, domain, ["application_credential"])
    found.app_cred = cred
    if cred.expires_at:
        found.expires_at = aware(cred.expires_at).timestamp()
    return found


_METHODS = {"password": _password, "token": _token, "application_credential": _app_cred}


async def _project_ref(session: AsyncSession, ref: Any) -> Project:
    ref = _dict(ref, "scope.project")
    if "id" in ref:
        project = await session.get(Project, _str(ref["id"], "scope.project.id"))
    elif "name" in ref:
        if "domain" not in ref:
            raise BadRequest("Invalid input for field 'scope.project': a project name needs "
                             "a domain.")
        domain = await _domain_ref(session, ref["domain"], "scope.project.domain")
        project = (await session.scalars(select(Project).where(
            Project.domain_id == domain.id, Project.name == _str(ref["name"], "name")))).first()
    else:
        raise BadRequest("Invalid input for field 'scope.project': give an id or a name.")
    if project is None:
        raise Unauthorized(AUTH_FAILED)
    return project


async def issue(session: AsyncSession, svc: IdentityService, auth: dict[str, Any]) -> TokenData:
    """Authenticate and scope; raises 401/403 with Keystone's messages."""
    who = await authenticate(session, svc, auth)
    user = who.user
    now = time.time()
    expires = now + svc.settings.token_expiration
    if who.expires_at is not None:
        expires = min(expires, who.expires_at)
    audit_ids = [new_audit_id()]
    if who.audit_chain:
        audit_ids.append(who.audit_chain)
    data = TokenData(
        user_id=user.id, methods=who.methods, issued_at=now, expires_at=expires,
        audit_ids=audit_ids, user_name=user.name, user_domain_id=who.user_domain.id,
        user_domain_name=who.user_domain.name,
        password_expires_at=(aware(user.password_expires_at).timestamp()
                             if user.password_expires_at else None),
    )
    scope = auth.get("scope")
    if who.app_cred is not None:
        if "scope" in auth:
            raise Unauthorized("Error authenticating with application credential: Application "
                               "credentials cannot request a scope.")
        return await _scope_app_cred(session, data, who.app_cred)
    if scope is None and who.base_token is not None and who.base_token.scoped:
        # Re-issuing a scoped token without a scope keeps its scope.
        base = who.base_token
        return replace(data, project_id=base.project_id, project_name=base.project_name,
                       project_domain_id=base.project_domain_id,
                       project_domain_name=base.project_domain_name,
                       domain_id=base.domain_id, domain_name=base.domain_name,
                       system=base.system, roles=base.roles)
    if scope is None or scope == "unscoped":
        if scope is None and user.default_project_id:
            project = await session.get(Project, user.default_project_id)
            if project is not None and not project.is_domain and project.enabled:
                roles = await effective.project_role_ids(session, user.id, project)
                if roles:
                    return await _with_project(session, data, project, roles)
        return data
    scope = _dict(scope, "auth.scope")
    if len([k for k in ("project", "domain", "system", "OS-TRUST:trust") if k in scope]) != 1:
        raise BadRequest("Invalid input for field 'auth.scope': give exactly one of project, "
                         "domain, system.")
    if "project" in scope:
        project = await _project_ref(session, scope["project"])
        if project.is_domain or not project.enabled:
            raise Unauthorized(f"Project {project.id} is not enabled or not found.")
        domain = await session.get(Project, project.domain_id)
        if domain is None or not domain.enabled:
            raise Unauthorized(f"Project {project.id} is not enabled or not found.")
        roles = await effective.project_role_ids(session, user.id, project)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to project {project.id}")
        return await _with_project(session, data, project, roles)
    if "domain" in scope:
        domain = await _domain_ref(session, scope["domain"], "scope.domain")
        if not domain.enabled:
            raise Unauthorized(f"Domain {domain.id} is not enabled.")
        roles = await effective.domain_role_ids(session, user.id, domain.id)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to domain {domain.id}")
        return replace(data, domain_id=domain.id, domain_name=domain.name,
                       roles=await effective.role_pairs(session, roles))
    if "system" in scope:
        system = _dict(scope["system"], "scope.system")
        if system.get("all") is not True:
            raise BadRequest("Invalid input for field 'scope.system': only {\"all\": true}.")
        roles = await effective.system_role_ids(session, user.id)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to the system")
        return replace(data, system="all", roles=await effective.role_pairs(session, roles))
    data, trust = await trusts.scope_token(session, data, user, scope["OS-TRUST:trust"])
    await trusts.consume_use(svc, trust)
    return data


async def _with_project(session: AsyncSession, data: TokenData, project: Project,
                        roles: set[str]) -> TokenData:
    domain = await session.get(Project, project.domain_id)
    return replace(data, project_id=project.id, project_name=project.name,
                   project_domain_id=project.domain_id,
                   project_domain_name=domain.name if domain else "",
                   roles=await effective.role_pairs(session, roles))


async def _scope_app_cred(session: AsyncSession, data: TokenData,
                          cred: ApplicationCredential) -> TokenData:
    """The credential's own scope, with its roles that the user still holds there."""
    data = replace(data, app_cred_id=cred.id, app_cred_name=cred.name,
                   app_cred_restricted=not cred.unrestricted)
    if cred.system:
        held = await effective.system_role_ids(session, cred.user_id)
        roles = await effective.implied_closure(session, set(cred.role_ids) & held)
        return replace(data, system="all", roles=await effective.role_pairs(session, roles))
    project = await session.get(Project, cred.project_id or "")
    if project is None or not project.enabled:
        raise Unauthorized(AUTH_FAILED)
    held = await effective.project_role_ids(session, cred.user_id, project)
    granted = await effective.implied_closure(session, set(cred.role_ids))
    roles = granted & held
    if not roles:
        raise Unauthorized(f"User {cred.user_id} has no access to project {project.id}")
    return await _with_project(session, data, project, roles)


def render(data: TokenData, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    from datetime import UTC, datetime

    def iso(ts: float | None) -> str | None:
        return isotime(datetime.fromtimestamp(ts, UTC), micro=True) if ts else None

    body: dict[str, Any] = {
        "methods": data.methods,
        "user": {"id": data.user_id, "name": data.user_name,
                 "domain": {"id": data.user_domain_id, "name": data.user_domain_name},
                 "password_expires_at": iso(data.password_expires_at)},
        "audit_ids": data.audit_ids,
        "expires_at": iso(data.expires_at),
        "issued_at": iso(data.issued_at),
    }
    if data.project_id:
        body["project"] = {"id": data.project_id, "name": data.project_name,
                           "domain": {"id": data.project_domain_id,
                                      "name": data.project_domain_name}}
        body["is_domain"] = False
    elif data.domain_id:
        body["domain"] = {"id": data.domain_id, "name": data.domain_name}
    elif data.system:
        body["system"] = {"all": True}
    if data.scoped:
        body["roles"] = [{"id": rid, "name": name} for rid, name in data.roles]
        if catalog is not None:
            body["catalog"] = catalog
    if data.app_cred_id:
        body["application_credential"] = {"id": data.app_cred_id, "name": data.app_cred_name,
                                           "restricted": data.app_cred_restricted}
    if data.trust_id:
        body["OS-TRUST:trust"] = {"id": data.trust_id, "impersonation": data.trust_impersonation,
                                  "trustor_user": {"id": data.trustor_user_id},
                                  "trustee_user": {"id": data.trustee_user_id}}
    return body
