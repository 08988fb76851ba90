"""Interoperable image import: glance-direct (stage, then import) and copy-image (to more
stores). Each import is a task, run in the background; the image carries Glance's progress
properties os_glance_importing_to_stores and os_glance_failed_import."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import isotime, utcnow
from nimbus.image import data, images, inspector
from nimbus.image.models import Image, ImageLocation, ImageProperty, ImageTask
from nimbus.image.staging import Staged, copy_stream, hash_file
from nimbus.image.stores import Store, StoreError
from nimbus.web.errors import BadRequest, Conflict

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)
KNOWN_METHODS = ("glance-direct", "web-download", "copy-image", "glance-download")
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
TASK_PROP = "os_glance_import_task"


def render_task(t: ImageTask) -> dict[str, Any]:
    return {"id": t.id, "type": t.type, "status": t.status, "owner": t.owner,
            "image_id": t.image_id, "user_id": t.user_id, "request_id": t.request_id,
            "input": t.input, "result": t.result, "message": t.message,
            "created_at": isotime(t.created_at), "updated_at": isotime(t.updated_at),
            "expires_at": isotime(t.expires_at), "schema": "/v2/schemas/task"}


def _targets(svc: ImageService, body: dict[str, Any], header_store: str | None,
             have: set[str]) -> tuple[list[Store], bool]:
    all_stores = body.get("all_stores", False)
    must = body.get("all_stores_must_succeed", True)
    if not isinstance(all_stores, bool):
        raise BadRequest("'all_stores' must be boolean value only")
    if not isinstance(must, bool):
        raise BadRequest("'all_stores_must_succeed' must be boolean value only")
    wanted = body.get("stores")
    if wanted is not None and all_stores:
        raise BadRequest("All_stores parameter can't be used with x-image-meta-store header "
                         "or stores parameter")
    if wanted is None and header_store:
        wanted = [header_store]
    if all_stores:
        wanted = [s.id for s in svc.stores.values() if not s.read_only and s.id not in have]
    if wanted is None:
        wanted = [svc.default_store.id]
    if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
        raise BadRequest("'stores' must be a list of store identifiers.")
    targets = []
    for store_id in dict.fromkeys(wanted):
        store = svc.stores.get(store_id)
        if store is None:
            raise Conflict(f"Store for identifier {store_id} not found")
        if store.read_only:
            raise Conflict(f"Store {store_id} is read-only")
        targets.append(store)
    return targets, must


async def start(svc: ImageService, ctx: RequestContext, image_id: str, body: Any,
                header_store: str | None) -> str:
    """Validate and record the import; the work goes on in the background. Returns the task."""
    if not isinstance(body, dict):
        raise BadRequest("Body expected in request.")
    method = body.get("method")
    if not isinstance(method, dict) or "name" not in method:
        raise BadRequest("Import request requires a 'method' field with a 'name'.")
    name = method["name"]
    if name not in svc.settings.import_methods:
        if name in KNOWN_METHODS:
            raise BadRequest(f"Import method {name} is not enabled in this cloud (enabled: "
                             f"{', '.join(svc.settings.import_methods) or 'none'}).")
        raise BadRequest(f"Unknown import method name '{name}'.")
    async with svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, ctx, image_id)
        have = {loc.store for loc in await images.locations(session, img.id)}
        targets, must = _targets(svc, body, header_store, have)
        if name == "glance-download":
            svc.enforce("image:modify_image", ctx, tgt)
            check_download_params(method)
            if img.status != "queued":
                raise Conflict(f"Image {img.id} must be queued to import it with "
                               f"'glance-download' (it is {img.status}).")
            await images.set_status(session, img.id, "importing", expect=["queued"])
        elif name == "glance-direct":
            svc.enforce("image:modify_image", ctx, tgt)
            if img.status != "uploading":
                raise Conflict(f"Image {img.id} needs to be staged (it is {img.status}) before "
                               "'glance-direct' can import it.")
            if not img.disk_format or not img.container_format:
                raise BadRequest("Properties disk_format, container_format must be set prior "
                                 "to importing data.")
            await images.set_status(session, img.id, "importing", expect=["uploading"])
        else:  # copy-image
            svc.enforce("image:copy_image", ctx, tgt)
            if img.status != "active":
                raise Conflict(f"Image {img.id} must be active to copy it (it is "
                               f"{img.status}).")
            targets = [s for s in targets if s.id not in have]
            if not targets:
                raise Conflict(f"Image {img.id} is already in the requested stores.")
        now = utcnow()
        task = ImageTask(id=new_uuid(), image_id=img.id, type="api_image_import",
                         status="pending", owner=ctx.project_id, user_id=ctx.user_id,
                         request_id=ctx.request_id, created_at=now, updated_at=now,
                         expires_at=now + timedelta(hours=48),
                         input={"image_id": img.id, "import_req": body, "backend":
                                [s.id for s in targets]})
        session.add(task)
        await _set_props(session, img.id, {IMPORTING: ",".join(s.id for s in targets),
                                           FAILED: "", TASK_PROP: task.id})
        owner, disk_format, container_format = img.owner, img.disk_format, img.container_format
    if name == "glance-download":
        from nimbus.image.download_import import run as download

        svc.spawn(download(svc, ctx, task.id, img.id, method, targets),
                  name=f"image-import-{img.id}")
        return task.id
    svc.spawn(_run(svc, task.id, img.id, name, targets, must, owner, disk_format,
                   container_format), name=f"image-import-{img.id}")
    return task.id


def check_download_params(method: dict[str, Any]) -> None:
    source = method.get("glance_image_id")
    if not isinstance(source, str) or not images.UUID_RE.match(source):
        raise BadRequest(f"glance-download: the remote image id does not look like a UUID: "
                         f"{source!r}")
    for key in ("glance_region", "glance_service_interface"):
        if key in method and not isinstance(method[key], str):
            raise BadRequest(f"glance-download: {key} must be a string.")


async def set_props(session: AsyncSession, image_id: str, values: dict[str, str]) -> None:
    await _set_props(session, image_id, values)


async def task_state(svc: ImageService, task_id: str, status: str, message: str = "",
                     result: dict[str, Any] | None = None) -> None:
    await _task_state(svc, task_id, status, message, result)


async def _set_props(session: AsyncSession, image_id: str, values: dict[str, str]) -> None:
    await session.execute(delete(ImageProperty).where(ImageProperty.image_id == image_id,
                                                      ImageProperty.name.in_(list(values))))
    session.add_all([ImageProperty(image_id=image_id, name=k, value=v)
                     for k, v in values.items()])


async def _task_state(svc: ImageService, task_id: str, status: str, message: str = "",
                      result: dict[str, Any] | None = None) -> None:
    async with svc.db.transaction() as session:
        task = await session.get(ImageTask, task_id)
        if task is not None:
            task.status, task.message, task.updated_at = status, message, utcnow()
            if result is not None:
                task.result = result


async def _run(svc: ImageService, task_id: str, image_id: str, method: str,
               targets: list[Store], must: bool, owner: str | None, disk_format: str | None,
               container_format: str | None) -> None:
    svc.busy.add(image_id)
    try:
        await _task_state(svc, task_id, "processing")
        if method == "glance-direct":
            await _direct(svc, task_id, image_id, targets, must, owner, disk_format,
                          container_format)
        else:
            await _copy(svc, task_id, image_id, targets, must)
    except asyncio.CancelledError:
        await _task_state(svc, task_id, "failure", "The import was interrupted.")
        raise
    except Exception as exc:
        LOG.exception("import of image %s failed", image_id)
        await _task_state(svc, task_id, "failure", str(exc))
    finally:
        svc.busy.discard(image_id)


async def _direct(svc: ImageService, task_id: str, image_id: str, targets: list[Store],
                  must: bool, owner: str | None, disk_format: str | None,
                  container_format: str | None) -> None:
    path = data.stage_path(svc, image_id)
    if not await asyncio.to_thread(path.exists):
        await data.revert(svc, image_id, "importing")
        await _task_state(svc, task_id, "failure", "The staged data is gone.")
        return
    staged: Staged = await hash_file(path)
    try:
        virtual_size = await data.check_format(svc, path, disk_format, container_format)
    except inspector.InspectionFailed as exc:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await data.revert(svc, image_id, "importing", "killed")
        await _finish_props(svc, image_id, failed=[s.id for s in targets])
        await _task_state(svc, task_id, "failure", str(exc))
        return
    async def imported(session: AsyncSession) -> None:
        await _set_props(session, image_id, {IMPORTING: "", FAILED: ""})

    try:
        await data.store_and_activate(svc, image_id, owner, staged, virtual_size, targets,
                                      from_status="importing", on_activate=imported)
    except Exception as exc:
        await _finish_props(svc, image_id, failed=[s.id for s in targets])
        await _task_state(svc, task_id, "failure", str(exc))
        return
    await _task_state(svc, task_id, "success", result={"image_id": image_id})
    await svc.notify("image.import", {"id": image_id, "stores": [s.id for s in targets]})
    await svc.notify("image.activate", {"id": image_id})


async def _finish_props(svc: ImageService, image_id: str, failed: list[str]) -> None:
    async with svc.db.transaction() as session:
        if await session.get(Image, image_id) is not None:
            await _set_props(session, image_id, {IMPORTING: "", FAILED: ",".join(failed)})


async def _copy(svc: ImageService, task_id: str, image_id: str, targets: list[Store],
                must: bool) -> None:
    async with svc.db.session() as session:
        locs = await images.locations(session, image_id)
    source = next(((svc.stores[loc.store], loc.url) for loc in locs
                   if loc.store in svc.stores), None)
    if source is None:
        await _finish_props(svc, image_id, failed=[s.id for s in targets])
        await _task_state(svc, task_id, "failure", "The image has no readable data.")
        return
    tmp = data.temp_path(svc, image_id)
    added: list[tuple[Store, str]] = []
    failed: list[str] = []
    try:
        await copy_stream(source[0].read(source[1]), tmp)
        for store in targets:
            try:
                added.append((store, await store.add(image_id, tmp, move=False)))
            except (StoreError, OSError) as exc:
                LOG.warning("copy of image %s to store %s failed: %s", image_id, store.id, exc)
                failed.append(store.id)
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    if failed and must:
        await data.discard(added)
        added = []
    async with svc.db.transaction() as session:
        img = await session.get(Image, image_id)
        if img is None:
            await data.discard(added)
            await _task_state(svc, task_id, "failure", "The image was deleted.")
            return
        present = set((await session.scalars(select(ImageLocation.store).where(
            ImageLocation.image_id == image_id))).all())
        session.add_all([ImageLocation(image_id=image_id, store=s.id, url=url,
                                       meta={"store": s.id})
                         for s, url in added if s.id not in present])
        failed_all = failed if not must else [s.id for s in targets] if failed else []
        await _set_props(session, image_id, {IMPORTING: "", FAILED: ",".join(failed_all)})
        await images.touch(session, image_id)
    if failed and (must or not added):
        await _task_state(svc, task_id, "failure", f"Copy failed for stores: {failed}")
    else:
        await _task_state(svc, task_id, "success", result={"image_id": image_id})
        await svc.notify("image.import", {"id": image_id, "stores": [s.id for s, _ in added]})


async def tasks_of(session: AsyncSession, image_id: str) -> list[ImageTask]:
    return list((await session.scalars(select(ImageTask).where(
        ImageTask.image_id == image_id).order_by(ImageTask.created_at))).all())

