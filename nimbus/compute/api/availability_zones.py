"""/os-availability-zone: zones that have compute services (detail: hosts and services)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.responses import Response

from nimbus.common.timeutils import isotime
from nimbus.compute import hosts
from nimbus.compute.api.common import Caller, caller
from nimbus.compute.models import Service
from nimbus.web.responses import json_response

router = APIRouter()


async def _zones(c: Caller) -> tuple[list[Service], dict[str, str], list[str], list[str]]:
    settings = c.svc.settings
    async with c.svc.db.session() as session:
        services = list((await session.scalars(select(Service).order_by(Service.id))).all())
        zones = await hosts.host_zones(session, settings.default_availability_zone,
                                       sorted({s.host for s in services}))
    def zone(s: Service) -> str:
        return zones[s.host] if s.binary == hosts.COMPUTE_BINARY \
            else settings.internal_availability_zone
    by_service = {s.id: zone(s) for s in services}
    available = sorted({by_service[s.id] for s in services if not s.disabled})
    unavailable = sorted({by_service[s.id] for s in services if s.disabled} - set(available))
    return services, {str(k): v for k, v in by_service.items()}, available, unavailable


@router.get("/v2.1/os-availability-zone")
async def list_zones(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-availability-zone:list", {})
    _, _, available, unavailable = await _zones(c)
    internal = c.svc.settings.internal_availability_zone
    info = [{"zoneName": z, "zoneState": {"available": True}, "hosts": None}
            for z in available if z != internal]
    info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None}
             for z in unavailable if z != internal]
    return json_response({"availabilityZoneInfo": info})


@router.get("/v2.1/os-availability-zone/detail")
async def list_zones_detail(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-availability-zone:detail", {})
    services, zone_of, available, unavailable = await _zones(c)
    info: list[dict[str, Any]] = []
    for z in available:
        zone_hosts: dict[str, dict[str, Any]] = {}
        for s in services:
            if s.disabled or zone_of[str(s.id)] != z:
                continue
            updated = s.last_seen_up or s.updated_at
            zone_hosts.setdefault(s.host, {})[s.binary] = {
                "available": hosts.is_up(s, c.svc.settings), "active": not s.disabled,
                "updated_at": (isotime(updated, micro=True) or "")[:-1] if updated else None}
        info.append({"zoneName": z, "zoneState": {"available": True}, "hosts": zone_hosts})
    info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None}
             for z in unavailable]
    return json_response({"availabilityZoneInfo": info})
