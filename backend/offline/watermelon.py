"""The WatermelonDB adapter: the same change feed and the same business commands, in WatermelonDB's shapes.

A React Native app calls `synchronize()` against these two endpoints with `sendCreatedAsUpdated: true`.
- Pull: every live row goes in `updated` (WatermelonDB upserts them), removals in `deleted`; `timestamp` is the
  sync cursor's snapshot xid as a number. WatermelonDB cannot page, so the server reads every page under the
  first page's snapshot and answers once.
- Push: rows become the same mutations as /v1/sync/push (`visit.check_in`, `visit.check_out`, `task.update`,
  `poi.create`), applied exactly once. WatermelonDB sends no id per edit, so a row's mutation id is derived from
  the device, the push's `last_pulled_at` and the row: the same push sent again is a replay, while the same
  value sent in a later sync (an answer set back to an earlier one) is a new edit. A push retried after a new
  pull carries a new id; the work item's rules then recognise the value as one this phone already sent
  (mobile_contract/conflicts.py, `replay`), and check-ins and new merchants are idempotent on their own ids. The
  answer is always 200 when the body is well formed: a refused row is a stored `rejected` result and its record
  is bumped, so the next pull puts the server's truth on the phone (WatermelonDB would otherwise retry a refused
  push forever).
- Removal: WatermelonDB applies remote deletions before it pushes, destroying an edit still waiting on the
  phone. A work item that leaves the phone's scope is therefore first sent as a row marked gone (`removed_at`,
  ms), and deleted only on a later pull, once the phone has synced after receiving the mark
  (`WatermelonRemoval`); an edit it pushes meanwhile is a late edit, kept by the server.

Columns are the app's schema (tests/watermelon/driver.mjs): times in milliseconds since the epoch, JSON values
as strings.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.errors import DomainError
from backend.offline.models import WatermelonPull, WatermelonRemoval
from backend.offline.registry import REGISTRY
from backend.tasks import service as tasks_service
from mobile_contract.base import Request, Response
from mobile_contract.errors import ErrorCode
from mobile_contract.pois import PoiDetail
from mobile_contract.sync import Mutation
from mobile_contract.tasks import WorkItem
from mobile_contract.visits import FixEvidence, Visit
from sync import engine
from sync.cursor import CursorCodec, SyncCursor

PAGE = 5_000
TABLES = ("pois", "work_items", "visits")
EDITABLE_WORK_ITEM_COLUMNS = ("notes", "answers", "status", "outcome")


class TableChanges(Response):
    created: list[dict[str, Any]]
    updated: list[dict[str, Any]]
    deleted: list[str]


class PullAnswer(Response):
    changes: dict[str, TableChanges]
    timestamp: int


class TableChangesIn(msgspec.Struct, kw_only=True):
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    deleted: list[str] = []


class PushBody(Request):
    changes: dict[str, TableChangesIn]


def parse_last_pulled_at(value: str) -> int | None:
    if value in ("null", "undefined", "", "0"):
        return None
    if not value.isdigit():
        raise DomainError(
            ErrorCode.INVALID_CURSOR, 400, "last_pulled_at must be a timestamp we sent, or null: sync from scratch."
        )
    return int(value)


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _iso(ms: Any) -> Any:
    """Milliseconds to RFC 3339; anything else is passed on for the mutation's validation to refuse."""
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
    return ms


# -- pull ------------------------------------------------------------------------------------------------------


async def pull(database: Database, codec: CursorCodec, principal: Principal, last_pulled_at: int | None) -> PullAnswer:
    cursor = (
        codec.encode(SyncCursor(principal.user_id, last_pulled_at, last_pulled_at, None)) if last_pulled_at else None
    )
    latest: dict[str, dict[UUID, Any]] = {table: {} for table in TABLES}  # id -> row, or None when removed
    while True:
        page = await engine.pull(
            hot=database.hot,
            sessions=database.sessions,
            registry=REGISTRY,
            codec=codec,
            actor=principal,
            user_id=principal.user_id,
            cursor=cursor,
            limit=PAGE,
        )
        for table in TABLES:
            for record in page.changes[table].upserted:
                latest[table][record.id] = _ROW[table](record)
            for record_id in page.changes[table].removed:
                latest[table][record_id] = None
        cursor = page.cursor
        if not page.has_more:
            break
    await _mark_removals(database, principal, latest["work_items"], last_pulled_at, page.snapshot)
    changes = {
        table: TableChanges(
            created=[],
            updated=[row for row in rows.values() if row is not None],
            deleted=[str(record_id) for record_id, row in rows.items() if row is None],
        )
        for table, rows in latest.items()
    }
    await _remember_pull(database, principal, last_pulled_at or 0, page.snapshot)
    return PullAnswer(changes=changes, timestamp=page.snapshot)


