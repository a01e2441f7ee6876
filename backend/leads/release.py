"""When a private lead goes back to the pool, in SQL only: one set of CTEs computes every held lead's release
date from its tenant's policy, for one lead (its view on the phone), for a tenant (what a proposed policy would do)
or for every tenant (the scheduler's sweep, a million leads in one pass).

A private lead's protection ends at the earliest of three clocks, each pushed back by its extensions:
- `protection_days` from the claim or assignment (`since`);
- `no_visit_days` from the holder's latest believable visit since then (a check-in whose verdict is not
  `rejected`), or from `since` when there is none: a rejected check-in never refreshes the clock;
- `no_signing_days` from `since`: a signing wins the lead (pool.on_signing), and a won lead is never released.
A warning is due from `warn_days` before the release. Times are bound as `:now`, from the caller's clock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.engine import Database
from backend.leads.policy import DEFAULTS, policy_params
from backend.push.service import notify_users
from mobile_contract.leads import LeadPolicy

# The policy in force, for every tenant (or the one bound as :only_tenant): its latest version, else the defaults
# (bound from LeadPolicy's defaults, so they are written in one place).
_POLICY_OF_EVERY_TENANT = """
policy AS (
    SELECT t.id AS tenant_id,
           coalesce((lp.rules ->> 'protection_days')::int, :protection_days) AS protection_days,
           coalesce((lp.rules ->> 'no_visit_days')::int, :no_visit_days) AS no_visit_days,
           coalesce((lp.rules ->> 'no_signing_days')::int, :no_signing_days) AS no_signing_days,
           coalesce((lp.rules ->> 'warn_days')::int, :warn_days) AS warn_days
    FROM tenants t
    LEFT JOIN LATERAL (
        SELECT x.rules FROM lead_policies x WHERE x.tenant_id = t.id ORDER BY x.version DESC LIMIT 1
    ) lp ON true
    WHERE CAST(:only_tenant AS uuid) IS NULL OR t.id = CAST(:only_tenant AS uuid)
)"""

# One tenant's policy, given as parameters (the one in force, or a proposed one).
_POLICY_GIVEN = """
policy AS (
    SELECT CAST(:tenant_id AS uuid) AS tenant_id,
           CAST(:protection_days AS int) AS protection_days,
           CAST(:no_visit_days AS int) AS no_visit_days,
           CAST(:no_signing_days AS int) AS no_signing_days,
           CAST(:warn_days AS int) AS warn_days
)"""

_DATES = """
held AS (
    SELECT p.tenant_id, p.id AS poi_id, p.holder_id,
           coalesce(l.since, p.claimed_at, p.created_at) AS since,
           coalesce(l.extended_days, 0) AS ext,
           l.warned_release_at,
           pol.protection_days, pol.no_visit_days, pol.no_signing_days, pol.warn_days
    FROM policy pol
    JOIN pois p ON p.tenant_id = pol.tenant_id
    LEFT JOIN leads l ON l.tenant_id = p.tenant_id AND l.poi_id = p.id
    WHERE p.holder_id IS NOT NULL AND coalesce(l.state, 'private') = 'private' {held_filter}
    {held_tail}
),
dated AS (
    SELECT h.*, v.last_visit_at,
           h.since + make_interval(days => h.protection_days + h.ext) AS protection_end,
           greatest(h.since, v.last_visit_at) + make_interval(days => h.no_visit_days + h.ext) AS visit_end,
           h.since + make_interval(days => h.no_signing_days + h.ext) AS signing_end
    FROM held h
    LEFT JOIN LATERAL (
        SELECT max(vi.checked_in_at) AS last_visit_at
        FROM visits vi
        WHERE vi.tenant_id = {visit_tenant} AND vi.poi_id = h.poi_id AND vi.user_id = h.holder_id
          AND vi.check_in_status <> 'rejected' AND vi.checked_in_at >= h.since AND vi.checked_in_at <= :now
    ) v ON true
),
due AS (
    SELECT d.*,
           least(d.protection_end, d.visit_end, d.signing_end) AS release_at,
           CASE WHEN d.visit_end <= least(d.protection_end, d.signing_end) THEN 'no_visit'
                WHEN d.signing_end <= d.protection_end THEN 'no_signing'
                ELSE 'protection_ended' END AS cause
    FROM dated d
)"""


def dates_sql(*, every_tenant: bool, held_filter: str = "", held_tail: str = "") -> str:
    """`WITH policy, held, dated, due`: append a SELECT (or more CTEs) over `due`. `held_filter` narrows the
    held leads (AND ...), `held_tail` orders and limits them (a window of the sweep)."""
    policy = _POLICY_OF_EVERY_TENANT if every_tenant else _POLICY_GIVEN
    visit_tenant = "h.tenant_id" if every_tenant else "CAST(:tenant_id AS uuid)"
    return (
        "WITH " + policy + "," + _DATES.format(held_filter=held_filter, held_tail=held_tail, visit_tenant=visit_tenant)
    )


@dataclass(frozen=True, slots=True)
class LeadDates:
    poi_id: UUID
    holder_id: UUID
    since: datetime
    last_visit_at: datetime | None
    release_at: datetime
    cause: str
    warn_from: datetime


async def dates_of(
    session: AsyncSession, tenant_id: UUID, policy: LeadPolicy, now: datetime, poi_ids: list[UUID] | None = None
) -> dict[UUID, LeadDates]:
    """The release dates of a tenant's private leads (these merchants, or all of them) under `policy`."""
    held_filter = "AND p.tenant_id = :tenant_id" + (" AND p.id = ANY(:poi_ids)" if poi_ids is not None else "")
    sql = (
        dates_sql(every_tenant=False, held_filter=held_filter)  # noqa: S608 - fixed fragments only
        + """
        SELECT poi_id, holder_id, since, last_visit_at, release_at, cause,
               release_at - make_interval(days => warn_days) AS warn_from
        FROM due"""
    )
    params: dict[str, Any] = {"tenant_id": tenant_id, "now": now, **policy_params(policy)}
    if poi_ids is not None:
        params["poi_ids"] = poi_ids
    rows = await session.execute(text(sql), params)
    return {row.poi_id: LeadDates(*row) for row in rows}


