"""GET /allocation_candidates: the query string parsed into request groups, the answer rendered
for the requested microversion."""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import errors
from nimbus.placement.api.common import (
    Caller,
    caller,
    make_group,
    parse_in_tree,
    parse_member_of,
    parse_required,
    parse_resources,
)
from nimbus.placement.candidates import Found, Group, Request, find
from nimbus.placement.index import Index, Node
from nimbus.placement.schema import GROUP_SUFFIX
from nimbus.web.errors import BadRequest

router = APIRouter()
CHUNK = 256  # provider pieces per chunk of the answer

_KINDS = ("resources", "required", "member_of", "in_tree")
_NUMBERED = re.compile(r"^(resources|required|member_of|in_tree)([1-9][0-9]*)?$")
_NAMED = re.compile(rf"^(resources|required|member_of|in_tree)({GROUP_SUFFIX})?$")


def _allowed(c: Caller, key: str) -> bool:
    if key == "limit":
        return c.at_least(16)
    if key == "group_policy":
        return c.at_least(25)
    if key == "root_required":
        return c.at_least(35)
    if key == "same_subtree":
        return c.at_least(36)
    if not c.at_least(25):
        return key == "resources" or (key == "required" and c.at_least(17)) or \
            (key == "member_of" and c.at_least(21))
    m = (_NAMED if c.at_least(33) else _NUMBERED).match(key)
    if m is None:
        return False
    return m.group(1) != "in_tree" or c.at_least(31)


def _groups(c: Caller, q: dict[str, list[str]], index: Index) -> list[Group]:
    raw: dict[str, dict[str, list[str]]] = {}
    pattern = _NAMED if c.at_least(33) else _NUMBERED
    for key, values in q.items():
        m = pattern.match(key)
        if m:
            raw.setdefault(m.group(2) or "", {})[m.group(1)] = values
    same_subtree = {x.strip() for vals in q.get("same_subtree", []) for x in vals.split(",")}
    if c.at_least(36):
        resourceless = sorted(s for s, g in raw.items() if "resources" not in g)
        if len(resourceless) == len(raw):
            raise BadRequest("There must be at least one resources or resources[$S] "
                             "parameter.", code=errors.QUERYPARAM_MISSING_VALUE)
        bad = [s for s in resourceless if s not in same_subtree]
        if bad:
            raise BadRequest("Resourceless suffixed group request should be specified in "
                             f"`same_subtree` query param: bad group(s) - {bad}.",
                             code=errors.QUERYPARAM_BAD_VALUE)
        missing = [s for s in sorted(same_subtree) if s not in raw]
        if missing:
            raise BadRequest(f"Real suffixes should be specified in `same_subtree`: {missing} "
                             f"not found in {sorted(raw)}.", code=errors.QUERYPARAM_BAD_VALUE)
    else:
        for kind, label in (("required", "traits"), ("member_of", "member_of")):
            orphans = sorted(f"{kind}{s}" for s, g in raw.items()
                             if kind in g and "resources" not in g)
            if orphans:
                what = "traits parameters" if label == "traits" else "member_of parameters"
                keys = "traits keys" if label == "traits" else "member_of keys"
                raise BadRequest(f"All {what} must be associated with resources.  Found the "
                                 f"following orphaned {keys}: {', '.join(orphans)}")
        if not all("resources" in g for g in raw.values()):
            raise BadRequest("All request groups must specify resources.")
        if not raw:
            raise BadRequest("At least one request group (`resources` or `resources{$S}`) is "
                             "required.")
    groups = []
    conflicts = []
    for suffix in sorted(raw, key=lambda x: (x != "", x)):
        g = raw[suffix]
        resources = parse_resources(g["resources"][-1]) if "resources" in g else {}
        required, forbidden = parse_required(g["required"], c) if "required" in g \
            else ([], set())
        for any_of in required:
            if any_of <= forbidden:
                conflicts.append(f"required{suffix}: ({', '.join(sorted(any_of))})")
        member_of, bad_aggs = parse_member_of(g.get("member_of", []), c, suffix)
        in_tree = parse_in_tree(g["in_tree"][-1]) if "in_tree" in g else None
        groups.append(make_group(c, index, suffix, resources=resources, required=required,
                                 forbidden=forbidden, member_of=member_of,
                                 forbidden_aggs=bad_aggs, in_tree=in_tree))
    if conflicts and c.at_least(22):
        raise BadRequest("Conflicting required and forbidden traits found in the following "
                         f"traits keys: {', '.join(sorted(conflicts))}")
    return groups