async def _remember_pull(database: Database, principal: Principal, pulled_from: int, timestamp: int) -> None:
    async with database.sessions() as session:
        statement = insert(WatermelonPull).values(
            user_id=principal.user_id, device_id=principal.device_id, timestamp=timestamp, base=pulled_from
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "device_id", "timestamp"],
                set_={"base": func.least(WatermelonPull.base, pulled_from)},
            )
        )
        await session.execute(
            delete(WatermelonPull).where(WatermelonPull.created_at < func.now() - text("interval '30 days'"))
        )
        await session.commit()


async def _mark_removals(
    database: Database, principal: Principal, rows: dict[UUID, Any], last_pulled_at: int | None, timestamp: int
) -> None:
    """Work items that left the phone's scope go out marked gone first, and as deletions only once the phone has
    synced after receiving the mark (see WatermelonRemoval). Rewrites `rows` (id -> row, None for a deletion)."""
    removed = {record_id for record_id, row in rows.items() if row is None}
    back = {record_id for record_id, row in rows.items() if row is not None}
    mine = (
        WatermelonRemoval.user_id == principal.user_id,
        WatermelonRemoval.device_id == principal.device_id,
        WatermelonRemoval.collection == "work_items",
    )
    async with database.sessions() as session:
        if last_pulled_at is None:
            # A first sync: the phone holds nothing yet, and marks of an earlier install are void.
            await session.execute(delete(WatermelonRemoval).where(*mine))
            await session.commit()
            return
        marks = dict(
            (await session.execute(select(WatermelonRemoval.record_id, WatermelonRemoval.marked_at).where(*mine))).all()
        )
        if not marks and not removed:
            return
        due = {record_id for record_id, marked_at in marks.items() if last_pulled_at >= marked_at} - back
        for record_id in due:
            rows[record_id] = None  # the phone has synced since it got the mark: delete it now
        fresh = removed - set(marks) - back
        gone = list((set(marks) | fresh) - due - back)
        if fresh:
            await session.execute(
                insert(WatermelonRemoval)
                .values(
                    [
                        {
                            "user_id": principal.user_id,
                            "device_id": principal.device_id,
                            "collection": "work_items",
                            "record_id": record_id,
                            "marked_at": timestamp,
                        }
                        for record_id in fresh
                    ]
                )
                .on_conflict_do_nothing()
            )
        settled = due | (back & set(marks))
        if settled:
            await session.execute(delete(WatermelonRemoval).where(*mine, WatermelonRemoval.record_id.in_(settled)))
        if gone:
            loaded = await tasks_service.load_wire(session, principal.tenant_id, gone)
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            for record_id in gone:
                item = loaded.get(record_id)
                rows[record_id] = None if item is None else {**_work_item_row(item), "removed_at": now_ms}
        await session.commit()


async def _base_of(database: Database, principal: Principal, last_pulled_at: int | None) -> int:
    """What the phone had seen when it made the edits it is pushing (see WatermelonPull)."""
    if last_pulled_at is None:
        return 0
    async with database.sessions() as session:
        base = await session.scalar(
            select(WatermelonPull.base).where(
                WatermelonPull.user_id == principal.user_id,
                WatermelonPull.device_id == principal.device_id,
                WatermelonPull.timestamp == last_pulled_at,
            )
        )
    return base if base is not None else last_pulled_at  # older than we remember: judge against it as is


def _poi_row(poi: PoiDetail) -> dict[str, Any]:
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


def _work_item_row(item: WorkItem) -> dict[str, Any]:
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
        "starts_at": _ms(campaign.starts_at),
        "ends_at": _ms(campaign.ends_at),
        "time_zone": campaign.time_zone,
        "updated_at": _ms(item.updated_at),
        "removed_at": None,  # set (ms) on a row sent marked gone: it left this phone's scope
    }


def _evidence_columns(prefix: str, evidence: FixEvidence | None) -> dict[str, Any]:
    if evidence is None:
        names = ("lat", "lon", "accuracy_m", "captured_at", "is_mock", "status", "confidence", "distance_m", "reasons")
        return {f"{prefix}_{name}": None for name in names}
    return {
        f"{prefix}_lat": evidence.location.lat,
        f"{prefix}_lon": evidence.location.lon,
        f"{prefix}_accuracy_m": evidence.accuracy_m,
        f"{prefix}_captured_at": _ms(evidence.captured_at),
        f"{prefix}_is_mock": evidence.is_mock,
        f"{prefix}_status": evidence.verdict.status.value,
        f"{prefix}_confidence": evidence.verdict.confidence,
        f"{prefix}_distance_m": evidence.verdict.distance_m,
        f"{prefix}_reasons": json.dumps([r.value for r in evidence.verdict.reasons]),
    }


def _visit_row(visit: Visit) -> dict[str, Any]:
    return {
        "id": str(visit.id),
        "poi_id": str(visit.poi_id),
        "user_id": str(visit.user_id),
        "status": visit.status.value,
        "note": visit.note,
        "checked_in_at": _ms(visit.checked_in_at),
        "checked_out_at": _ms(visit.checked_out_at),
        **_evidence_columns("in", visit.check_in),
        **_evidence_columns("out", visit.check_out),
    }


