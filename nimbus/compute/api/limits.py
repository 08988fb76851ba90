"""/limits: the caller's project's absolute limits and what it uses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.compute import quotas
from nimbus.compute.api.common import Caller, caller
from nimbus.web.responses import json_response

router = APIRouter()

LIMIT_NAMES = {
    "ram": ["maxTotalRAMSize"], "instances": ["maxTotalInstances"],
    "cores": ["maxTotalCores"], "key_pairs": ["maxTotalKeypairs"],
    "floating_ips": ["maxTotalFloatingIps"],
    "metadata_items": ["maxServerMeta", "maxImageMeta"],
    "injected_files": ["maxPersonality"],
    "injected_file_content_bytes": ["maxPersonalitySize"],
    "security_groups": ["maxSecurityGroups"],
    "security_group_rules": ["maxSecurityGroupRules"],
    "server_groups": ["maxServerGroups"], "server_group_members": ["maxServerGroupMembers"],
}
USED_NAMES = {"totalRAMUsed": "ram", "totalCoresUsed": "cores",
              "totalInstancesUsed": "instances", "totalFloatingIpsUsed": "floating_ips",
              "totalSecurityGroupsUsed": "security_groups",
              "totalServerGroupsUsed": "server_groups"}
QUERY = {"type": "object", "properties": {"tenant_id": {"type": "string"}},
         "additionalProperties": True}


@router.get("/v2.1/limits")
async def show_limits(c: Caller = Depends(caller)) -> Response:
    params = c.query({**QUERY, "additionalProperties": not c.at(75)})
    c.enforce("os_compute_api:limits", {})
    project_id = c.ctx.project_id or ""
    if "tenant_id" in params:
        project_id = params["tenant_id"]
        c.enforce("os_compute_api:limits:other_project", {"project_id": project_id})
    hidden: tuple[str, ...] = ()
    if c.at(57):
        hidden = ("floating_ips", "security_groups", "security_group_rules",
                  "injected_files", "injected_file_content_bytes")
    elif c.at(36):
        hidden = ("floating_ips", "security_groups", "security_group_rules")
    async with c.svc.db.session() as session:
        limits = await quotas.limits(session, project_id)
        used = await quotas.usage(session, project_id)
    absolute: dict[str, Any] = {}
    for resource, names in LIMIT_NAMES.items():
        if resource in hidden:
            continue
        for name in names:
            if name == "maxImageMeta" and c.at(39):
                continue
            absolute[name] = limits[resource]
    for name, resource in USED_NAMES.items():
        if resource not in hidden:
            absolute[name] = used.get(resource, 0)
    return json_response({"limits": {"rate": [], "absolute": absolute}})
