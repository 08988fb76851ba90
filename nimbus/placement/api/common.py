"""What every placement route needs: the caller, the microversion, JSON bodies checked against
the reference's schemas, query strings parsed as upstream parses them, and response helpers."""

from __future__ import annotations

from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import aware, utcnow
from nimbus.placement import errors, providers
from nimbus.placement.candidates import Group
from nimbus.placement.index import Index
from nimbus.placement.schema import Schema, is_uuid, validate
from nimbus.placement.versions import v
from nimbus.web.auth import request_context
from nimbus.web.errors import ApiError, BadRequest, MethodNotAllowed, NotFound
from nimbus.web.microversion import Version, requested
from nimbus.web.responses import json_response

if TYPE_CHECKING:
    from nimbus.placement.service import PlacementService


class Caller:
    def __init__(self, request: Request, ctx: RequestContext, svc: PlacementService) -> None:
        self.request = request
        self.ctx = ctx
        self.svc = svc
        self.version: Version = requested(request.scope)

    def at_least(self, minor: int) -> bool:
        return self.version >= v(minor)

    def enforce(self, rule: str) -> None:
        self.svc.enforce(f"placement:{rule}", self.ctx)

    def require(self, minor: int, *, status: int = 404) -> None:
        """Routes that appeared in a later microversion do not exist before it."""
        if not self.at_least(minor):
            if status == 405:
                raise MethodNotAllowed("The method specified is not allowed for this resource.")
            raise NotFound("The resource could not be found.")

    @property
    def prefix(self) -> str:
        return str(self.request.scope.get("root_path", ""))

    def location(self, path: str) -> str:
        """Absolute, as webob makes them: clients join relative ones to the endpoint."""
        return str(self.request.base_url).rstrip("/") + path

    async def body(self, schema: Schema) -> Any:
        kind = self.request.headers.get("content-type", "").split(";")[0].strip()
        if kind != "application/json":
            raise ApiError(f"The media type {kind or 'None'} is not supported, use "
                           "application/json", status=415)
        raw = await self.request.body()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"Malformed JSON: {exc}") from None
        return validate(data, schema)

    def query(self, allowed: set[str]) -> dict[str, list[str]]:
        """The query string as lists per key; 400 on keys the version does not know."""
        out: dict[str, list[str]] = {}
        for key, value in self.request.query_params.multi_items():
            out.setdefault(key, []).append(value)
        unknown = sorted(k for k in out if k not in allowed)
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            verb = "were" if len(unknown) > 1 else "was"
            raise BadRequest(f"Invalid query string parameters: Additional properties are not "
                             f"allowed ({names} {verb} unexpected)")
        return out

    def respond(self, body: Any, status: int = 200, *, modified: Any = None,
                headers: dict[str, str] | None = None) -> Response:
        return json_response(body, status, self._headers(modified, headers))

    def respond_json(self, chunks: list[bytes], status: int = 200, *, modified: Any = None,
                     headers: dict[str, str] | None = None) -> Response:
        """respond() for a body already serialised, in one or more chunks."""
        if len(chunks) == 1:
            return Response(chunks[0], status_code=status, media_type="application/json",
                            headers=self._headers(modified, headers))
        return JsonChunks(chunks, status, self._headers(modified, headers))

    def _headers(self, modified: Any, headers: dict[str, str] | None) -> dict[str, str] | None:
        extra = dict(headers or {})
        if self.at_least(15):
            extra["last-modified"] = http_date(modified)
            extra["cache-control"] = "no-cache"
        return extra or None


class JsonChunks(Response):
    """A JSON body sent as the chunks it was built in, its length announced up front."""

    media_type = "application/json"

    def __init__(self, chunks: list[bytes], status: int, headers: dict[str, str] | None
                 ) -> None:
        self.status_code = status
        self.background = None
        self.chunks = chunks
        self.init_headers({**(headers or {}), "content-length": str(sum(map(len, chunks)))})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        last = len(self.chunks) - 1
        for i, chunk in enumerate(self.chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < last})


async def require_provider(c: Caller, uuid: str) -> None:
    """404 for an unknown provider before the body is read (upstream's order). A provider the
    index knows needs no trip to the database; the write that follows reads it again anyway
    (and answers 404 should it have gone meanwhile)."""
    if uuid in c.svc.index.by_uuid:
        return
    async with c.svc.db.session() as session:
        await providers.get(session, uuid)


def http_date(when: Any = None) -> str:
    return format_datetime(aware(when or utcnow()), usegmt=True)


def service(request: Request) -> PlacementService:
    svc: PlacementService = request.app.state.placement
    return svc


async def caller(request: Request) -> Caller:
    """FastAPI dependency: the caller, or 401 (request_context's check, without a second
    dependency to solve on every request)."""
    ctx: RequestContext | None = request.scope.get("nimbus.context")
    if ctx is None or ctx.user_id is None:
        await request_context(request)  # raises its 401
    assert ctx is not None
    return Caller(request, ctx, service(request))


def no_content() -> Response:
    return Response(status_code=204)


