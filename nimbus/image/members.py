"""Image members: sharing an image with other projects, who accept or reject it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import isotime, utcnow
from nimbus.image import images
from nimbus.image.models import Image, ImageMember
from nimbus.web.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

STATUSES = ("pending", "accepted", "rejected")


def render(m: ImageMember) -> dict[str, Any]:
    return {"image_id": m.image_id, "member_id": m.member, "status": m.status,
            "created_at": isotime(m.created_at), "updated_at": isotime(m.updated_at),
            "schema": "/v2/schemas/member"}


def _only_shared(img: Image) -> None:
    if img.visibility != "shared":
        raise Forbidden(f"Only shared images have members; image {img.id} is "
                        f"{img.visibility}.")


def member_not_found(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"{member_id} is not a member of image {image_id}.")


async def add(session: AsyncSession, svc: ImageService, ctx: RequestContext, image_id: str,
              member_id: Any) -> ImageMember:
    img, tgt = await images.get_visible(session, ctx, image_id)
    svc.enforce("image:add_member", ctx, tgt)
    _only_shared(img)
    if not isinstance(member_id, str) or not member_id or len(member_id) > 255:
        raise BadRequest("Invalid value for 'member': a project id of 1 to 255 characters.")
    if await session.get(ImageMember, (img.id, member_id)) is not None:
        raise Conflict(f"The target member {member_id} is already associated with image "
                       f"{img.id}.")
    count = int(await session.scalar(select(func.count()).select_from(ImageMember).where(
        ImageMember.image_id == img.id)) or 0)
    if count + 1 > svc.settings.member_quota:
        raise PayloadTooLarge(f"Maximum number of image members exceeded: attempted "
                              f"{count + 1}, maximum {svc.settings.member_quota}.")
    now = utcnow()
    member = ImageMember(image_id=img.id, member=member_id, status="pending",
                         created_at=now, updated_at=now)
    session.add(member)
    await session.flush()
    return member


async def list_members(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                       image_id: str) -> list[ImageMember]:
    img, tgt = await images.get_visible(session, ctx, image_id)
    svc.enforce("image:get_members", ctx, tgt)
    _only_shared(img)
    query = select(ImageMember).where(ImageMember.image_id == img.id)
    if not ctx.is_admin and img.owner != ctx.project_id:
        query = query.where(ImageMember.member == ctx.project_id)
    return list((await session.scalars(query.order_by(ImageMember.created_at))).all())


async def get(session: AsyncSession, svc: ImageService, ctx: RequestContext, image_id: str,
              member_id: str) -> ImageMember:
    img, tgt = await images.get_visible(session, ctx, image_id)
    svc.enforce("image:get_member", ctx, tgt)
    _only_shared(img)
    if not ctx.is_admin and img.owner != ctx.project_id and member_id != ctx.project_id:
        raise member_not_found(image_id, member_id)
    member = await session.get(ImageMember, (img.id, member_id))
    if member is None:
        raise member_not_found(image_id, member_id)
    return member


async def update(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                 image_id: str, member_id: str, status: Any) -> ImageMember:
    img, tgt = await images.get_visible(session, ctx, image_id)
    _only_shared(img)
    member = await session.get(ImageMember, (img.id, member_id))
    if member is None:
        raise member_not_found(image_id, member_id)
    svc.enforce("image:modify_member", ctx, {**tgt, "member_id": member.member})
    if status not in STATUSES:
        raise BadRequest(f"Invalid status: {status!r}; it must be one of "
                         f"{', '.join(STATUSES)}.")
    member.status = status
    member.updated_at = utcnow()
    await session.flush()
    return member


async def remove(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                 image_id: str, member_id: str) -> None:
    img, tgt = await images.get_visible(session, ctx, image_id)
    svc.enforce("image:delete_member", ctx, tgt)
    _only_shared(img)
    member = await session.get(ImageMember, (img.id, member_id))
    if member is None:
        raise member_not_found(image_id, member_id)
    await session.delete(member)