_ROW: dict[str, Any] = {"pois": _poi_row, "work_items": _work_item_row, "visits": _visit_row}


# -- push ------------------------------------------------------------------------------------------------------


def _mutation(name: str, args: dict[str, Any], created_at: Any, edit: bytes) -> Mutation:
    """A mutation for one queued edit: `edit` names it (the device, the push's last_pulled_at, the row), so the
    same push sent twice is a replay and the same value sent in a later sync is a new edit."""
    digest = hashlib.sha256(edit + b"\0" + msgspec.json.encode([name, args])).digest()
    mutation_id = int.from_bytes(digest[:8], "big") >> 1 or 1  # positive, fits a bigint
    when = created_at if isinstance(created_at, datetime) else datetime.now(UTC)
    return Mutation(id=mutation_id, name=name, args=args, created_at=when)


def _fix(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {
        "lat": row.get(f"{prefix}_lat"),
        "lon": row.get(f"{prefix}_lon"),
        "accuracy_m": row.get(f"{prefix}_accuracy_m"),
        "captured_at": _iso(row.get(f"{prefix}_captured_at")),
        "is_mock": bool(row.get(f"{prefix}_is_mock")),
    }


def _when(ms: Any) -> datetime | None:
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return datetime.fromtimestamp(ms / 1000, UTC)
    return None


def _visit_mutations(row: dict[str, Any], edit: bytes, *, created: bool) -> list[Mutation]:
    mutations = []
    if created:
        args = {"id": row.get("id"), "poi_id": row.get("poi_id"), "fix": _fix(row, "in")}
        if row.get("checked_in_at") is not None:
            args["checked_in_at"] = _iso(row["checked_in_at"])
        if row.get("note"):
            args["note"] = row["note"]
        mutations.append(_mutation("visit.check_in", args, _when(row.get("checked_in_at")), edit))
    if row.get("out_lat") is not None:
        args = {"visit_id": row.get("id"), "fix": _fix(row, "out")}
        if row.get("checked_out_at") is not None:
            args["checked_out_at"] = _iso(row["checked_out_at"])
        mutations.append(_mutation("visit.check_out", args, _when(row.get("checked_out_at")), edit))
    return mutations


def _json_column(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # refused by the mutation's validation, and kept as sent
    return value


def _work_item_mutation(row: dict[str, Any], edit: bytes) -> Mutation | None:
    changed = [c for c in str(row.get("_changed") or "").split(",") if c] or list(EDITABLE_WORK_ITEM_COLUMNS)
    args: dict[str, Any] = {"id": row.get("id")}
    for column in changed:
        if column not in EDITABLE_WORK_ITEM_COLUMNS or column not in row:
            continue  # columns the server owns (campaign, assignee...) are not the phone's to change
        value = row[column]
        args[column] = _json_column(value) if column in ("answers", "outcome") else value
    if len(args) == 1:
        return None
    return _mutation("task.update", args, None, edit)


def _poi_mutation(row: dict[str, Any], edit: bytes) -> Mutation:
    args = {
        "id": row.get("id"),
        "name": row.get("name"),
        "category": row.get("category"),
        "address": row.get("address") or "",
        "location": {"lat": row.get("lat"), "lon": row.get("lon")},
    }
    if row.get("phone"):
        args["phone"] = row["phone"]
    return _mutation("poi.create", args, None, edit)


def mutations_of(body: PushBody, *, device_id: str = "", last_pulled_at: int | None = None) -> list[Mutation]:
    """The business commands a WatermelonDB change set stands for, in an order that respects dependencies:
    merchants before the visits at them, check-ins before check-outs, visits before work-item edits."""
    tables = body.changes
    push = f"{device_id}|{last_pulled_at}"

    def edit(table: str, row: dict[str, Any]) -> bytes:
        return f"{push}|{table}|{row.get('id')}".encode()

    mutations: list[Mutation] = []
    pois = tables.get("pois")
    if pois is not None:
        mutations += [_poi_mutation(row, edit("pois", row)) for row in pois.created]
    visits = tables.get("visits")
    if visits is not None:
        for row in visits.created:
            mutations += _visit_mutations(row, edit("visits", row), created=True)
        for row in visits.updated:
            mutations += _visit_mutations(row, edit("visits", row), created=False)
    work_items = tables.get("work_items")
    if work_items is not None:
        for row in [*work_items.created, *work_items.updated]:
            mutation = _work_item_mutation(row, edit("work_items", row))
            if mutation is not None:
                mutations.append(mutation)
    # Deletions are ignored: phones do not delete merchants, visits or work items (evidence is kept).
    return mutations


async def push(database: Database, principal: Principal, body: PushBody, last_pulled_at: int | None) -> None:
    await engine.push(
        sessions=database.sessions,
        registry=REGISTRY,
        actor=principal,
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        client_id=f"watermelon:{principal.device_id}",
        base_xid=await _base_of(database, principal, last_pulled_at),
        mutations=mutations_of(body, device_id=principal.device_id, last_pulled_at=last_pulled_at),
        received_at=datetime.now(UTC),
    )
