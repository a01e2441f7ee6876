"""Pull and push.

Pull: one statement on the hot pool reads the snapshot's xmin and the user's changes since the cursor (a no-change
pull is that statement alone: one index lookup, no BEGIN/COMMIT). When there are changes, the records' current
state is read in one REPEATABLE READ, read-only transaction. State newer than the change list is harmless: at
worst a record is sent again next time; nothing is ever skipped, because the next cursor is the xmin of the
snapshot that listed the changes.

Push: each mutation runs in a transaction of its own that first claims (client, mutation id) in sync_mutations,
then applies the mutation through the domain service, then stores the outcome. A replay finds the claim and
answers with the stored outcome; a retry of a push cut off halfway applies exactly what was not yet committed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import msgspec
from sqlalchemy import and_, func, literal_column, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobile_contract.errors import ErrorCode
from mobile_contract.sync import Mutation, MutationResult, MutationStatus
from sync.cursor import CursorCodec, CursorRefused, SyncCursor
from sync.feed import Change, record_changes
from sync.registry import MutationMeta, Registry
from sync.tables import sync_changes, sync_horizon, sync_mutations

# -- pull ------------------------------------------------------------------------------------------------------

_SNAPSHOT = """
    WITH snap AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
               (SELECT horizon::text::bigint FROM sync_horizon WHERE id = 1) AS horizon
    )
    SELECT snap.xmin, snap.horizon, c.xid, c.collection, c.record_id, c.op
    FROM snap LEFT JOIN LATERAL ({changes}) AS c ON true
"""
# Ordered by the table's columns, not the output's bigint alias: only then does the index give the order and
# the page stop after `limit` rows (ordering by the alias read and sorted the user's whole remaining feed).
_CHANGES_SINCE = """
    SELECT xid::text::bigint AS xid, collection, record_id, op FROM sync_changes
    WHERE user_id = $1 AND xid >= $2::text::xid8 AND (op = 'upsert' OR $2::text::bigint > 0)
    ORDER BY sync_changes.xid, sync_changes.collection, sync_changes.record_id LIMIT $3
"""
_CHANGES_AFTER = """
    SELECT xid::text::bigint AS xid, collection, record_id, op FROM sync_changes
    WHERE user_id = $1 AND (xid, collection, record_id) > ($4::text::xid8, $5::text, $6::uuid)
      AND (op = 'upsert' OR $2::text::bigint > 0)
    ORDER BY sync_changes.xid, sync_changes.collection, sync_changes.record_id LIMIT $3
"""
PULL_FIRST_PAGE_SQL = _SNAPSHOT.format(changes=_CHANGES_SINCE)
PULL_NEXT_PAGE_SQL = _SNAPSHOT.format(changes=_CHANGES_AFTER)


class Fetcher(Protocol):
    """Runs one statement: an asyncpg pool, or the app's lean hot pool."""

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...


@dataclass(slots=True)
class CollectionDelta:
    upserted: list[Any] = field(default_factory=list)
    removed: list[UUID] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PullPage:
    changes: dict[str, CollectionDelta]
    cursor: str
    has_more: bool
    snapshot: int  # the xid base the phone will have seen once it has every page


async def pull(
    *,
    hot: Fetcher,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry[Any],
    codec: CursorCodec,
    actor: Any,
    user_id: UUID,
    cursor: str | None,
    limit: int,
) -> PullPage:
    previous = codec.decode(cursor, user_id) if cursor else None
    base = previous.base if previous else 0
    if previous is not None and previous.after is not None:
        after_xid, after_collection, after_id = previous.after
        rows = await hot.fetch(
            PULL_NEXT_PAGE_SQL, user_id, str(base), limit + 1, str(after_xid), after_collection, UUID(hex=after_id)
        )
    else:
        rows = await hot.fetch(PULL_FIRST_PAGE_SQL, user_id, str(base), limit + 1)
    xmin, horizon = rows[0]["xmin"], rows[0]["horizon"]
    # A first sync (base 0) sends no removals, so collected ones cannot be missing from it: only an incremental
    # cursor is judged against the horizon (else every first sync that pages is refused once any were collected).
    if previous is not None and previous.base > 0 and horizon is not None and previous.base < horizon:
        raise CursorRefused(
            ErrorCode.RESYNC_REQUIRED,
            "This cursor is older than the removals we still keep: pull again without a cursor and replace "
            "the synced data with the answer.",
        )
    if previous is not None and previous.snapshot > xmin:
        raise CursorRefused(
            ErrorCode.RESYNC_REQUIRED, "This cursor is from the future of this database: pull without one."
        )
    snapshot = previous.snapshot if previous is not None and previous.after is not None else xmin
    changes = [row for row in rows if row["xid"] is not None]
    has_more = len(changes) > limit
    changes = changes[:limit]
    deltas = {name: CollectionDelta() for name in registry.collections}
    if changes:
        await _fill(deltas, changes, sessions, registry, actor)
    if has_more:
        last = changes[-1]
        next_cursor = SyncCursor(user_id, base, snapshot, (last["xid"], last["collection"], last["record_id"].hex))
    else:
        next_cursor = SyncCursor(user_id, snapshot, snapshot, None)
    return PullPage(changes=deltas, cursor=codec.encode(next_cursor), has_more=has_more, snapshot=snapshot)


