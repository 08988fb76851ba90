"""Token authentication applied in every service, without calling identity per request."""

from __future__ import annotations

from starlette.requests import Request

from nimbus.common.context import RequestContext
from nimbus.common.revocation import RevocationList
from nimbus.common.tokens import InvalidToken, TokenData, TokenVerifier
from nimbus.web.errors import Unauthorized


class TokenAuth:
    """Signature + expiry (cached) and revocation (always) for one process."""

    def __init__(self, verifier: TokenVerifier, revocations: RevocationList) -> None:
        self.verifier = verifier
        self.revocations = revocations

    def validate(self, token: str) -> TokenData:
        data = self.verifier.verify(token)
        if self.revocations.is_revoked(data):
            raise InvalidToken("The token has been revoked.")
        return data


def context_from_token(data: TokenData, token: str, request_id: str = "") -> RequestContext:
    return RequestContext(
        request_id=request_id,
        user_id=data.user_id,
        user_name=data.user_name,
        user_domain_id=data.user_domain_id,
        user_domain_name=data.user_domain_name,
        project_id=data.project_id,
        project_name=data.project_name,
        project_domain_id=data.project_domain_id,
        project_domain_name=data.project_domain_name,
        domain_id=data.domain_id,
        domain_name=data.domain_name,
        system_scope=data.system,
        roles=data.role_names,
        role_ids=[rid for rid, _ in data.roles],
        auth_token=token,
        audit_ids=list(data.audit_ids),
        application_credential_id=data.app_cred_id,
    )


# Dependencies are async on purpose: FastAPI runs sync ones in a thread pool.
async def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the caller's context, or 401."""
    ctx: RequestContext | None = request.scope.get("nimbus.context")
    if ctx is None or ctx.user_id is None:
        reason = request.scope.get("nimbus.auth_error")
        raise Unauthorized(reason or "The request you have made requires authentication.")
    return ctx


async def optional_context(request: Request) -> RequestContext:
    """The context of a route that also answers anonymous callers."""
    ctx: RequestContext | None = request.scope.get("nimbus.context")
    return ctx if ctx is not None else RequestContext()
