"""What visits put on a phone and take from its queue: the user's own visits with their verdicts, check-ins and
check-outs queued offline, and the `visits` table of the WatermelonDB app."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.offline.registry import EditKey, SyncRegistry, WatermelonTable
from backend.offline.watermelon import as_datetime, as_iso, fix_args, ms, watermelon_mutation
from backend.visits import service
from mobile_contract.sync import Mutation
from mobile_contract.visits import CheckIn, CheckOut, CheckOutArgs, FixEvidence, Visit
from sync.registry import MutationMeta, MutationSpec, ids_in

VISITS = service.VISITS


async def _check_in(session: AsyncSession, principal: Principal, args: CheckIn, meta: MutationMeta) -> Any:
    # Queued offline: the action happened when the phone queued it, not when it finally reached us.
    visit, _ = await service.check_in(session, principal, args, received_at=meta.received_at, queued_at=meta.created_at)
    return visit


async def _check_out(session: AsyncSession, principal: Principal, args: CheckOutArgs, meta: MutationMeta) -> Any:
    data = CheckOut(fix=args.fix, checked_out_at=args.checked_out_at, note=args.note)
    return await service.check_out(
        session, principal, args.visit_id, data, received_at=meta.received_at, queued_at=meta.created_at
    )


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await service.fetch_for_sync(session, principal.tenant_id, principal.user_id, ids)


# -- WatermelonDB ------------------------------------------------------------------------------------------------


def _evidence_columns(prefix: str, evidence: FixEvidence | None) -> dict[str, Any]:
    if evidence is None:
        names = ("lat", "lon", "accuracy_m", "captured_at", "is_mock", "status", "confidence", "distance_m", "reasons")
        return {f"{prefix}_{name}": None for name in names}
    return {
        f"{prefix}_lat": evidence.location.lat,
        f"{prefix}_lon": evidence.location.lon,
        f"{prefix}_accuracy_m": evidence.accuracy_m,
        f"{prefix}_captured_at": ms(evidence.captured_at),
        f"{prefix}_is_mock": evidence.is_mock,
        f"{prefix}_status": evidence.verdict.status.value,
        f"{prefix}_confidence": evidence.verdict.confidence,
        f"{prefix}_distance_m": evidence.verdict.distance_m,
        f"{prefix}_reasons": json.dumps([r.value for r in evidence.verdict.reasons]),
    }


def _row(visit: Visit) -> dict[str, Any]:
    return {
        "id": str(visit.id),
        "poi_id": str(visit.poi_id),
        "user_id": str(visit.user_id),
        "status": visit.status.value,
        "note": visit.note,
        "checked_in_at": ms(visit.checked_in_at),
        "checked_out_at": ms(visit.checked_out_at),
        **_evidence_columns("in", visit.check_in),
        **_evidence_columns("out", visit.check_out),
    }


def _row_mutations(row: dict[str, Any], edit: bytes, *, created: bool) -> list[Mutation]:
    """A created row is a check-in (and a check-out when it already has one); an updated row with a check-out
    fix is a check-out. The verdict columns are the server's."""
    mutations = []
    if created:
        args = {"id": row.get("id"), "poi_id": row.get("poi_id"), "fix": fix_args(row, "in")}
        if row.get("checked_in_at") is not None:
            args["checked_in_at"] = as_iso(row["checked_in_at"])
        if row.get("note"):
            args["note"] = row["note"]
        mutations.append(watermelon_mutation("visit.check_in", args, as_datetime(row.get("checked_in_at")), edit))
    if row.get("out_lat") is not None:
        args = {"visit_id": row.get("id"), "fix": fix_args(row, "out")}
        if row.get("checked_out_at") is not None:
            args["checked_out_at"] = as_iso(row["checked_out_at"])
        mutations.append(watermelon_mutation("visit.check_out", args, as_datetime(row.get("checked_out_at")), edit))
    return mutations


def _mutations(created: list[dict[str, Any]], updated: list[dict[str, Any]], edit: EditKey) -> list[Mutation]:
    mutations: list[Mutation] = []
    for row in created:
        mutations += _row_mutations(row, edit(row), created=True)
    for row in updated:
        mutations += _row_mutations(row, edit(row), created=False)
    return mutations


def register(registry: SyncRegistry) -> None:
    registry.collection_of(VISITS, Visit, _fetch)
    registry.mutation(MutationSpec("visit.check_in", CheckIn, _check_in, touches=lambda a: ids_in(a, VISITS, "id")))
    registry.mutation(
        MutationSpec("visit.check_out", CheckOutArgs, _check_out, touches=lambda a: ids_in(a, VISITS, "visit_id"))
    )
    registry.table(WatermelonTable(VISITS, _row, _mutations, push_order=1))