def _request(c: Caller, q: dict[str, list[str]], index: Index) -> Request:
    groups = _groups(c, q, index)
    req = Request(groups, nested_aware=c.at_least(29))
    if "limit" in q:
        text = q["limit"][-1]
        if not re.match(r"^[1-9][0-9]*$", text):
            raise BadRequest(f"Invalid query string parameters: {text!r} does not match "
                             "'^[1-9][0-9]*$'")
        req.limit = int(text)
    if "group_policy" in q:
        policy = q["group_policy"][-1]
        if policy not in ("none", "isolate"):
            raise BadRequest(f"Invalid query string parameters: {policy!r} is not one of "
                             "['none', 'isolate']")
        req.group_policy = policy
    elif sum(1 for g in groups if g.same_provider) > 1:
        raise BadRequest('The "group_policy" parameter is required when specifying more '
                         'than one "resources{N}" parameter.')
    if "root_required" in q:
        if len(q["root_required"]) > 1:
            raise BadRequest("Query parameter 'root_required' may be specified only once.",
                             code=errors.ILLEGAL_DUPLICATE_QUERYPARAM)
        value = q["root_required"][0]
        if value.startswith("in:"):
            raise BadRequest("Invalid query string parameters: The format "
                             "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' is not supported in "
                             f"root_required. Got: {value}")
        required, forbidden = parse_required([value], c)
        wanted = {t for any_of in required for t in any_of}
        clash = sorted(wanted & forbidden)
        if clash:
            raise BadRequest("Conflicting required and forbidden traits found in "
                             f"root_required: {', '.join(clash)}",
                             code=errors.QUERYPARAM_BAD_VALUE)
        anchor = make_group(c, index, "", resources={}, required=required,
                            forbidden=forbidden, member_of=[], forbidden_aggs=set(),
                            in_tree=None)
        req.root_required = frozenset(t for any_of in anchor.required for t in any_of)
        req.root_forbidden = anchor.forbidden
    for value in q.get("same_subtree", []):
        suffixes = {x.strip() for x in value.split(",")}
        if "" in suffixes:
            raise BadRequest("Empty string (unsuffixed group) can not be specified in "
                             "`same_subtree` ", code=errors.QUERYPARAM_BAD_VALUE)
        req.same_subtrees.append(suffixes)
    return req


def _areq(c: Caller, index: Index, per_rp_ids: dict[int, dict[int, int]],
          mappings: dict[str, list[int]]) -> dict[str, Any]:
    nodes, names = index.nodes, index.rc_names
    per_rp = {nodes[rp_id].uuid: {names[rc]: amount for rc, amount in res.items()}
              for rp_id, res in per_rp_ids.items()}
    if not c.at_least(12):
        return {"allocations": [{"resource_provider": {"uuid": rp}, "resources": res}
                                for rp, res in per_rp.items()]}
    areq: dict[str, Any] = {"allocations": {
        rp: {"resources": res} for rp, res in per_rp.items()}}
    if c.at_least(34):
        areq["mappings"] = {suffix: [nodes[rp].uuid for rp in rps]
                            for suffix, rps in mappings.items()}
    return areq


