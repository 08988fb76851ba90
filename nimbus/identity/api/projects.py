"""/v3/projects and /v3/domains routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from starlette.responses import Response

from nimbus.identity import projects as logic
from nimbus.identity.api.common import Caller, caller, truthy
from nimbus.web.responses import json_response, no_content

router = APIRouter()


class ProjectFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = Field(None, min_length=1, max_length=64)
    description: StrictStr | None = None
    enabled: StrictBool | None = None
    domain_id: StrictStr | None = Field(None, max_length=64)
    parent_id: StrictStr | None = Field(None, max_length=64)
    is_domain: StrictBool | None = None
    tags: list[StrictStr] | None = None
    options: dict[str, Any] | None = None


class ProjectCreateFields(ProjectFields):
    name: StrictStr = Field(..., min_length=1, max_length=64)


class ProjectCreate(BaseModel):
    project: ProjectCreateFields


class ProjectUpdate(BaseModel):
    project: ProjectFields


class DomainFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = Field(None, min_length=1, max_length=64)
    description: StrictStr | None = None
    enabled: StrictBool | None = None
    tags: list[StrictStr] | None = None
    options: dict[str, Any] | None = None
    explicit_domain_id: StrictStr | None = Field(None, max_length=64)


class DomainCreateFields(DomainFields):
    name: StrictStr = Field(..., min_length=1, max_length=64)


class DomainCreate(BaseModel):
    domain: DomainCreateFields


class DomainUpdate(BaseModel):
    domain: DomainFields


def _target(project: Any) -> dict[str, Any]:
    return {"target": {"project": {"id": project.id, "domain_id": project.domain_id},
                       "domain_id": project.domain_id}}


# -- projects ----------------------------------------------------------------------------------
@router.post("/v3/projects", status_code=201)
async def create_project(body: ProjectCreate, c: Caller = Depends(caller)) -> Response:
    data = body.project.model_dump(exclude_unset=True)
    domain_id = data.get("domain_id") or c.ctx.domain_id or c.ctx.project_domain_id
    c.enforce("identity:create_project", {"target": {"domain_id": domain_id,
                                                     "project": {"domain_id": domain_id}}})
    async with c.svc.db.transaction() as session:
        project = await logic.create(session, c.svc, data, domain_id)
        tags = (await logic.tags_of(session, [project.id]))[project.id]
        body_out = logic.render(project, tags, c.url(""), as_project=True)
    return json_response({"project": body_out}, 201)


@router.get("/v3/projects")
async def list_projects(
    c: Caller = Depends(caller),
    name: str | None = None,
    domain_id: str | None = None,
    parent_id: str | None = None,
    enabled: str | None = None,
    is_domain: str | None = None,
    tags: str | None = None,
    tags_any: str | None = Query(None, alias="tags-any"),
    not_tags: str | None = Query(None, alias="not-tags"),
    not_tags_any: str | None = Query(None, alias="not-tags-any"),
) -> Response:
    filters = {"name": name, "domain_id": domain_id, "parent_id": parent_id,
               "enabled": truthy(enabled), "is_domain": truthy(is_domain), "tags": tags,
               "tags-any": tags_any, "not-tags": not_tags, "not-tags-any": not_tags_any}
    target_domain = domain_id or c.ctx.domain_id
    if not c.allowed("identity:list_projects", {"target": {"domain_id": target_domain}}):
        c.enforce("identity:list_projects", {"target": {"domain_id": domain_id}})
    if not c.ctx.is_admin and not domain_id and c.ctx.domain_id:
        filters["domain_id"] = c.ctx.domain_id
    base = c.url("")

    async def load() -> list[dict[str, Any]]:
        async with c.svc.db.session() as session:
            rows = await logic.list_projects_tagged(session, filters)
        return [logic.render(p, tags, base, as_project=True) for p, tags in rows]

    found = await c.svc.read_cache.get(("projects", base, *sorted(filters.items())), load)
    return json_response({"projects": found,
                          "links": c.collection_links()})


@router.get("/v3/projects/{project_id}")
async def show_project(project_id: str, c: Caller = Depends(caller),
                       parents_as_list: str | None = None, subtree_as_list: str | None = None,
                       parents_as_ids: str | None = None,
                       subtree_as_ids: str | None = None) -> Response:
    async with c.svc.db.session() as session:
        project = await logic.get(session, project_id, domains_too=True)
        c.enforce("identity:get_project", _target(project))
        tags = (await logic.tags_of(session, [project.id]))[project.id]
        base = c.url("")
        body = logic.render(project, tags, base, as_project=True)
        if parents_as_list is not None or parents_as_ids is not None:
            chain = await logic.ancestors(session, project)
            if parents_as_list is not None:
                body["parents"] = [{"project": logic.render(p, [], base)} for p in chain]
            else:
                body["parents"] = _nest_ids([p.id for p in chain])
        if subtree_as_list is not None or subtree_as_ids is not None:
            tree = await logic.subtree(session, project.id)
            if subtree_as_list is not None:
                body["subtree"] = [{"project": logic.render(p, [], base)} for p in tree]
            else:
                body["subtree"] = _subtree_ids(project.id, tree)
    return json_response({"project": body})


def _nest_ids(chain: list[str]) -> dict[str, Any] | None:
    """parents_as_ids: {"parent": {"grandparent": null}}, nearest parent outermost."""
    nested: dict[str, Any] | None = None
    for pid in reversed(chain):
        nested = {pid: nested}
    return nested


def _subtree_ids(root: str, tree: list[Any]) -> dict[str, Any] | None:
    kids: dict[str, list[str]] = {}
    for p in tree:
        kids.setdefault(p.parent_id, []).append(p.id)

    def build(pid: str) -> dict[str, Any] | None:
        below = kids.get(pid)
        return {k: build(k) for k in below} if below else None

    return build(root)


@router.patch("/v3/projects/{project_id}")
async def update_project(project_id: str, body: ProjectUpdate,
                         c: Caller = Depends(caller)) -> Response:
    data = body.project.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        project = await logic.get(session, project_id, domains_too=True)
        c.enforce("identity:update_project", _target(project))
        await logic.update(session, c.svc, project, data)
        tags = (await logic.tags_of(session, [project.id]))[project.id]
        out = logic.render(project, tags, c.url(""), as_project=True)
    return json_response({"project": out})


@router.delete("/v3/projects/{project_id}", status_code=204)
async def delete_project(project_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        project = await logic.get(session, project_id, domains_too=True)
        c.enforce("identity:delete_project", _target(project))
        if project.is_domain:
            await logic.delete_domain(session, c.svc, project)
        else:
            await logic.delete_project(session, c.svc, project)
    return no_content()


# -- project tags ------------------------------------------------------------------------------
class TagsBody(BaseModel):
    tags: list[StrictStr]


@router.get("/v3/projects/{project_id}/tags")
async def list_tags(project_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        project = await logic.get(session, project_id)
        c.enforce("identity:list_project_tags", _target(project))
        tags = (await logic.tags_of(session, [project.id]))[project.id]
    return json_response({"tags": tags})


@router.put("/v3/projects/{project_id}/tags")
async def replace_tags(project_id: str, body: TagsBody, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        project = await logic.get(session, project_id)
        c.enforce("identity:update_project_tags", _target(project))
        tags = await logic.set_tags(session, project.id, body.tags)
    return json_response({"tags": tags})


@router.delete("/v3/projects/{project_id}/tags", status_code=204)
async def clear_tags(project_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        project = await logic.get(session, project_id)
        c.enforce("identity:delete_project_tags", _target(project))
        await logic.set_tags(session, project.id, [])
    return no_content()


@router.api_route("/v3/projects/{project_id}/tags/{tag}", methods=["GET", "HEAD"],
                  status_code=204)
async def check_tag(project_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        project = await logic.get(session, project_id)
        c.enforce("identity:get_project_tag", _target(project))
        tags = (await logic.tags_of(session, [project.id]))[project.id]
    if tag not in tags:
        from nimbus.identity.errors import not_found

        raise not_found("tag", tag)
    return no_content()


@router.put("/v3/projects/{project_id}/tags/{tag}", status_code=201)
async def add_tag(project_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        project = await logic.get(session, project_id)
        c.enforce("identity:create_project_tag", _target(project))
        tags = (await logic.tags_of(session, [project.id]))[project.id]
        if tag not in tags:
            await logic.set_tags(session, project.id, [*tags, tag])
    return Response(status_code=201, headers={"Location": c.url(
        f"/v3/projects/{project_id}/tags/{tag}")})


@router.delete("/v3/projects/{project_id}/tags/{tag}", status_code=204)
async def remove_tag(project_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    from nimbus.identity.errors import not_found

    async with c.svc.db.transaction() as session:
        project = await logic.get(session, project_id)
        c.enforce("identity:delete_project_tag", _target(project))
        tags = (await logic.tags_of(session, [project.id]))[project.id]
        if tag not in tags:
            raise not_found("tag", tag)
        await logic.set_tags(session, project.id, [t for t in tags if t != tag])
    return no_content()


# -- domains -----------------------------------------------------------------------------------
def _domain_target(domain: Any) -> dict[str, Any]:
    return {"target": {"domain": {"id": domain.id}, "domain_id": domain.id}}


@router.post("/v3/domains", status_code=201)
async def create_domain(body: DomainCreate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_domain")
    data = body.domain.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        domain = await logic.create_domain(session, c.svc, data)
        tags = (await logic.tags_of(session, [domain.id]))[domain.id]
        out = logic.render(domain, tags, c.url(""))
    return json_response({"domain": out}, 201)


@router.get("/v3/domains")
async def list_domains(c: Caller = Depends(caller), name: str | None = None,
                       enabled: str | None = None) -> Response:
    c.enforce("identity:list_domains")
    base = c.url("")
    filters = {"name": name, "enabled": truthy(enabled)}

    async def load() -> list[dict[str, Any]]:
        async with c.svc.db.session() as session:
            rows = await logic.list_domains_tagged(session, filters)
        return [logic.render(d, tags, base) for d, tags in rows]

    found = await c.svc.read_cache.get(("domains", base, *sorted(filters.items())), load)
    return json_response({"domains": found,
                          "links": c.collection_links()})


@router.get("/v3/domains/{domain_id}")
async def show_domain(domain_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        domain = await logic.get_domain(session, domain_id)
        c.enforce("identity:get_domain", _domain_target(domain))
        tags = (await logic.tags_of(session, [domain.id]))[domain.id]
    return json_response({"domain": logic.render(domain, tags, c.url(""))})


@router.patch("/v3/domains/{domain_id}")
async def update_domain(domain_id: str, body: DomainUpdate,
                        c: Caller = Depends(caller)) -> Response:
    data = body.domain.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        domain = await logic.get_domain(session, domain_id)
        c.enforce("identity:update_domain", _domain_target(domain))
        await logic.update(session, c.svc, domain, data)
        tags = (await logic.tags_of(session, [domain.id]))[domain.id]
        out = logic.render(domain, tags, c.url(""))
    return json_response({"domain": out})


@router.delete("/v3/domains/{domain_id}", status_code=204)
async def delete_domain(domain_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        domain = await logic.get_domain(session, domain_id)
        c.enforce("identity:delete_domain", _domain_target(domain))
        await logic.delete_domain(session, c.svc, domain)
    return no_content()
