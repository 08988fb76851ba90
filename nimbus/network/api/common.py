"""Helpers every networking route uses: the caller, policy, list parameters, links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Depends
from starlette.requests import Request

from nimbus.common.context import RequestContext
from nimbus.network import query
from nimbus.network.errors import bad_request
from nimbus.web.auth import request_context
from nimbus.web.responses import dumps

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService


class Caller:
    """The authenticated caller plus the service: what every route needs."""

    def __init__(self, request: Request, ctx: RequestContext, svc: NetworkService) -> None:
        self.request = request
        self.ctx = ctx
        self.svc = svc

    @property
    def project_id(self) -> str:
        return self.ctx.project_id or ""

    @property
    def is_admin(self) -> bool:
        return self.ctx.is_admin

    def enforce(self, rule: str, target: dict[str, Any] | None = None) -> None:
        self.svc.enforcer.enforce(rule, self.ctx.policy_credentials(), target or {})

    def allowed(self, rule: str, target: dict[str, Any] | None = None) -> bool:
        return self.svc.enforcer.check_rule(rule, self.ctx.policy_credentials(), target or {})

    def enforce_attrs(self, action: str, kind: str, body: dict[str, Any],
                      target: dict[str, Any]) -> None:
        """The action itself, then each attribute that has a rule of its own."""
        self.enforce(f"{action}_{kind}", target)
        for name in body:
            rule = f"{action}_{kind}:{name}"
            if rule in self.svc.enforcer.texts:
                self.enforce(rule, target)

    def hidden(self, kind: str) -> set[str]:
        """Attributes of `kind` the caller may not read (provider:*, binding:*...).

        These rules look at roles only, so the answer is remembered per set of roles."""
        key = (kind, tuple(sorted(self.ctx.roles)), self.ctx.is_admin_override)
        found = self.svc.hidden_cache.get(key)
        if found is None:
            prefix = f"get_{kind}:"
            creds = self.ctx.policy_credentials()
            found = {rule[len(prefix):] for rule in self.svc.enforcer.texts
                     if rule.startswith(prefix)
                     and not self.svc.enforcer.check_rule(rule, creds, {"project_id": None})}
            self.svc.hidden_cache[key] = found
        return found

    def changed(self) -> None:
        """After a commit that touched networks, subnets or quotas."""
        self.svc.plans.clear()

    def params(self) -> query.ListParams:
        return query.parse(self.request.query_params.multi_items())

    def if_match(self) -> str | None:
        return self.request.headers.get("if-match")

    def url(self, path: str) -> str:
        return str(self.request.base_url).rstrip("/") + path

    def links(self, collection: str, rows: list[Any], more: bool,
              params: query.ListParams) -> dict[str, Any]:
        """<collection>_links for paginated lists: next when more follow, previous when
        the page started after a marker."""
        if not params.limit:
            return {}
        links = []
        base = [(k, v) for k, v in self.request.query_params.multi_items()
                if k not in ("marker", "page_reverse")]
        path = str(self.request.url).split("?")[0]
        forward_more = more if not params.page_reverse else bool(params.marker)
        backward_more = bool(params.marker) if not params.page_reverse else more
        if rows and forward_more:
            links.append({"rel": "next", "href": f"{path}?" + urlencode(
                [*base, ("marker", rows[-1].id)])})
        if rows and backward_more:
            links.append({"rel": "previous", "href": f"{path}?" + urlencode(
                [*base, ("marker", rows[0].id), ("page_reverse", "True")])})
        return {f"{collection}_links": links} if links else {}


def service(request: Request) -> NetworkService:
    svc: NetworkService = request.app.state.network
    return svc


async def caller(request: Request, ctx: RequestContext = Depends(request_context)) -> Caller:
    svc = service(request)
    pid = ctx.project_id
    if pid and pid not in svc.bootstrapped_projects and \
            ctx.project_name == svc.cloud.settings.identity.admin_project and \
            ctx.project_domain_id == "default":
        from nimbus.network.bootstrap import maybe_admin_project

        await maybe_admin_project(svc, ctx)
    if request.method not in ("GET", "HEAD") and not (
            request.method == "POST" and request.url.path.endswith("/ports")):
        # A change may concern what port creation remembers; the network, subnet and quota
        # routes forget again once they have committed (Caller.changed).
        svc.plans.clear()
    return Caller(request, ctx, svc)


async def json_body(request: Request) -> Any:
    """The request's JSON, or a Neutron-shaped 400."""
    raw = await request.body()
    if not raw:
        raise bad_request("Body contains invalid data: the request body is empty.")
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("Body contains invalid data: malformed JSON.") from None


def resource_body(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(kind), dict):
        raise bad_request(f"Resource body required: a JSON object under '{kind}'.")
    if len(body) != 1:
        raise bad_request(f"Resource body required: only '{kind}' may be given.")
    inner: dict[str, Any] = body[kind]
    return inner


def bulk_bodies(body: Any, kind: str, plural: str) -> tuple[list[dict[str, Any]], bool]:
    """Single ({"network": {...}}) or bulk ({"networks": [...]}) create bodies."""
    if isinstance(body, dict) and plural in body and len(body) == 1:
        items = body[plural]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict)
                                                               for i in items):
            raise bad_request(f"Resources required: '{plural}' must be a non-empty list of "
                              "objects.")
        return items, True
    return [resource_body(body, kind)], False


__all__ = ["Caller", "bulk_bodies", "caller", "dumps", "json_body", "resource_body"]
