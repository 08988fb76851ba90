"""What compute asks the image service (Glance v2 API): images to boot from, their data,
and snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from nimbus.clients.base import RemoteApiError, ServiceClient, json_of
from nimbus.common.context import RequestContext


class ImageClient(ServiceClient):
    service = "image"

    async def get(self, image_id: str, *,
                  ctx: RequestContext | None = None) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self.get_json(f"/v2/images/{image_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status in (404, 400):
                return None
            raise
        return body

    async def create(self, body: dict[str, Any], *,
                     ctx: RequestContext | None = None) -> dict[str, Any]:
        resp = await self.request("POST", "/v2/images", ctx=ctx, json=body)
        image: dict[str, Any] = json_of(resp)
        return image

    async def upload(self, image_id: str, data: bytes, *,
                     ctx: RequestContext | None = None) -> None:
        await self.request("PUT", f"/v2/images/{image_id}/file", ctx=ctx, content=data,
                           headers={"Content-Type": "application/octet-stream"})

    async def delete(self, image_id: str, *, ctx: RequestContext | None = None) -> None:
        try:
            await self.request("DELETE", f"/v2/images/{image_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status != 404:
                raise

    async def update(self, image_id: str, ops: list[dict[str, Any]], *,
                     ctx: RequestContext | None = None) -> dict[str, Any]:
        resp = await self.request(
            "PATCH", f"/v2/images/{image_id}", ctx=ctx, json=ops,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        image: dict[str, Any] = json_of(resp)
        return image

    async def list(self, params: dict[str, str], *,
                   ctx: RequestContext | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v2/images", ctx=ctx, params=params)
        images: list[dict[str, Any]] = body["images"]
        return images

    async def download(self, image_id: str, *,
                       ctx: RequestContext | None = None) -> AsyncIterator[bytes]:
        """The image's data, streamed."""
        headers = {"X-Auth-Token": ctx.auth_token if ctx and ctx.auth_token
                   else await self.token.get()}
        async with self.http.stream("GET", f"{self.base_url}/v2/images/{image_id}/file",
                                    headers=headers) as resp:
            if resp.status_code >= 400:
                raise RemoteApiError(self.service, resp.status_code,
                                     f"image data of {image_id} unavailable", None)
            async for chunk in resp.aiter_bytes():
                yield chunk
