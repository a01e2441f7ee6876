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
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.errors import DomainError
from backend.offline.models import WatermelonPull, WatermelonRemoval
from backend.offline.registry import SyncRegistry, WatermelonTable
from backend.settings import Settings
from mobile_contract.base import EARLIEST, INT64_MAX, LATEST, Request, Response, json_problem, moment_problem
from mobile_contract.errors import ErrorCode
from mobile_contract.sync import Mutation
from sync import engine
from sync.cursor import CursorCodec, SyncCursor

PAGE = 5_000
_EARLIEST_MS = EARLIEST.timestamp() * 1000
_LATEST_MS = LATEST.timestamp() * 1000


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


def parse_last_pulled_at(value: str, *, lenient: bool = False) -> int | None:
    """WatermelonDB's `lastPulledAt`: a timestamp we sent (an xid, within int64), or null. A pull refuses anything
    else; a push (`lenient`) takes it as null, since a refused push is retried by WatermelonDB forever."""
    if value in ("null", "undefined", "", "0"):
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > INT64_MAX:
        if lenient:
            return None
        raise DomainError(
            ErrorCode.INVALID_CURSOR, "last_pulled_at must be a timestamp we sent, or null: sync from scratch."
        )
    return int(value)


# -- columns, for the domains' tables (backend/<domain>/sync.py) -----------------------------------------------


def ms(moment: datetime | None) -> int | None:
    """A time as the app's columns hold it: milliseconds since the epoch."""
    return int(moment.timestamp() * 1000) if moment is not None else None


def as_iso(ms: Any) -> Any:
    """Milliseconds to RFC 3339; anything else (or a time outside the contract's range, such as 1e20 ms) is passed
    on as sent, for the mutation's validation to refuse."""
    moment = as_datetime(ms)
    return moment.isoformat() if moment is not None else ms


def as_datetime(ms: Any) -> datetime | None:
    """Milliseconds since the epoch as a datetime, or None when it is not a number within the contract's range
    (checked before converting: datetime.fromtimestamp raises past year 9999)."""
    if isinstance(ms, int | float) and not isinstance(ms, bool) and _EARLIEST_MS <= ms <= _LATEST_MS:
        return datetime.fromtimestamp(ms / 1000, UTC)
    return None


