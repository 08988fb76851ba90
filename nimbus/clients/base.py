"""Typed clients one service uses to call another's public API, over HTTP like any client.

Calls carry either the end user's token (acting for them, as Nova calls Glance) or the cloud's
service token (acting for the cloud). Errors come back as ApiError with the remote status and
message, so a 404 from the image service can surface as a 400 "image not found" in compute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from nimbus.clients.credentials import SERVICE_PROJECT, SERVICE_USER, service_password
from nimbus.common.context import RequestContext
from nimbus.web.errors import ApiError
from nimbus.web.responses import dumps

if TYPE_CHECKING:
    from nimbus.cloud import Cloud


# A call answered in this process gets the HTTP client's 60 s limit too (ASGITransport has
# no timeouts of its own).
LOCAL_TIMEOUT = 60.0


class RemoteApiError(ApiError):
    """A non-2xx answer from another service."""

    def __init__(self, service: str, status: int, message: str, body: Any) -> None:
        super().__init__(message, status=status)
        self.service = service
        self.body = body


def _message(body: Any, fallback: str) -> str:
    """Pull the human message out of any OpenStack error body shape."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "message" in body:
            return str(body["message"])
    return fallback


def json_of(resp: httpx.Response) -> Any:
    """The response's JSON body (orjson: the stdlib decoder costs several times more on the
    large answers placement and the network service give); ValueError when it is not JSON."""
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return resp.json()  # what orjson refuses but the standard library reads, or raise


class ServiceToken:
    """A cached project-scoped token for the service account, renewed before it expires."""

    def __init__(self, cloud: Cloud, http: httpx.AsyncClient,
                 local: Callable[[str], httpx.AsyncClient | None] | None = None) -> None:
        self.cloud = cloud
        self.http = http
        self._local = local
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, force: bool = False) -> str:
        async with self._lock:
            if force or self._token is None or time.time() >= self._renew_at:
                await self._login()
            assert self._token is not None
            return self._token

    async def _login(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": SERVICE_USER, "domain": {"id": "default"},
            "password": service_password(self.cloud.settings.state_dir)}}},
            "scope": {"project": {"name": SERVICE_PROJECT, "domain": {"id": "default"}}}}}
        url = self.cloud.endpoint_url("identity") + "/v3/auth/tokens?nocatalog"
        local = self._local("identity") if self._local is not None else None
        if local is not None:
            async with asyncio.timeout(LOCAL_TIMEOUT):
                resp = await local.post(url, json=body)
        else:
            resp = await self.http.post(url, json=body)
        if resp.status_code != 201:
            raise RemoteApiError("identity", resp.status_code,
                                 "the service account could not log in", resp.text)
        self._token = resp.headers["X-Subject-Token"]
        lifetime = self.cloud.token_auth.verifier.verify(self._token).expires_at - time.time()
        self._renew_at = time.time() + max(lifetime * 0.8, 1.0)


class ServiceClient:
    """Base for the per-service clients: URL building, auth, error mapping."""

    service = ""

    def __init__(self, cloud: Cloud, http: httpx.AsyncClient, token: ServiceToken,
                 local: Callable[[str], httpx.AsyncClient | None] | None = None) -> None:
        self.cloud = cloud
        self.http = http
        self.token = token
        self._local = local

    @property
    def base_url(self) -> str:
        return self.cloud.endpoint_url(self.service)

    async def request(self, method: str, path: str, *, ctx: RequestContext | None = None,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """ctx with a token: act as that user; otherwise act as the cloud's service account."""
        all_headers = dict(headers or {})
        if "json" in kwargs:
            # Encoded once with orjson (as every API answers) instead of httpx's json.dumps.
            kwargs["content"] = dumps(kwargs.pop("json"))
            if not any(k.lower() == "content-type" for k in all_headers):
                all_headers["Content-Type"] = "application/json"
        as_user = ctx is not None and ctx.auth_token is not None
        for attempt in (1, 2):
            token = ctx.auth_token if as_user and ctx else await self.token.get(
                force=attempt == 2)
            all_headers["X-Auth-Token"] = token or ""
            if ctx is not None and ctx.request_id:
                all_headers["X-OpenStack-Request-ID"] = ctx.global_request_id or ctx.request_id
            local = self._local(self.service) if self._local is not None else None
            if local is not None:
                # Answered by this process: the same request through its own ASGI app.
                async with asyncio.timeout(LOCAL_TIMEOUT):
                    resp = await local.request(method, self.base_url + path,
                                               headers=all_headers, **kwargs)
            else:
                resp = await self.http.request(method, self.base_url + path,
                                               headers=all_headers, **kwargs)
            if resp.status_code != 401 or as_user:
                break
        if resp.status_code >= 400:
            try:
                body: Any = json_of(resp)
            except ValueError:
                body = resp.text
            raise RemoteApiError(self.service, resp.status_code,
                                 _message(body, f"{self.service} answered {resp.status_code}"),
                                 body)
        return resp

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return json_of(await self.request("GET", path, **kwargs))


C = TypeVar("C", bound=ServiceClient)


class Clients:
    """One per Cloud: shared connection pool and service token, a client per service.

    A service this process hosts itself (the all-in-one) is called through the process's own
    ASGI app (the gateway the web server serves): the same request, the same middleware, token
    check and answer, without the loopback socket and HTTP parsing on both sides. Streamed
    downloads (ImageClient.download) still go over HTTP."""

    def __init__(self, cloud: Cloud) -> None:
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5),
                                      limits=httpx.Limits(max_connections=100))
        self.cloud = cloud
        self._in_process: httpx.AsyncClient | None = None
        self.token = ServiceToken(cloud, self.http, self.local)
        self._clients: dict[type[ServiceClient], ServiceClient] = {}

    def local(self, service: str) -> httpx.AsyncClient | None:
        """The in-process client when this process answers `service`, else None."""
        if not self.cloud.hosts_locally(service):
            return None
        if self._in_process is None:
            transport = httpx.ASGITransport(app=self.cloud.asgi_app(),
                                            raise_app_exceptions=False,
                                            client=("127.0.0.1", 0))
            self._in_process = httpx.AsyncClient(transport=transport)
        return self._in_process

    def get(self, kind: type[C]) -> C:
        client = self._clients.get(kind)
        if client is None:
            client = self._clients[kind] = kind(self.cloud, self.http, self.token, self.local)
        assert isinstance(client, kind)
        return client

    async def close(self) -> None:
        await self.http.aclose()
        if self._in_process is not None:
            await self._in_process.aclose()
            self._in_process = None