# -- query string parsing (upstream's util.normalize_*) ----------------------------------------
def parse_resources(value: str) -> dict[str, int]:
    if value.strip() == "":
        raise BadRequest("Badly formed resources parameter. Expected resources query string "
                         "parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: empty "
                         "string.")
    out: dict[str, int] = {}
    for part in value.split(","):
        bits = part.split(":")
        if len(bits) != 2:
            raise BadRequest("Badly formed resources parameter. Expected resources query "
                             "string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. "
                             f"Got: {part}.")
        name, amount_text = bits
        try:
            amount = int(amount_text)
        except ValueError:
            raise BadRequest(f"Requested resource {name} expected positive integer amount. "
                             f"Got: {amount_text}.") from None
        if amount < 1:
            raise BadRequest(f"Requested resource {name} requires amount >= 1. Got: "
                             f"{amount}.")
        out[name] = amount
    return out


def parse_required(values: list[str], c: Caller) -> tuple[list[frozenset[str]], set[str]]:
    """(all-of list of any-of sets, forbidden) from one or more `required` values."""
    allow_forbidden = c.at_least(22)
    allow_any = c.at_least(39)
    if not allow_any:
        values = values[-1:]
    required: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        if value.startswith("in:"):
            if not allow_any:
                raise BadRequest("Invalid query string parameters: The format "
                                 "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since "
                                 f"microversion 1.39. Got: {value}")
            names = {t.strip() for t in value[3:].split(",")}
            if not all(names):
                raise BadRequest("Invalid query string parameters: Expected 'required' "
                                 "parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC."
                                 f" Got an empty trait in: {value}")
            if any(t.startswith("!") for t in names):
                raise BadRequest("Invalid query string parameters: The format "
                                 "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden "
                                 f"traits. Got: {value}")
            required.append(frozenset(names))
            continue
        names_list = [t.strip() for t in value.split(",")]
        bad = {t.lstrip("!") for t in names_list if t.startswith("!")}
        form = "HW_CPU_X86_VMX,!CUSTOM_MAGIC" if allow_forbidden else \
            "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        if not all(names_list) or not all(bad):
            raise BadRequest("Invalid query string parameters: Expected 'required' parameter "
                             f"value of the form: {form}. Got an empty trait in: {value}")
        if bad and not allow_forbidden:
            raise BadRequest("Invalid query string parameters: Expected 'required' parameter "
                             f"value of the form: {form}. Got: {value}")
        required.extend(frozenset({t}) for t in names_list if not t.startswith("!"))
        forbidden |= bad
    return required, forbidden


def parse_member_of(values: list[str], c: Caller, suffix: str = ""
                    ) -> tuple[list[frozenset[str]], set[str]]:
    if not c.at_least(24) and len(values) > 1:
        raise BadRequest(f"Multiple member_of{suffix} parameters are not supported")
    required: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        if "," in value and not value.startswith(("in:", "!in:")):
            raise BadRequest("Multiple values for 'member_of' must be prefixed with the 'in:' "
                             f"or '!in:' keyword using the valid microversion. Got: {value}")
        want: set[str] = set()
        avoid: set[str] = set()
        if value.startswith("!in:"):
            avoid = set(value[4:].split(","))
        elif value.startswith("!"):
            avoid = {value[1:]}
        elif value.startswith("in:"):
            want = set(value[3:].split(","))
        else:
            want = {value}
        for agg in want | avoid:
            if not is_uuid(agg):
                raise BadRequest("Invalid query string parameters: Expected 'member_of' "
                                 f"parameter to contain valid UUID(s). Got: {agg}")
        if avoid and not c.at_least(32):
            raise BadRequest(f"Forbidden member_of{suffix} parameters are not supported in "
                             "the specified microversion")
        if want:
            required.append(frozenset(want))
        forbidden |= avoid
    return required, forbidden


def parse_in_tree(value: str) -> str:
    text = value.strip()
    if not is_uuid(text):
        raise BadRequest("Invalid query string parameters: Expected 'in_tree' parameter to be "
                         f"a format of uuid. Got: {value}")
    return text


def bad_value(message: str) -> BadRequest:
    return BadRequest(message, code=errors.QUERYPARAM_BAD_VALUE)


def make_group(c: Caller, index: Index, suffix: str, *, resources: dict[str, int],
               required: list[frozenset[str]], forbidden: set[str],
               member_of: list[frozenset[str]], forbidden_aggs: set[str],
               in_tree: str | None, trait_error: str = "") -> Group:
    """A request group in index ids; 400 for unknown classes and traits (unknown aggregates
    simply match nothing)."""
    res: dict[int, int] = {}
    for name, amount in resources.items():
        rc_id = index.rc_ids.get(name)
        if rc_id is None:
            raise BadRequest(f"Invalid resource class in resources parameter: No such "
                             f"resource class {name}.")
        res[rc_id] = amount
    names = {t for any_of in required for t in any_of} | forbidden
    unknown = sorted(n for n in names if n not in index.trait_ids)
    if unknown:
        raise BadRequest(f"{trait_error}No such trait(s): {', '.join(unknown)}.")
    ids = index.trait_ids
    aggs = index.agg_ids
    return Group(
        suffix=suffix, resources=res,
        required=[frozenset(ids[t] for t in any_of) for any_of in required],
        forbidden=frozenset(ids[t] for t in forbidden),
        member_of=[frozenset(aggs[a] for a in any_of if a in aggs) for any_of in member_of],
        forbidden_aggs=frozenset(aggs[a] for a in forbidden_aggs if a in aggs),
        in_tree=in_tree)
