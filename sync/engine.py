"""Pull and push.

Pull: one statement on the hot pool reads the snapshot's xmin and the user's changes since the cursor (a no-change
pull is that statement alone: one index lookup, no BEGIN/COMMIT). When there are changes, the records' current
state is read in one REPEATABLE READ, read-only transaction. State newer than the change list is harmless: at
worst a record is sent again next time; nothing is ever skipped, because the next cursor is the xmin of the
snapshot that listed the changes.

Push: the mutations of a request go in chunks of PUSH_CHUNK, one transaction each. A chunk first claims all its
(client, mutation id) keys in sync_mutations in one statement (a concurrent copy of the same push waits on those
rows and then finds them taken), answers the ones already taken from one statement, applies the others in order,
each under a savepoint of its own, and stores every outcome in one statement before it commits. A retry of a push
cut off halfway applies exactly what was not yet committed.

Nothing one mutation does can block the ones behind it: a business refusal is stored as `rejected` (its effects
rolled back, unless the refusal says to keep them), any other exception of its handler is a bug on our side,
logged with the request id and stored as `failed` with its args (`rerun_failed` re-runs it once fixed), and
either way the records it names are bumped so the phone's next pull brings the server's truth. Only faults of
the database session itself (connection lost, deadlock, serialization failure, shutdown: see `is_outage`) fail
the request; the phone retries it and the stored claims make that safe.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import msgspec
from sqlalchemy import and_, func, literal_column, select, text, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobile_contract.errors import ErrorCode
from mobile_contract.sync import Mutation, MutationResult, MutationStatus
from sync.cursor import CursorCodec, CursorRefused, SyncCursor
from sync.feed import Change, record_changes
from sync.registry import MutationMeta, MutationSpec, Registry
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
    WHERE user_id = $1 AND xid >= $2::text::xid8 AND (op = 'upsert' OR $2::text::bigint > 0) AND tenant_id = $4
    ORDER BY sync_changes.xid, sync_changes.collection, sync_changes.record_id LIMIT $3
"""
_CHANGES_AFTER = """
    SELECT xid::text::bigint AS xid, collection, record_id, op FROM sync_changes
    WHERE user_id = $1 AND (xid, collection, record_id) > ($4::text::xid8, $5::text, $6::uuid)
      AND (op = 'upsert' OR $2::text::bigint > 0) AND tenant_id = $7
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
    tenant_id: UUID,
    user_id: UUID,
    cursor: str | None,
    limit: int,
) -> PullPage:
    previous = codec.decode(cursor, user_id) if cursor else None
    base = previous.base if previous else 0
    if previous is not None and previous.after is not None:
        after_xid, after_collection, after_id = previous.after
        rows = await hot.fetch(
            PULL_NEXT_PAGE_SQL,
            user_id,
            str(base),
            limit + 1,
            str(after_xid),
            after_collection,
            UUID(hex=after_id),
            tenant_id,  # the user's tenant: every statement is tenant-scoped (tests/tenant_scope.py)
        )
    else:
        rows = await hot.fetch(PULL_FIRST_PAGE_SQL, user_id, str(base), limit + 1, tenant_id)
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
    # Collecting tombstones is a sweep over every tenant's feed, by design (tests/tenant_scope.py).
    removals = sync_changes.delete().prefix_with("/* all-tenants: tombstone GC */").where(old)
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

log = logging.getLogger("groundwork.sync")

# Mutations per transaction. Larger chunks commit less often (a commit is ~1 ms of fsync and bookkeeping); smaller
# ones keep less uncommitted work in flight when a push is cut off. 100 keeps the commit under 1% of a chunk.
PUSH_CHUNK = 100

INT64_MAX = 2**63 - 1

Outcome = tuple[MutationStatus, str | None, str | None, dict[str, Any] | None]

# One statement claims every key of a chunk; ON CONFLICT DO NOTHING waits for a concurrent claimer of the same
# key to finish, then skips the key: exactly one transaction ever applies a mutation. Keys are claimed in id
# order, so two pushes overlapping in any order never wait on each other in a cycle.
_CLAIM = text(
    """
    INSERT INTO sync_mutations
        (user_id, client_id, mutation_id, tenant_id, name, status, args, args_hash, created_at, base_xid)
    SELECT CAST(:user_id AS uuid), CAST(:client_id AS text), m.id, CAST(:tenant_id AS uuid), m.name, 'pending',
           m.args::jsonb, m.hash, m.created_at, CAST(:base_xid AS bigint)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:names AS text[]), CAST(:args AS text[]), CAST(:hashes AS text[]),
                CAST(:created AS timestamptz[])) AS m(id, name, args, hash, created_at)
    ORDER BY m.id
    ON CONFLICT DO NOTHING
    RETURNING mutation_id
    """
)
_STORED = text(
    """
    SELECT mutation_id, status, code, detail, result, applied_at FROM sync_mutations
    WHERE tenant_id = :tenant_id AND user_id = :user_id AND client_id = :client_id
      AND mutation_id = ANY(CAST(:ids AS bigint[]))
    """
)
_STORE = text(
    """
    UPDATE sync_mutations AS s
    SET status = r.status, code = r.code, detail = r.detail, result = r.result::jsonb
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:codes AS text[]),
                CAST(:details AS text[]), CAST(:results AS text[])) AS r(id, status, code, detail, result)
    WHERE s.tenant_id = :tenant_id AND s.user_id = :user_id AND s.client_id = :client_id AND s.mutation_id = r.id
    """
)

# SQLSTATE classes after which the transaction (or the connection) is gone, or that a retry resolves: connection
# exception, transaction rollback (serialization failure, deadlock), insufficient resources, operator
# intervention (shutdown, cancel), system error. And lock_not_available (lock_timeout).
_OUTAGE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_OUTAGE_STATES = frozenset({"55P03"})


def is_outage(exc: BaseException) -> bool:
    """True for faults of the database session rather than of one mutation: the request fails and is retried."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, sa_exc.PendingRollbackError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        return _sqlstate_is_outage(getattr(exc.orig, "sqlstate", None))
    if isinstance(exc, asyncpg.PostgresError):
        return _sqlstate_is_outage(exc.sqlstate)
    return False


