"""Tracking's background work: a person's day derived again when fixes for it land (derived.py), the trail's day
partitions made ahead, and trails past retention dropped.

Partitions are shared by every tenant (one per UTC day), so a whole day is dropped once it is older than the
longest retention any tenant keeps; tenants that keep less lose their older rows by DELETE from the partitions
between their cutoff and that one, in batches. The idempotency keys and refusals go with them. Safe to run on two
workers at once (IF NOT EXISTS, IF EXISTS, and deletes that skip what another run holds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.db.engine import Database
from backend.queue.scheduler import Periodic
from backend.queue.service import Handler
from backend.settings import Settings
from backend.tracking import derived, queries
from backend.tracking.models import POSITIONS
from backend.tracking.service import DEFAULT_RETENTION_DAYS

DERIVED_TABLES = (
    "tracking_stops",
    "tracking_trips",
    "tracking_gaps",
    "tracking_presence",
    "tracking_fence_events",
    "tracking_days",
)
AHEAD_DAYS = 2  # today and the next two days always have a partition
BATCH = 5_000


async def create_partitions(database: Database, now: datetime) -> dict[str, Any]:
    today = now.astimezone(UTC).date()
    created = await queries.ensure_partitions(database.hot, (today + timedelta(days=n) for n in range(AHEAD_DAYS + 1)))
    return {"created": created}


_RETENTIONS_SQL = """
SELECT /* all-tenants: retention is a sweep over every tenant's setting */
    t.id AS tenant_id, COALESCE(s.retention_days, $1) AS days
FROM tenants t LEFT JOIN tracking_settings s ON s.tenant_id = t.id
"""
_DELETE_TENANT_SQL = """
WITH doomed AS (
    SELECT tenant_id, fix_id FROM tracking_fix_ids
    WHERE tenant_id = $1 AND recorded_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED
), keys AS (
    DELETE FROM tracking_fix_ids k USING doomed d WHERE k.tenant_id = d.tenant_id AND k.fix_id = d.fix_id
    RETURNING k.fix_id
)
SELECT count(*) AS n FROM keys
"""


async def enforce_retention(database: Database, now: datetime) -> dict[str, Any]:
    """Drop the trail older than each tenant keeps it."""
    hot = database.hot
    tenants = await hot.fetch(_RETENTIONS_SQL, DEFAULT_RETENTION_DAYS)
    if not tenants:
        return {"dropped": []}
    longest = max(row["days"] for row in tenants)
    whole_cutoff = (now - timedelta(days=longest)).astimezone(UTC).date()
    dropped = []
    for day in await queries.partition_days(hot):
        if day < whole_cutoff:
            await hot.fetch("SET lock_timeout = '5s'")
            await hot.fetch(f"DROP TABLE IF EXISTS {queries.partition_name(day)}")
            dropped.append(day.isoformat())
    deleted = 0
    for row in tenants:
        cutoff = now - timedelta(days=row["days"])
        await hot.fetch(
            f"DELETE FROM {POSITIONS} WHERE tenant_id = $1 AND recorded_at < $2",  # noqa: S608
            row["tenant_id"],
            cutoff,
        )
        while True:
            found = await hot.fetch(_DELETE_TENANT_SQL, row["tenant_id"], cutoff, BATCH)
            deleted += found[0]["n"]
            if found[0]["n"] < BATCH:
                break
        await hot.fetch(
            "DELETE FROM tracking_refused WHERE tenant_id = $1 AND received_at < $2", row["tenant_id"], cutoff
        )
        # What was derived from the dropped trail goes with it (a day is kept while any of its hours is).
        for table in DERIVED_TABLES:
            await hot.fetch(
                f"DELETE FROM {table} WHERE tenant_id = $1 AND day < $2",  # noqa: S608 - names of this module
                row["tenant_id"],
                cutoff.date() - timedelta(days=1),
            )
    return {"dropped": dropped, "keys_deleted": deleted}


PERIODIC: list[Periodic] = [
    Periodic("tracking.partitions", every=timedelta(hours=1), run=create_partitions),
    Periodic("tracking.retention", every=timedelta(hours=6), run=enforce_retention),
]


@asynccontextmanager
async def handlers(settings: Settings) -> AsyncIterator[dict[str, Handler]]:
    """The queue handlers of tracking, for as long as a worker runs."""
    yield {derived.DERIVE_DAY: derived.handle_derive_day}