async def _fill(
    deltas: dict[str, CollectionDelta],
    changes: list[asyncpg.Record],
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry[Any],
    actor: Any,
) -> None:
    wanted: dict[str, list[UUID]] = defaultdict(list)
    for row in changes:
        if row["collection"] not in deltas:
            continue  # a collection this server no longer serves
        if row["op"] == "remove":
            deltas[row["collection"]].removed.append(row["record_id"])
        else:
            wanted[row["collection"]].append(row["record_id"])
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
        for name, ids in wanted.items():
            found = await registry.collections[name].fetch(session, actor, ids)
            for record_id in ids:
                record = found.get(record_id)
                if record is None:
                    deltas[name].removed.append(record_id)  # gone, or no longer in this user's scope
                else:
                    deltas[name].upserted.append(record)
        await session.rollback()


async def collect_tombstones(
    session: AsyncSession, older_than: timedelta, *, now: datetime | None = None, limit: int | None = None
) -> int:
    """Delete removals older than the retention and raise the horizon past them. Returns how many went.

    `now` is the clock (the database's by default; tests pin it). `limit` caps one call, so that a large backlog
    is collected in many short transactions, one call each: an open writing transaction holds every cursor back.
    """
    cutoff = func.now() - older_than if now is None else now - older_than
    old = and_(sync_changes.c.op == "remove", sync_changes.c.changed_at < cutoff)
    removals = sync_changes.delete().where(old)
    if limit is not None:
        key = tuple_(sync_changes.c.user_id, sync_changes.c.collection, sync_changes.c.record_id)
        batch = select(*key.clauses).where(old).limit(limit).with_for_update(skip_locked=True)
        removals = removals.where(key.in_(batch))
    deleted: Any = await session.execute(removals.returning(literal_column("xid::text")))
    xids = [int(xid) for xid in deleted.scalars()]
    if xids:
        newest = max(xids) + 1
        statement = insert(sync_horizon).values(id=1, horizon=text(f"'{newest}'::xid8"))
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_={"horizon": text(f"greatest(sync_horizon.horizon, '{newest}'::xid8)")},
            )
        )
    return len(xids)


# -- push ------------------------------------------------------------------------------------------------------


def _args_hash(mutation: Mutation) -> str:
    return hashlib.sha256(msgspec.json.encode([mutation.name, mutation.args])).hexdigest()


async def push(
    *,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry[Any],
    actor: Any,
    tenant_id: UUID,
    user_id: UUID,
    client_id: str,
    base_xid: int | None,
    mutations: list[Mutation],
    received_at: datetime,
) -> list[MutationResult]:
    results = []
    for mutation in mutations:
        meta = MutationMeta(
            client_id=client_id,
            mutation_id=mutation.id,
            created_at=mutation.created_at,
            received_at=received_at,
            base_xid=base_xid,
        )
        async with sessions() as session:
            result = await _apply_one(session, registry, actor, tenant_id, user_id, mutation, meta)
            await session.commit()
        results.append(result)
    return results


async def _apply_one(
    session: AsyncSession,
    registry: Registry[Any],
    actor: Any,
    tenant_id: UUID,
    user_id: UUID,
    mutation: Mutation,
    meta: MutationMeta,
) -> MutationResult:
    key = (
        sync_mutations.c.user_id == user_id,
        sync_mutations.c.client_id == meta.client_id,
        sync_mutations.c.mutation_id == mutation.id,
    )
    claimed = await session.scalar(
        insert(sync_mutations)
        .values(
            user_id=user_id,
            client_id=meta.client_id,
            mutation_id=mutation.id,
            tenant_id=tenant_id,
            name=mutation.name,
            status="pending",
            args=mutation.args,
            args_hash=_args_hash(mutation),
            created_at=mutation.created_at,
        )
        .on_conflict_do_nothing()
        .returning(sync_mutations.c.mutation_id)
    )
    if claimed is None:
        # Applied before (or by a concurrent copy of this push, which we waited for): answer as it was.
        stored = (await session.execute(select(sync_mutations).where(*key))).one()
        return MutationResult(
            id=mutation.id,
            status=MutationStatus.DUPLICATE,
            original_status=MutationStatus(stored.status),
            code=stored.code,
            detail=stored.detail,
            result=stored.result,
            applied_at=stored.applied_at,
        )
    status, code, detail, result = await _run(session, registry, actor, tenant_id, user_id, mutation, meta)
    await session.execute(
        update(sync_mutations).where(*key).values(status=status.value, code=code, detail=detail, result=result)
    )
    return MutationResult(id=mutation.id, status=status, code=code, detail=detail, result=result)


async def _run(
    session: AsyncSession,
    registry: Registry[Any],
    actor: Any,
    tenant_id: UUID,
    user_id: UUID,
    mutation: Mutation,
    meta: MutationMeta,
) -> tuple[MutationStatus, str | None, str | None, dict[str, Any] | None]:
    spec = registry.mutations.get(mutation.name)
    if spec is None:
        known = ", ".join(sorted(registry.mutations))
        return (
            MutationStatus.REJECTED,
            ErrorCode.UNKNOWN_MUTATION,
            f"Unknown mutation; this server knows {known}.",
            None,
        )
    try:
        args = msgspec.convert(mutation.args, spec.args_type)
    except msgspec.ValidationError as exc:
        return MutationStatus.REJECTED, ErrorCode.VALIDATION_FAILED, f"args: {exc}", None
    try:
        async with session.begin_nested():
            outcome = await spec.handler(session, actor, args, meta)
    except Exception as exc:
        refusal = registry.refusal(exc)
        if refusal is None:
            raise  # a bug or an outage: the push fails and the phone retries it later
        touched = [Change(user_id, collection, record_id) for collection, record_id in spec.touches(args)]
        await record_changes(session, tenant_id, touched)
        return MutationStatus.REJECTED, refusal.code, refusal.detail, None
    result = msgspec.to_builtins(outcome) if outcome is not None else None
    return MutationStatus.APPLIED, None, None, result