def _sqlstate_is_outage(sqlstate: str | None) -> bool:
    return sqlstate is not None and (sqlstate[:2] in _OUTAGE_CLASSES or sqlstate in _OUTAGE_STATES)


def _is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.IntegrityError) and getattr(exc.orig, "sqlstate", None) == "23505"


def _json_text(value: Any) -> str:
    # PostgreSQL's jsonb cannot hold U+0000: stored as U+FFFD, so that storing an outcome never fails.
    return msgspec.json.encode(value).decode().replace("\\u0000", "\\ufffd")


def _plain_text(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "\ufffd")


def _args_hash(mutation: Mutation) -> str:
    return hashlib.sha256(msgspec.json.encode([mutation.name, mutation.args])).hexdigest()


def _unstorable(mutation: Mutation) -> str | None:
    """Why a mutation cannot even be claimed (its key or its time do not fit the table), else None. Such a
    mutation is answered `rejected` without being stored: there is no key to store it under."""
    if not 1 <= mutation.id <= INT64_MAX:
        return f"id: {mutation.id} is not within 1 and 2^63-1"
    try:
        at = mutation.created_at.astimezone(UTC)
    except (OverflowError, ValueError):
        return "created_at: not a representable time"
    if not 1 < at.year < 9999:
        return "created_at: not a representable time"
    return None


def _duplicate_of(mutation_id: int, first: MutationResult) -> MutationResult:
    original = first.original_status if first.status is MutationStatus.DUPLICATE else first.status
    return MutationResult(
        id=mutation_id,
        status=MutationStatus.DUPLICATE,
        original_status=original,
        code=first.code,
        detail=first.detail,
        result=first.result,
        applied_at=first.applied_at,
    )


