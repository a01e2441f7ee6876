"""What the lead pool puts on a phone and takes from its queue: the `leads` collection (the leads the user holds,
with their protection dates and warnings) and the `poi.claim` mutation, the same claim as the online route."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.leads import pool
from backend.leads.clock import CLOCK
from backend.offline.registry import SyncRegistry
from mobile_contract.leads import ClaimArgs, Lead
from sync.registry import MutationMeta, MutationSpec, touching


async def _claim(session: AsyncSession, principal: Principal, args: ClaimArgs, meta: MutationMeta) -> Any:
    return await pool.claim(session, principal, args.poi_id, CLOCK.now())


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await pool.fetch_for_sync(session, principal, ids, CLOCK.now())


def register(registry: SyncRegistry) -> None:
    registry.collection_of(pool.LEADS, Lead, _fetch)
    # A refused claim bumps the merchant and the lead for the pusher: their next pull shows who holds it.
    registry.mutation(
        MutationSpec("poi.claim", ClaimArgs, _claim, touches=touching((pool.POIS, "poi_id"), (pool.LEADS, "poi_id")))
    )
