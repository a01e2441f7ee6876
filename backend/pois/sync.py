"""What merchants put on a phone and take from its queue: the merchants the user holds as leads or is targeted
at, merchants added in the field offline, and the `pois` table of the WatermelonDB app."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.offline.registry import EditKey, SyncRegistry, WatermelonTable
from backend.offline.watermelon import watermelon_mutation
from backend.pois import service
from mobile_contract.pois import PoiCreate, PoiDetail
from mobile_contract.sync import Mutation
from sync.registry import MutationMeta, MutationSpec, ids_in

POIS = "pois"


async def _create(session: AsyncSession, principal: Principal, args: PoiCreate, meta: MutationMeta) -> Any:
    detail, _ = await service.create(session, principal, args)
    return detail


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await service.fetch_for_sync(session, principal, ids)


def _row(poi: PoiDetail) -> dict[str, Any]:
    return {
        "id": str(poi.id),
        "name": poi.name,
        "category": poi.category,
        "address": poi.address,
        "phone": poi.phone,
        "lat": poi.location.lat,
        "lon": poi.location.lon,
        "holder_id": str(poi.holder.user_id) if poi.holder else None,
        "holder_name": poi.holder.display_name if poi.holder else None,
    }


def _mutations(created: list[dict[str, Any]], updated: list[dict[str, Any]], edit: EditKey) -> list[Mutation]:
    """A merchant created on the phone is `poi.create`; phones do not edit merchants (updates are ignored)."""
    mutations = []
    for row in created:
        args = {
            "id": row.get("id"),
            "name": row.get("name"),
            "category": row.get("category"),
            "address": row.get("address") or "",
            "location": {"lat": row.get("lat"), "lon": row.get("lon")},
        }
        if row.get("phone"):
            args["phone"] = row["phone"]
        mutations.append(watermelon_mutation("poi.create", args, None, edit(row)))
    return mutations


def register(registry: SyncRegistry) -> None:
    registry.collection_of(POIS, PoiDetail, _fetch)
    registry.mutation(MutationSpec("poi.create", PoiCreate, _create, touches=lambda a: ids_in(a, POIS, "id")))
    registry.table(WatermelonTable(POIS, _row, _mutations, push_order=0))