async def push(
    *,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry[Any],
    actor: Any,
    tenant_id: UUID,
    user_id: UUID,
    client_id: str,
    base_xid: int | None,
    mutations: Sequence[Mutation],
    received_at: datetime,
    request_id: str | None = None,
    chunk_size: int = PUSH_CHUNK,
    context: Any = None,
) -> list[MutationResult]:
    """Apply `mutations` in order, each exactly once; one result per mutation, in the same order."""
    results: list[MutationResult | None] = [None] * len(mutations)
    first_at: dict[int, int] = {}
    todo: list[int] = []
    for index, mutation in enumerate(mutations):
        if mutation.id in first_at:
            continue  # the same id twice in one push: the second is a duplicate of the first (filled in below)
        first_at[mutation.id] = index
        problem = _unstorable(mutation)
        if problem is not None:
            results[index] = MutationResult(
                id=mutation.id, status=MutationStatus.REJECTED, code=ErrorCode.VALIDATION_FAILED, detail=problem
            )
        else:
            todo.append(index)
    for start in range(0, len(todo), chunk_size):
        indexes = todo[start : start + chunk_size]
        # Savepoints cost two round trips per mutation, as much as a check-in's own statements, and almost every
        # mutation succeeds: so a chunk first runs without them. When a handler raises, the chunk's transaction
        # (claims included: none of it was ever visible) is rolled back and the chunk runs again with that
        # mutation's outcome known (refused, or failed), so it is not run twice; a unique violation (a race) is
        # run again under a savepoint instead. After a few re-runs, every mutation left runs under a savepoint.
        guarded: set[int] | None = set()
        known: dict[int, Outcome] = {}
        reruns = 0
        while True:
            async with sessions() as session:
                try:
                    outcomes = await _push_chunk(
                        session,
                        registry,
                        actor,
                        tenant_id,
                        user_id,
                        client_id,
                        base_xid,
                        [mutations[i] for i in indexes],
                        received_at,
                        request_id,
                        guarded,
                        known,
                        context,
                    )
                except _Unguarded as raised:
                    await session.rollback()
                    reruns += 1
                    if raised.outcome is not None:
                        known[raised.position] = raised.outcome
                    elif guarded is not None:
                        guarded.add(raised.position)
                    if reruns >= _GUARDED_RETRIES:
                        guarded = None
                    continue
                await session.commit()
            break
        for index, outcome in zip(indexes, outcomes, strict=True):
            results[index] = outcome
    answer = []
    for index, mutation in enumerate(mutations):
        result = results[index]
        if result is None:
            first = results[first_at[mutation.id]]
            assert first is not None
            result = _duplicate_of(mutation.id, first)
        answer.append(result)
    return answer


async def _push_chunk(
    session: AsyncSession,
    registry: Registry[Any],
    actor: Any,
    tenant_id: UUID,
    user_id: UUID,
    client_id: str,
    base_xid: int | None,
    mutations: list[Mutation],
    received_at: datetime,
    request_id: str | None,
    guarded: set[int] | None,
    known: dict[int, Outcome],
    context: Any = None,
) -> list[MutationResult]:
    """One chunk in the session's transaction. `guarded`: the positions that run under a savepoint (None: all);
    a handler raising anywhere else raises _Unguarded, and the caller runs the chunk again. `known`: outcomes of
    positions that raised in an earlier run of this chunk, taken as they were instead of running again."""
    key = {"tenant_id": tenant_id, "user_id": user_id, "client_id": client_id}
    claimed = set(
        (
            await session.execute(
                _CLAIM,
                {
                    **key,
                    "base_xid": base_xid,
                    "ids": [m.id for m in mutations],
                    "names": [m.name for m in mutations],
                    "args": [_json_text(m.args) for m in mutations],
                    "hashes": [_args_hash(m) for m in mutations],
                    "created": [m.created_at for m in mutations],
                },
            )
        ).scalars()
    )
    stored: dict[int, Any] = {}
    if len(claimed) < len(mutations):
        # Applied before (or by a concurrent copy of this push, which we waited for): answered as it was.
        taken = [m.id for m in mutations if m.id not in claimed]
        stored = {row.mutation_id: row for row in await session.execute(_STORED, {**key, "ids": taken})}
    results: list[MutationResult] = []
    fresh: list[MutationResult] = []
    bumps: list[Change] = []
    for position, mutation in enumerate(mutations):
        if mutation.id not in claimed:
            row = stored[mutation.id]
            results.append(
                MutationResult(
                    id=mutation.id,
                    status=MutationStatus.DUPLICATE,
                    original_status=MutationStatus(row.status),
                    code=row.code,
                    detail=row.detail,
                    result=row.result,
                    applied_at=row.applied_at,
                )
            )
            continue
        meta = MutationMeta(
            client_id=client_id,
            mutation_id=mutation.id,
            created_at=mutation.created_at,
            received_at=received_at,
            base_xid=base_xid,
            context=context,
        )
        savepoint = guarded is None or position in guarded
        try:
            result = await _apply_one(
                session, registry, actor, user_id, mutation, meta, request_id, bumps, savepoint, known.get(position)
            )
        except _Unguarded as raised:
            raised.position = position
            raise
        # The mutations of a chunk share a session: none may see ORM objects another one loaded, which statements
        # since (a check-in moving a work item to in progress) may have made stale.
        session.expunge_all()
        results.append(result)
        fresh.append(result)
    if fresh:
        await session.execute(
            _STORE,
            {
                **key,
                "ids": [r.id for r in fresh],
                "statuses": [r.status.value for r in fresh],
                "codes": [r.code for r in fresh],
                "details": [_plain_text(r.detail) for r in fresh],
                "results": [None if r.result is None else _json_text(r.result) for r in fresh],
            },
        )
    await record_changes(session, tenant_id, bumps)
    return results


