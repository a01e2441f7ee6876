"""What the lead pool puts on a phone and takes from its queue: the `leads` collection (the leads the user holds,
with their protection dates and warnings), the `poi.claim` mutation (the same claim as the online route), and the
`leads` table of the WatermelonDB app, where a row the phone creates (its id: the merchant's) is a claim."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.leads import pool
from backend.leads.clock import CLOCK
from backend.offline.registry import EditKey, SyncRegistry, WatermelonTable
from backend.offline.watermelon import ms, watermelon_mutation
from mobile_contract.leads import ClaimArgs, Lead
from mobile_contract.sync import Mutation
from sync.registry import MutationMeta, MutationSpec, touching


async def _claim(session: AsyncSession, principal: Principal, args: ClaimArgs, meta: MutationMeta) -> Any:
    return await pool.claim(session, principal, args.poi_id, CLOCK.now())


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await pool.fetch_for_sync(session, principal, ids, CLOCK.now())


def _row(lead: Lead) -> dict[str, Any]:
    return {
        "id": str(lead.id),
        "poi_name": lead.poi_name,
        "state": lead.state.value,
        "how": lead.how.value if lead.how else None,
        "holder_id": str(lead.holder.user_id) if lead.holder else None,
        "since": ms(lead.since),
        "last_visit_at": ms(lead.last_visit_at),
        "extensions_used": lead.extensions_used,
        "extended_days": lead.extended_days,
        "release_at": ms(lead.release_at),
        "release_cause": lead.release_cause.value if lead.release_cause else None,
        "warn_from": ms(lead.warn_from),
        "warning": lead.warning,
    }


def _mutations(created: list[dict[str, Any]], updated: list[dict[str, Any]], edit: EditKey) -> list[Mutation]:
    """A lead row created on the phone is `poi.claim` of the merchant of that id; phones do not edit leads."""
    return [watermelon_mutation("poi.claim", {"poi_id": row.get("id")}, None, edit(row)) for row in created]


def register(registry: SyncRegistry) -> None:
    registry.collection_of(pool.LEADS, Lead, _fetch)
    # A refused claim bumps the merchant and the lead for the pusher: their next pull shows who holds it.
    registry.mutation(
        MutationSpec("poi.claim", ClaimArgs, _claim, touches=touching((pool.POIS, "poi_id"), (pool.LEADS, "poi_id")))
    )
    # Claims go after the merchants (registered first at the same order) and before the visits: a check-in pushed
    # with its claim then counts for the new holding.
    registry.table(WatermelonTable(pool.LEADS, _row, _mutations, push_order=0))