# -- the sweep ------------------------------------------------------------------------------------------------

# A window of the next :batch held leads in key order after (:after_tenant, :after_id): every pass reads each held
# lead once, whatever share of them is due (a LIMIT over the due ones would recompute them all for every batch).
_RELEASE = (
    "/* all-tenants: the lead pool's release sweep, every tenant's due private leads in one pass */ "  # noqa: S608
    + dates_sql(
        every_tenant=True,
        held_filter="AND (p.tenant_id, p.id) > (CAST(:after_tenant AS uuid), CAST(:after_id AS uuid))",
        held_tail="ORDER BY p.tenant_id, p.id LIMIT :batch",
    )
    + """,
window_end AS (
    SELECT tenant_id, poi_id FROM held ORDER BY tenant_id DESC, poi_id DESC LIMIT 1
),
released AS (
    UPDATE pois p SET holder_id = NULL, claimed_at = NULL, updated_at = :now
    FROM due d
    WHERE d.release_at <= :now
      AND p.tenant_id = d.tenant_id AND p.id = d.poi_id AND p.holder_id = d.holder_id
    RETURNING p.tenant_id, p.id AS poi_id, d.holder_id, d.cause
),
state AS (
    INSERT INTO leads (tenant_id, poi_id, state, how, since, extensions_used, extended_days, updated_at)
    SELECT tenant_id, poi_id, 'pool', NULL, NULL, 0, 0, :now FROM released
    ON CONFLICT (tenant_id, poi_id) DO UPDATE
    SET state = 'pool', how = NULL, since = NULL, extensions_used = 0, extended_days = 0,
        warned_release_at = NULL, updated_at = EXCLUDED.updated_at
),
history AS (
    INSERT INTO lead_events (tenant_id, id, poi_id, at, action, actor_id, from_user_id, to_user_id, reason)
    SELECT tenant_id, gen_random_uuid(), poi_id, :now, 'release', NULL, holder_id, NULL, cause FROM released
),
feed AS (
    -- The former holder's phone: the merchant leaves their scope (removed), unless a work item of theirs still
    -- targets it (then it stays, and shows its new holder): leads/service.py's _on_phones, the holder gone.
    INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)
    SELECT r.holder_id, 'pois', r.poi_id, r.tenant_id,
           CASE WHEN EXISTS (
               SELECT 1 FROM work_items w
               WHERE w.tenant_id = r.tenant_id AND w.poi_id = r.poi_id AND w.assignee_id = r.holder_id
           ) THEN 'upsert' ELSE 'remove' END
    FROM released r
    UNION ALL
    SELECT r.holder_id, 'leads', r.poi_id, r.tenant_id, 'remove' FROM released r
    ON CONFLICT (user_id, collection, record_id) DO UPDATE
    SET op = EXCLUDED.op, xid = pg_current_xact_id(), changed_at = now()
)
SELECT 'end' AS kind, tenant_id, poi_id AS user_id, 0 AS n FROM window_end
UNION ALL
SELECT 'released', tenant_id, holder_id, count(*) FROM released GROUP BY tenant_id, holder_id"""
)