def fix_args(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The fix a row's `<prefix>_*` columns hold, as a mutation's `fix` argument."""
    return {
        "lat": row.get(f"{prefix}_lat"),
        "lon": row.get(f"{prefix}_lon"),
        "accuracy_m": row.get(f"{prefix}_accuracy_m"),
        "captured_at": as_iso(row.get(f"{prefix}_captured_at")),
        "is_mock": bool(row.get(f"{prefix}_is_mock")),
    }


def json_column(value: Any) -> Any:
    """A JSON value kept in a string column; text that is not JSON is passed on, refused and kept as sent."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def watermelon_mutation(name: str, args: dict[str, Any], created_at: Any, edit: bytes) -> Mutation:
    """A mutation for one queued edit: `edit` names it (the device, the push's last_pulled_at, the row), so the
    same push sent twice is a replay and the same value sent in a later sync is a new edit.

    Args the contract refuses (U+0000, nested too deep, numbers out of range) cannot even be stored as sent: they
    are kept whole as JSON text, in args that the mutation's validation refuses, so the row is stored as a
    `rejected` result and the rows behind it still apply."""
    digest = hashlib.sha256(edit + b"\0" + msgspec.json.encode([name, args])).digest()
    mutation_id = int.from_bytes(digest[:8], "big") >> 1 or 1  # positive, fits a bigint
    when = created_at if isinstance(created_at, datetime) and moment_problem(created_at) is None else datetime.now(UTC)
    problem = json_problem(args)
    if problem is not None:
        args = {"refused": problem, "sent": msgspec.json.encode(args).decode()}  # JSON text escapes U+0000
    return Mutation(id=mutation_id, name=name, args=args, created_at=when)


# -- pull ------------------------------------------------------------------------------------------------------


async def pull(
    database: Database,
    registry: SyncRegistry,
    codec: CursorCodec,
    principal: Principal,
    last_pulled_at: int | None,
) -> PullAnswer:
    cursor = (
        codec.encode(SyncCursor(principal.user_id, last_pulled_at, last_pulled_at, None)) if last_pulled_at else None
    )
    tables = registry.watermelon
    latest: dict[str, dict[UUID, Any]] = {table: {} for table in tables}  # id -> row, or None when removed
    while True:
        page = await engine.pull(
            hot=database.hot,
            sessions=database.sessions,
            registry=registry,
            codec=codec,
            actor=principal,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            cursor=cursor,
            limit=PAGE,
        )
        for table, spec in tables.items():
            for record in page.changes[table].upserted:
                latest[table][record.id] = spec.row(record)
            for record_id in page.changes[table].removed:
                latest[table][record_id] = None
        cursor = page.cursor
        if not page.has_more:
            break
    for table, spec in tables.items():
        if spec.fetch_gone is not None:
            await _mark_removals(database, principal, spec, latest[table], last_pulled_at, page.snapshot)
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
        await session.commit()


async def _mark_removals(
    database: Database,
    principal: Principal,
    table: WatermelonTable,
    rows: dict[UUID, Any],
    last_pulled_at: int | None,
    timestamp: int,
) -> None:
    """Records that left the phone's scope go out marked gone first, and as deletions only once the phone has
    synced after receiving the mark (see WatermelonRemoval). Rewrites `rows` (id -> row, None for a deletion)."""
    assert table.fetch_gone is not None
    removed = {record_id for record_id, row in rows.items() if row is None}
    back = {record_id for record_id, row in rows.items() if row is not None}
    mine = (
        WatermelonRemoval.user_id == principal.user_id,
        WatermelonRemoval.device_id == principal.device_id,
        WatermelonRemoval.collection == table.name,
    )
    async with database.sessions() as session:
        if last_pulled_at is None:
            # A first sync: the phone holds nothing yet, and marks of an earlier install are void.
            await session.execute(delete(WatermelonRemoval).where(*mine))
            await session.commit()
            return
        found = (
            await session.execute(
                select(
                    WatermelonRemoval.record_id,
                    WatermelonRemoval.marked_at,
                    WatermelonRemoval.flushed,
                    WatermelonRemoval.pulls_since,
                ).where(*mine)
            )
        ).all()
        if not found and not removed:
            return
        marks = {row.record_id: row.marked_at for row in found}
        synced_since = {row.record_id for row in found if last_pulled_at >= row.marked_at} - back
        due = {row.record_id for row in found if row.record_id in synced_since and (row.flushed or row.pulls_since)}
        waiting = synced_since - due  # synced since the mark, but no push landed: one more pull first
        if waiting:
            await session.execute(
                update(WatermelonRemoval)
                .where(*mine, WatermelonRemoval.record_id.in_(waiting))
                .values(pulls_since=WatermelonRemoval.pulls_since + 1)
            )
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
                            "collection": table.name,
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
            loaded = await table.fetch_gone(session, principal, gone)
            now_ms = ms(datetime.now(UTC))
            for record_id in gone:
                record = loaded.get(record_id)
                rows[record_id] = None if record is None else {**table.row(record), "removed_at": now_ms}
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


# -- push ------------------------------------------------------------------------------------------------------


def mutations_of(
    body: PushBody, registry: SyncRegistry, *, device_id: str = "", last_pulled_at: int | None = None
) -> list[Mutation]:
    """The business commands a WatermelonDB change set stands for, table by table in an order that respects
    dependencies (merchants before the visits at them, visits before work-item edits). Deletions are ignored:
    phones do not delete merchants, visits or work items (evidence is kept)."""
    push = f"{device_id}|{last_pulled_at}"
    mutations: list[Mutation] = []
    for table in registry.tables_in_push_order():
        changes = body.changes.get(table.name)
        if changes is None:
            continue

        def edit(row: dict[str, Any], name: str = table.name) -> bytes:
            return f"{push}|{name}|{row.get('id')}".encode()

        mutations += table.mutations(changes.created, changes.updated, edit)
    return mutations


async def push(
    database: Database,
    registry: SyncRegistry,
    principal: Principal,
    body: PushBody,
    last_pulled_at: int | None,
    *,
    settings: Settings,
    request_id: str | None = None,
) -> None:
    await engine.push(
        sessions=database.sessions,
        registry=registry,
        actor=principal,
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        client_id=f"watermelon:{principal.device_id}",
        base_xid=await _base_of(database, principal, last_pulled_at),
        mutations=mutations_of(body, registry, device_id=principal.device_id, last_pulled_at=last_pulled_at),
        received_at=datetime.now(UTC),
        request_id=request_id,
        context=settings,
    )
    if last_pulled_at is not None:
        # This push carried whatever the phone held when it pulled at `last_pulled_at`: the marks that pull had
        # delivered may become deletions on the next pull (see WatermelonRemoval).
        async with database.sessions() as session:
            await session.execute(
                update(WatermelonRemoval)
                .where(
                    WatermelonRemoval.user_id == principal.user_id,
                    WatermelonRemoval.device_id == principal.device_id,
                    WatermelonRemoval.marked_at <= last_pulled_at,
                )
                .values(flushed=True)
            )
            await session.commit()
