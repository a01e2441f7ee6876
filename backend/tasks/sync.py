"""What work items put on a phone and take from its queue: the user's own work items, their edits made offline
(`task.update`, judged by mobile_contract/conflicts.py), and the `work_items` table of the WatermelonDB app."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.offline.registry import EditKey, SyncRegistry, WatermelonTable
from backend.offline.watermelon import json_column, ms, watermelon_mutation
from backend.tasks import service
from mobile_contract.sync import Mutation
from mobile_contract.tasks import TaskUpdateArgs, WorkItem, WorkItemUpdate
from sync.registry import MutationMeta, MutationSpec, ids_in

WORK_ITEMS = service.WORK_ITEMS
EDITABLE_COLUMNS = ("notes", "answers", "status", "outcome")  # the rest of a row is the server's


async def _update(session: AsyncSession, principal: Principal, args: TaskUpdateArgs, meta: MutationMeta) -> Any:
    fields = {f: getattr(args, f) for f in args.__struct_fields__ if f != "id"}
    patch = msgspec.convert(
        {k: msgspec.to_builtins(v) for k, v in fields.items() if v is not msgspec.UNSET},
        WorkItemUpdate,
    )
    return await service.update_work_item(session, principal, args.id, patch, base_xid=meta.base_xid)


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await service.fetch_for_sync(session, principal.tenant_id, principal.user_id, ids)


async def _fetch_gone(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await service.load_wire(session, principal.tenant_id, ids)


def _row(item: WorkItem) -> dict[str, Any]:
    campaign = item.campaign
    return {
        "id": str(item.id),
        "campaign_id": str(campaign.id),
        "poi_id": str(item.poi_id),
        "assignee_id": str(item.assignee_id),
        "status": item.status.value,
        "notes": item.notes,
        "answers": json.dumps(item.answers),
        "outcome": msgspec.json.encode(item.outcome).decode(),
        "campaign_title": campaign.title,
        "campaign_type": campaign.type.value,
        "campaign_instructions": campaign.instructions,
        "campaign_goal": msgspec.json.encode(campaign.goal).decode(),
        "campaign_form": msgspec.json.encode(campaign.form).decode(),
        "campaign_offer": msgspec.json.encode(campaign.offer).decode() if campaign.offer else None,
        "starts_at": ms(campaign.starts_at),
        "ends_at": ms(campaign.ends_at),
        "time_zone": campaign.time_zone,
        "updated_at": ms(item.updated_at),
        "removed_at": None,  # set (ms) on a row sent marked gone: it left this phone's scope
    }


def _mutations(created: list[dict[str, Any]], updated: list[dict[str, Any]], edit: EditKey) -> list[Mutation]:
    """An edited row is `task.update` of the columns WatermelonDB lists in `_changed` (all editable columns when
    it lists none); columns the server owns (campaign, assignee...) are not the phone's to change."""
    mutations = []
    for row in [*created, *updated]:
        changed = [c for c in str(row.get("_changed") or "").split(",") if c] or list(EDITABLE_COLUMNS)
        args: dict[str, Any] = {"id": row.get("id")}
        for column in changed:
            if column not in EDITABLE_COLUMNS or column not in row:
                continue
            value = row[column]
            args[column] = json_column(value) if column in ("answers", "outcome") else value
        if len(args) > 1:
            mutations.append(watermelon_mutation("task.update", args, None, edit(row)))
    return mutations


def register(registry: SyncRegistry) -> None:
    registry.collection_of(WORK_ITEMS, WorkItem, _fetch)
    registry.mutation(
        MutationSpec("task.update", TaskUpdateArgs, _update, touches=lambda a: ids_in(a, WORK_ITEMS, "id"))
    )
    registry.table(WatermelonTable(WORK_ITEMS, _row, _mutations, push_order=2, fetch_gone=_fetch_gone))