async def _apply_one(
    session: AsyncSession,
    registry: Registry[Any],
    actor: Any,
    user_id: UUID,
    mutation: Mutation,
    meta: MutationMeta,
    request_id: str | None,
    bumps: list[Change],
    savepoint: bool,
    known: Outcome | None,
) -> MutationResult:
    """Run one claimed mutation (or take its `known` outcome); a refusal or failure adds the records it names to
    `bumps`."""
    if known is None:
        known = await _run(session, registry, actor, mutation, meta, request_id, savepoint)
    status, code, detail, result = known
    if status is not MutationStatus.APPLIED:
        spec = registry.mutations.get(mutation.name)
        if spec is not None:
            bumps.extend(Change(user_id, c, r) for c, r in _touches(spec, mutation.args, request_id))
    return MutationResult(id=mutation.id, status=status, code=code, detail=detail, result=result)


def _touches(spec: MutationSpec[Any], args: Mapping[str, Any], request_id: str | None) -> list[tuple[str, UUID]]:
    try:
        return spec.touches(args)
    except Exception:  # a bug in a touches(): it must not cost the mutation its stored outcome
        log.exception("touches() of %s raised on its args (request %s)", spec.name, request_id)
        return []


async def _run(
    session: AsyncSession,
    registry: Registry[Any],
    actor: Any,
    mutation: Mutation,
    meta: MutationMeta,
    request_id: str | None,
    savepoint: bool = True,
) -> Outcome:
    """Run one mutation. Without `savepoint`, a handler that raises (anything but an outage) raises _Unguarded:
    what it wrote cannot be undone alone, so the caller rolls the transaction back and runs it guarded."""
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
    except Exception as exc:  # a bug in a type's own checks (__post_init__): ours, not the phone's
        return _failed(exc, mutation, meta, request_id)
    if not savepoint:
        try:
            outcome = await spec.handler(session, actor, args, meta)
            result = msgspec.to_builtins(outcome) if outcome is not None else None
            await session.flush()  # its pending writes fail here, as its own, not in a later mutation's
        except Exception as exc:
            if is_outage(exc):
                raise
            refusal = registry.refusal(exc)
            if refusal is not None:
                refused: Outcome = (MutationStatus.REJECTED, refusal.code, refusal.detail, None)
                if refusal.keep_effects:
                    return refused  # what it wrote stays: nothing to undo
                raise _Unguarded(refused) from exc
            if _is_unique_violation(exc):
                raise _Unguarded(None) from exc  # a race: run it again, under a savepoint, after the rollback
            raise _Unguarded(_failed(exc, mutation, meta, request_id)) from exc
        return MutationStatus.APPLIED, None, None, result
    for attempt in (1, 2):
        nested = await session.begin_nested()
        try:
            outcome = await spec.handler(session, actor, args, meta)
            result = msgspec.to_builtins(outcome) if outcome is not None else None
            await nested.commit()
        except Exception as exc:
            refusal = registry.refusal(exc)
            if refusal is not None and refusal.keep_effects and nested.is_active:
                await nested.commit()  # e.g. a wrong code still counts as an attempt
            elif nested.is_active:
                await nested.rollback()  # raises, and so fails the request, when the connection is gone
            if refusal is not None:
                return MutationStatus.REJECTED, refusal.code, refusal.detail, None
            if is_outage(exc):
                raise  # the session is unusable or a retry will do: the push fails and the phone retries it
            if attempt == 1 and _is_unique_violation(exc):
                continue  # a concurrent writer of the same record committed first: run again, now seeing it
            return _failed(exc, mutation, meta, request_id)
        return MutationStatus.APPLIED, None, None, result
    raise AssertionError("unreachable")  # pragma: no cover


class _Unguarded(Exception):
    """A handler raised outside a savepoint: its chunk must be rolled back and run again, taking `outcome` as
    this mutation's (None: run it again under a savepoint)."""

    def __init__(self, outcome: Outcome | None) -> None:
        super().__init__()
        self.outcome = outcome
        self.position = -1


# After this many re-runs of one chunk, the next one guards every mutation it does not know the outcome of.
_GUARDED_RETRIES = 3