def _render(c: Caller, index: Index, req: Request, found: Found,
            summarised: list[int]) -> list[bytes]:
    """The answer as JSON in chunks, joined from pieces rendered once per provider and kept
    across requests (answers at 10,000 providers are megabytes)."""
    nodes = index.nodes
    out: list[bytes] = []
    if found.flat is not None and found.group is not None:
        # Single-provider answers depend only on the provider and the request's shape: kept
        # across requests (a scheduler asks for the same few flavours again and again).
        group = found.group
        shape = (group.suffix, tuple(group.resources.items()), str(c.version))
        cache = index.areq_cache.get(shape)
        if cache is None:
            if len(index.areq_cache) > 64:
                index.areq_cache.clear()
            cache = index.areq_cache[shape] = {}

        def areq(rp_id: int) -> bytes:
            return orjson.dumps(_areq(c, index, {rp_id: group.resources},
                                      {group.suffix: [rp_id]}))

        out += _joined(b'{"allocation_requests":[', cache, areq, found.flat)
        lead = b'],"provider_summaries":{'
    else:
        out.append(b'{"allocation_requests":' + orjson.dumps(
            [_areq(c, index, cand.per_rp, cand.mappings) for cand in found.candidates]))
        lead = b',"provider_summaries":{'
    all_classes, traits, nested = c.at_least(27), c.at_least(17), c.at_least(29)
    asked = {rc for g in req.groups for rc in g.resources}
    # Kept only when every class is shown: otherwise a summary depends on the classes asked.
    known: dict[int, bytes] = index.summaries.setdefault(
        all_classes * 4 + traits * 2 + nested, {}) if all_classes else {}

    def summary(rp_id: int) -> bytes:
        node = nodes[rp_id]
        return orjson.dumps(node.uuid) + b":" + orjson.dumps(
            _summary(index, node, asked, all_classes, traits, nested))

    out += _joined(lead, known, summary, summarised)
    out[-1] += b"}}"
    return out


def _joined(lead: bytes, kept: dict[int, bytes], render: Callable[[int], bytes],
            ids: list[int]) -> list[bytes]:
    """lead, then the pieces of ids (kept, else rendered and kept) separated by commas, in
    chunks of CHUNK pieces: tens of kilobytes, as a buffer of megabytes costs more in page
    faults than in copying, on every request."""
    try:
        return _chunks(lead, kept.__getitem__, ids)
    except KeyError:
        for rp_id in ids:
            if rp_id not in kept:
                kept[rp_id] = render(rp_id)
        return _chunks(lead, kept.__getitem__, ids)


def _chunks(lead: bytes, piece: Callable[[int], bytes], ids: list[int]) -> list[bytes]:
    if not ids:
        return [lead]
    return [(lead if start == 0 else b",") + b",".join(map(piece, ids[start:start + CHUNK]))
            for start in range(0, len(ids), CHUNK)]


def _summary(index: Index, node: Node, asked: set[int], all_classes: bool, traits: bool,
             nested: bool) -> dict[str, Any]:
    names, used = index.rc_names, node.used
    entry: dict[str, Any] = {"resources": {
        names[rc]: {"capacity": inv.capacity, "used": used.get(rc, 0)}
        for rc, inv in node.inv.items() if all_classes or rc in asked}}
    if traits:
        listed = index.trait_lists.get(node.traits)
        if listed is None:
            listed = index.trait_lists[node.traits] = sorted(
                index.trait_names[t] for t in node.traits if t in index.trait_names)
        entry["traits"] = listed
    if nested:
        parent = index.nodes.get(node.parent) if node.parent is not None else None
        entry["parent_provider_uuid"] = parent.uuid if parent else None
        root = index.nodes.get(node.root)
        entry["root_provider_uuid"] = root.uuid if root else node.uuid
    return entry


@router.get("/allocation_candidates")
async def allocation_candidates(c: Caller = Depends(caller)) -> Response:
    c.require(10)
    c.enforce("allocation_candidates:list")
    q: dict[str, list[str]] = {}
    for key, value in c.request.query_params.multi_items():
        q.setdefault(key, []).append(value)
    unknown = sorted(k for k in q if not _allowed(c, k))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        verb = "were" if len(unknown) > 1 else "was"
        raise BadRequest(f"Invalid query string parameters: Additional properties are not "
                         f"allowed ({names} {verb} unexpected)")
    if not c.at_least(25) and "resources" not in q:
        raise BadRequest("Invalid query string parameters: 'resources' is a required property")
    index = await c.svc.fresh_index()
    req = _request(c, q, index)
    # A burst of short-lived dicts with no await in between: the cyclic collector would only
    # walk the whole heap meanwhile (tens of ms at 10,000 providers).
    collecting = gc.isenabled()
    gc.disable()
    try:
        found, summarised = find(index, req)
        chunks = _render(c, index, req, found, summarised)
    finally:
        if collecting:
            gc.enable()
    return c.respond_json(chunks)
