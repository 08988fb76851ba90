"""/v2.0/metering/metering-labels and /v2.0/metering/metering-label-rules (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import metering as logic
from nimbus.network import networks
from nimbus.network import validators as v
from nimbus.network.api.base import listed, notify, shown
from nimbus.network.api.common import Caller, caller, resource_body
from nimbus.web.responses import json_response, no_content

router = APIRouter()
LABELS = "/v2.0/metering/metering-labels"
RULES = "/v2.0/metering/metering-label-rules"


@router.post(LABELS, status_code=201)
async def create_label(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.LABEL_SPEC, resource_body(body, "metering_label"), "metering_label",
                   "create")
    project = networks.project_for(c.ctx, data)
    c.enforce("create_metering_label", {"project_id": project})
    async with c.svc.db.transaction() as session:
        out = logic.render_label(await logic.create_label(session, data, project))
    await notify(c, "metering_label.create.end", "metering_label", out)
    return json_response({"metering_label": out}, 201)


@router.get(LABELS)
async def list_labels(c: Caller = Depends(caller)) -> Response:
    c.enforce("get_metering_label")
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.list_labels(session, c.ctx, params)
    return listed(c, "metering_labels", rows, more, params,
                  [logic.render_label(r) for r in rows])


@router.get(LABELS + "/{label_id}")
async def show_label(label_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_metering_label")
    async with c.svc.db.session() as session:
        row = await logic.get_label(session, c.ctx, label_id)
    return shown(c, "metering_label", logic.render_label(row))


@router.delete(LABELS + "/{label_id}", status_code=204)
async def delete_label(label_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("delete_metering_label")
    async with c.svc.db.transaction() as session:
        await session.delete(await logic.get_label(session, c.ctx, label_id))
    return no_content()


@router.post(RULES, status_code=201)
async def create_rule(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.RULE_SPEC, resource_body(body, "metering_label_rule"),
                   "metering_label_rule", "create")
    c.enforce("create_metering_label_rule")
    async with c.svc.db.transaction() as session:
        out = logic.render_rule(await logic.create_rule(session, c.ctx, data))
    return json_response({"metering_label_rule": out}, 201)


@router.get(RULES)
async def list_rules(c: Caller = Depends(caller)) -> Response:
    c.enforce("get_metering_label_rule")
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.list_rules(session, c.ctx, params)
    return listed(c, "metering_label_rules", rows, more, params,
                  [logic.render_rule(r) for r in rows])


@router.get(RULES + "/{rule_id}")
async def show_rule(rule_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_metering_label_rule")
    async with c.svc.db.session() as session:
        rule = await logic.get_rule(session, c.ctx, rule_id)
    return shown(c, "metering_label_rule", logic.render_rule(rule))


@router.put(RULES + "/{rule_id}")
async def update_rule(rule_id: str, body: dict[str, Any] = Body(...),
                      c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.RULE_SPEC, resource_body(body, "metering_label_rule"),
                   "metering_label_rule", "update")
    c.enforce("update_metering_label_rule")
    async with c.svc.db.transaction() as session:
        rule = await logic.get_rule(session, c.ctx, rule_id)
        if "excluded" in data:
            rule.excluded = data["excluded"]
        out = logic.render_rule(rule)
    return shown(c, "metering_label_rule", out)


@router.delete(RULES + "/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("delete_metering_label_rule")
    async with c.svc.db.transaction() as session:
        await session.delete(await logic.get_rule(session, c.ctx, rule_id))
    return no_content()