RELEASE_BATCH = 50_000  # rows per transaction: short enough not to hold the sync cursors back for long


@dataclass(frozen=True, slots=True)
class SweepResult:
    released: int
    holders: int
    batches: int


async def release_due(
    database: Database, now: datetime, *, only_tenant: UUID | None = None, batch: int = RELEASE_BATCH
) -> SweepResult:
    """Release every private lead whose protection ended by `now`, window by window of `batch` held leads, each
    its own short transaction; the former holders get a "sync now" push (through the queue). Safe to run twice,
    or on two workers at once: a released lead has no holder, so it is not due again, and the UPDATE re-checks the
    holder."""
    released = batches = 0
    holders: set[tuple[UUID, UUID]] = set()
    after = (UUID(int=0), UUID(int=0))
    params: dict[str, Any] = {"now": now, "only_tenant": only_tenant, "batch": batch, **policy_params(DEFAULTS)}
    while True:
        async with database.sessions() as session:
            rows = (
                await session.execute(text(_RELEASE), {**params, "after_tenant": after[0], "after_id": after[1]})
            ).all()
            by_tenant: dict[UUID, set[UUID]] = defaultdict(set)
            for kind, tenant_id, user_id, _ in rows:
                if kind == "released":
                    by_tenant[tenant_id].add(user_id)
            for tenant_id, users in by_tenant.items():
                await notify_users(session, tenant_id, users, reason="removed", collection="pois")
            await session.commit()
        ends = [(row[1], row[2]) for row in rows if row[0] == "end"]
        if not ends:
            return SweepResult(released=released, holders=len(holders), batches=batches)
        batches += 1
        after = ends[0]
        released += sum(row[3] for row in rows if row[0] == "released")
        holders |= {(row[1], row[2]) for row in rows if row[0] == "released"}


_WARN = (
    "/* all-tenants: the lead pool's warning sweep, every tenant's private leads near release */ "  # noqa: S608
    + dates_sql(every_tenant=True)
    + """,
warn AS (
    SELECT tenant_id, poi_id, holder_id, since, release_at FROM due
    WHERE release_at > :now AND release_at - make_interval(days => warn_days) <= :now
      AND warned_release_at IS DISTINCT FROM release_at
),
marked AS (
    INSERT INTO leads (tenant_id, poi_id, state, how, since, warned_release_at, updated_at)
    SELECT tenant_id, poi_id, 'private', 'claimed', since, release_at, :now FROM warn
    ON CONFLICT (tenant_id, poi_id) DO UPDATE
    SET warned_release_at = EXCLUDED.warned_release_at, updated_at = EXCLUDED.updated_at
    RETURNING tenant_id, poi_id
),
feed AS (
    INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)
    SELECT w.holder_id, 'leads', w.poi_id, w.tenant_id, 'upsert' FROM warn w
    ON CONFLICT (user_id, collection, record_id) DO UPDATE
    SET op = EXCLUDED.op, xid = pg_current_xact_id(), changed_at = now()
)
SELECT tenant_id, holder_id, count(*) AS n FROM warn GROUP BY tenant_id, holder_id"""
)


async def warn_due(database: Database, now: datetime, *, only_tenant: UUID | None = None) -> int:
    """Warn each holder once per release date (a visit or an extension that moves the date warns again later):
    the lead's sync row carries `warning`, and a push wakes the phone. Returns the leads warned."""
    params = {"now": now, "only_tenant": only_tenant, **policy_params(DEFAULTS)}
    async with database.sessions() as session:
        rows = (await session.execute(text(_WARN), params)).all()
        by_tenant: dict[UUID, set[UUID]] = defaultdict(set)
        for tenant_id, holder_id, _ in rows:
            by_tenant[tenant_id].add(holder_id)
        for tenant_id, users in by_tenant.items():
            await notify_users(session, tenant_id, users, reason="expiring", collection="leads")
        await session.commit()
    return sum(row[2] for row in rows)
