"""What compute asks placement (OpenStack's Placement API, over HTTP with the cloud's service
account): resource providers and their inventories and traits, allocation candidates, and
allocations (claims) per consumer."""

from __future__ import annotations

from typing import Any

from nimbus.clients.base import RemoteApiError, ServiceClient, json_of

MICROVERSION = "1.39"


class ClaimConflict(Exception):
    """Placement refused a claim (capacity gone or a concurrent change): try another host."""


class PlacementClient(ServiceClient):
    service = "placement"

    def _headers(self, version: str = MICROVERSION) -> dict[str, str]:
        return {"OpenStack-API-Version": f"placement {version}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self.request(method, path, headers=self._headers(), **kwargs)
        if resp.status_code == 204 or not resp.content:
            return None
        return json_of(resp)

    # -- providers -------------------------------------------------------------------------------
    async def provider(self, uuid: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self.call("GET", f"/resource_providers/{uuid}")
        except RemoteApiError as exc:
            if exc.status == 404:
                return None
            raise
        return body

    async def ensure_provider(self, uuid: str, name: str,
                              parent: str | None = None) -> tuple[dict[str, Any], bool]:
        """(the provider, whether it was created now)."""
        body: dict[str, Any] = {"uuid": uuid, "name": name}
        if parent:
            body["parent_provider_uuid"] = parent
        try:
            created: dict[str, Any] = await self.call("POST", "/resource_providers", json=body)
            return created, True
        except RemoteApiError as exc:
            if exc.status != 409:
                raise
        found = await self.provider(uuid)
        if found is not None:
            return found, False
        # Same name, another uuid: a stale provider of a host that came back with a new
        # node; it is replaced if it holds nothing.
        stale = await self.call("GET", "/resource_providers", params={"name": name})
        for rp in stale.get("resource_providers", []):
            if rp["uuid"] != uuid:
                try:
                    await self.call("DELETE", f"/resource_providers/{rp['uuid']}")
                except RemoteApiError:
                    pass
        created = await self.call("POST", "/resource_providers", json=body)
        return created, True

    async def delete_provider(self, uuid: str) -> None:
        try:
            await self.call("DELETE", f"/resource_providers/{uuid}")
        except RemoteApiError as exc:
            if exc.status != 404:
                raise

    async def set_inventory(self, uuid: str, inventories: dict[str, dict[str, Any]],
                            generation: int | None = None) -> int:
        """Replace the provider's inventories (retrying on generation conflicts); with the
        provider's generation known, without reading first. Returns the new generation."""
        for _ in range(5):
            if generation is None:
                current = await self.call("GET", f"/resource_providers/{uuid}/inventories")
                have = current["inventories"]
                generation = int(current["resource_provider_generation"])
                if set(have) == set(inventories) and all(
                        {**have[k], **v} == have[k] for k, v in inventories.items()):
                    return generation
            try:
                body = await self.call("PUT", f"/resource_providers/{uuid}/inventories", json={
                    "resource_provider_generation": generation, "inventories": inventories})
                return int(body["resource_provider_generation"])
            except RemoteApiError as exc:
                if exc.status != 409:
                    raise
                generation = None
        raise RemoteApiError("placement", 409, "inventory update kept conflicting", None)

    async def set_traits(self, uuid: str, traits: list[str],
                         generation: int | None = None) -> int:
        for trait in traits:
            if trait.startswith("CUSTOM_"):
                await self.call("PUT", f"/traits/{trait}")
        for _ in range(5):
            if generation is None:
                current = await self.call("GET", f"/resource_providers/{uuid}/traits")
                generation = int(current["resource_provider_generation"])
                if sorted(current["traits"]) == sorted(traits):
                    return generation
            try:
                body = await self.call("PUT", f"/resource_providers/{uuid}/traits", json={
                    "resource_provider_generation": generation, "traits": sorted(traits)})
                return int(body["resource_provider_generation"])
            except RemoteApiError as exc:
                if exc.status != 409:
                    raise
                generation = None
        raise RemoteApiError("placement", 409, "trait update kept conflicting", None)

    async def set_aggregates(self, uuid: str, aggregates: list[str]) -> None:
        for _ in range(5):
            current = await self.call("GET", f"/resource_providers/{uuid}/aggregates")
            if sorted(current["aggregates"]) == sorted(aggregates):
                return
            try:
                await self.call("PUT", f"/resource_providers/{uuid}/aggregates", json={
                    "resource_provider_generation": current["resource_provider_generation"],
                    "aggregates": sorted(aggregates)})
                return
            except RemoteApiError as exc:
                if exc.status != 409:
                    raise

    async def usages(self, uuid: str) -> dict[str, int]:
        body = await self.call("GET", f"/resource_providers/{uuid}/usages")
        usages: dict[str, int] = body["usages"]
        return usages

    # -- scheduling ------------------------------------------------------------------------------
    async def allocation_candidates(self, resources: dict[str, int], *,
                                    required: list[str] | None = None,
                                    member_of: list[str] | None = None,
                                    in_tree: str | None = None,
                                    limit: int | None = None) -> dict[str, Any]:
        params: list[tuple[str, str]] = [
            ("resources", ",".join(f"{k}:{v}" for k, v in sorted(resources.items()) if v))]
        if required:
            params.append(("required", ",".join(required)))
        for group in member_of or []:
            params.append(("member_of", group))
        if in_tree:
            params.append(("in_tree", in_tree))
        if limit:
            params.append(("limit", str(limit)))
        body: dict[str, Any] = await self.call("GET", "/allocation_candidates", params=params)
        return body

    # -- allocations -----------------------------------------------------------------------------
    async def allocations(self, consumer: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call("GET", f"/allocations/{consumer}")
        return body

    async def claim(self, consumer: str, allocations: dict[str, Any], *, project_id: str,
                    user_id: str, consumer_generation: int | None = None,
                    consumer_type: str = "INSTANCE") -> None:
        """Put the consumer's allocations; ClaimConflict if placement refuses (409)."""
        body = {"allocations": allocations, "project_id": project_id, "user_id": user_id,
                "consumer_generation": consumer_generation, "consumer_type": consumer_type}
        try:
            await self.call("PUT", f"/allocations/{consumer}", json=body)
        except RemoteApiError as exc:
            if exc.status == 409:
                raise ClaimConflict(exc.message) from None
            raise

    async def claim_many(self, claims: dict[str, dict[str, Any]]) -> None:
        """Several consumers at once (all or nothing): {consumer: {"allocations",
        "project_id", "user_id", "consumer_generation", "consumer_type"}}."""
        try:
            await self.call("POST", "/allocations", json=claims)
        except RemoteApiError as exc:
            if exc.status == 409:
                raise ClaimConflict(exc.message) from None
            raise

    async def delete_allocations(self, consumer: str) -> None:
        try:
            await self.call("DELETE", f"/allocations/{consumer}")
        except RemoteApiError as exc:
            if exc.status != 404:
                raise

    async def move_allocations(self, source: str, target: str, *, project_id: str,
                               user_id: str) -> bool:
        """Move all of source's allocations to target (which must hold none): how a move
        keeps the source host's usage on the migration record. False if source had none."""
        current = await self.allocations(source)
        allocs = current.get("allocations") or {}
        if not allocs:
            return False
        target_now = await self.allocations(target)
        body = {
            source: {"allocations": {}, "project_id": project_id, "user_id": user_id,
                     "consumer_generation": current.get("consumer_generation"),
                     "consumer_type": "INSTANCE"},
            target: {"allocations": {rp: {"resources": a["resources"]}
                                     for rp, a in allocs.items()},
                     "project_id": project_id, "user_id": user_id,
                     "consumer_generation": target_now.get("consumer_generation"),
                     "consumer_type": "MIGRATION"},
        }
        await self.claim_many(body)
        return True
