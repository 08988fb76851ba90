"""/v2/images/{image_id}/members: sharing."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, StrictStr
from starlette.responses import Response

from nimbus.image import members as logic
from nimbus.image.api.common import Caller, caller
from nimbus.web.responses import json_response, no_content

router = APIRouter()


class MemberCreate(BaseModel):
    member: StrictStr


class MemberUpdate(BaseModel):
    status: StrictStr


@router.post("/v2/images/{image_id}/members")
async def add_member(image_id: str, body: MemberCreate = Body(...),
                     c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        member = await logic.add(session, c.svc, c.ctx, image_id, body.member)
        out = logic.render(member)
    await c.svc.notify("image.member.create", out)
    return json_response(out)


@router.get("/v2/images/{image_id}/members")
async def list_members(image_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        rows = await logic.list_members(session, c.svc, c.ctx, image_id)
    return json_response({"members": [logic.render(m) for m in rows],
                          "schema": "/v2/schemas/members"})


@router.get("/v2/images/{image_id}/members/{member_id}")
async def show_member(image_id: str, member_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        member = await logic.get(session, c.svc, c.ctx, image_id, member_id)
    return json_response(logic.render(member))


@router.put("/v2/images/{image_id}/members/{member_id}")
async def update_member(image_id: str, member_id: str, body: MemberUpdate = Body(...),
                        c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        member = await logic.update(session, c.svc, c.ctx, image_id, member_id, body.status)
        out = logic.render(member)
    await c.svc.notify("image.member.update", out)
    return json_response(out)


@router.delete("/v2/images/{image_id}/members/{member_id}", status_code=204)
async def delete_member(image_id: str, member_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        await logic.remove(session, c.svc, c.ctx, image_id, member_id)
    await c.svc.notify("image.member.delete", {"image_id": image_id, "member_id": member_id})
    return no_content()