def _failed(exc: BaseException, mutation: Mutation, meta: MutationMeta, request_id: str | None) -> Outcome:
    log.error(
        "mutation %s #%d of client %s failed (request %s); stored as failed for `groundwork sync rerun`",
        mutation.name,
        mutation.id,
        meta.client_id,
        request_id,
        exc_info=exc,
    )
    where = f" (request {request_id})" if request_id else ""
    detail = (
        f"A fault on our side ({type(exc).__name__}){where}. The server kept this mutation and will run it "
        "again once the fault is fixed; do not resend it."
    )
    return MutationStatus.FAILED, ErrorCode.INTERNAL_ERROR, detail, None


# -- re-running failed mutations (an operator's command) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rerun:
    user_id: UUID
    client_id: str
    mutation_id: int
    name: str
    status: MutationStatus  # what the re-run did: applied, rejected, or failed again
    code: str | None


ActorFor = Callable[[AsyncSession, UUID], Awaitable[Any]]


async def rerun_failed(
    *,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry[Any],
    actor_for: ActorFor,
    user_id: UUID | None = None,
    mutation_id: int | None = None,
    request_id: str | None = "rerun",
    progress: Callable[[Rerun, int, int], None] | None = None,
    context: Any = None,
) -> list[Rerun]:
    """Run the stored `failed` mutations again (all, or one user's, or one id), each in a transaction of its own,
    as their user, with the times and base they were pushed with. Their stored status and result become the
    re-run's, and the records they name are bumped, so the phone's next pull shows the outcome. A replay of the
    push then answers the new outcome. `actor_for` returns the acting principal of a user (None: user gone)."""
    failed = sync_mutations.c.status == "failed"
    # An operator's rerun spans every tenant (or names a user, who names the tenant): tests/tenant_scope.py.
    query = (
        select(sync_mutations.c.user_id, sync_mutations.c.client_id, sync_mutations.c.mutation_id)
        .prefix_with("/* all-tenants: an operator's rerun of failed mutations */")
        .where(failed)
    )
    if user_id is not None:
        query = query.where(sync_mutations.c.user_id == user_id)
    if mutation_id is not None:
        query = query.where(sync_mutations.c.mutation_id == mutation_id)
    async with sessions() as session:
        keys = (await session.execute(query.order_by(*query.selected_columns))).all()
    done: list[Rerun] = []
    for number, (owner, client_id, key_id) in enumerate(keys, start=1):
        async with sessions() as session:
            row = (
                await session.execute(
                    select(sync_mutations)
                    .prefix_with("/* all-tenants: an operator's rerun of failed mutations */")
                    .where(
                        failed,
                        sync_mutations.c.user_id == owner,
                        sync_mutations.c.client_id == client_id,
                        sync_mutations.c.mutation_id == key_id,
                    )
                    .with_for_update(skip_locked=True)
                )
            ).one_or_none()
            if row is None:
                continue  # re-run meanwhile by another operator
            actor = await actor_for(session, owner)
            mutation = Mutation(
                id=row.mutation_id, name=row.name, args=row.args, created_at=row.created_at or row.applied_at
            )
            if actor is None:
                outcome: Outcome = (
                    MutationStatus.REJECTED,
                    ErrorCode.NOT_FOUND,
                    "The user who pushed this is gone.",
                    None,
                )
            else:
                meta = MutationMeta(
                    client_id=client_id,
                    mutation_id=row.mutation_id,
                    created_at=mutation.created_at,
                    received_at=row.applied_at,
                    base_xid=row.base_xid,
                    context=context,
                )
                outcome = await _run(session, registry, actor, mutation, meta, request_id)
            status, code, detail, result = outcome
            await session.execute(
                _STORE,
                {
                    "tenant_id": row.tenant_id,
                    "user_id": owner,
                    "client_id": client_id,
                    "ids": [row.mutation_id],
                    "statuses": [status.value],
                    "codes": [code],
                    "details": [_plain_text(detail)],
                    "results": [None if result is None else _json_text(result)],
                },
            )
            spec = registry.mutations.get(row.name)
            touched = _touches(spec, row.args, request_id) if spec is not None else []
            await record_changes(session, row.tenant_id, [Change(owner, c, r) for c, r in touched])
            await session.commit()
        rerun = Rerun(owner, client_id, row.mutation_id, row.name, status, code)
        done.append(rerun)
        if progress is not None:
            progress(rerun, number, len(keys))
    return done
