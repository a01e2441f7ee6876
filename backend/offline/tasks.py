"""Offline sync's periodic work: collecting old removals from the sync feed, and forgetting old WatermelonDB pulls.

Both delete in batches, each batch its own short transaction: an open writing transaction holds every sync cursor
back, and one long DELETE of a month's backlog would hold it back for minutes. Both are safe to run twice, on two
workers at once (rows another run is deleting are skipped, not waited for). Their retentions come with the
worker's `Database` (the settings it was connected with), never fetched here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_

from backend.db.engine import Database
from backend.offline.models import WatermelonPull, WatermelonRemoval
from backend.queue.scheduler import Periodic
from sync.engine import collect_tombstones

BATCH = 5_000  # rows deleted per transaction


async def collect_sync_tombstones(database: Database, now: datetime) -> dict[str, Any]:
    """Delete the feed's removals older than the retention and raise the horizon past them: a phone whose cursor
    is older than the newest collected removal then gets `resync_required` (410) and re-downloads its data.
    Without this the feed keeps every removal forever."""
    retention = timedelta(days=database.settings.sync_tombstone_retention_days)
    collected = 0
    while True:
        async with database.sessions() as session:
            batch = await collect_tombstones(session, retention, now=now, limit=BATCH)
            await session.commit()
        collected += batch
        if batch < BATCH:
            return {"collected": collected}


async def prune_watermelon_pulls(database: Database, now: datetime) -> dict[str, Any]:
    """Forget the bases of WatermelonDB pulls older than the retention (see WatermelonPull): a push that still
    names one is judged against its own `last_pulled_at`. Done here rather than on every pull, which is the hot
    path and would pay for a DELETE each time."""
    cutoff = now - timedelta(days=database.settings.watermelon_pull_retention_days)
    key = tuple_(WatermelonPull.user_id, WatermelonPull.device_id, WatermelonPull.timestamp)
    old = WatermelonPull.created_at < cutoff
    batch_keys = select(*key.clauses).where(old).limit(BATCH).with_for_update(skip_locked=True)
    statement = delete(WatermelonPull).where(old, key.in_(batch_keys)).execution_options(synchronize_session=False)
    pruned = 0
    while True:
        async with database.sessions() as session:
            result = await session.execute(statement)
            await session.commit()
        batch: int = result.rowcount  # type: ignore[attr-defined]
        pruned += batch
        if batch < BATCH:
            break
    # Removal marks of devices that never synced again (uninstalled, replaced): the record is long gone for them.
    async with database.sessions() as session:
        marks = await session.execute(delete(WatermelonRemoval).where(WatermelonRemoval.created_at < cutoff))
        await session.commit()
    return {"pruned": pruned, "marks_pruned": marks.rowcount}  # type: ignore[attr-defined]


PERIODIC: list[Periodic] = [
    Periodic("sync.tombstones", every=timedelta(hours=1), run=collect_sync_tombstones),
    Periodic("offline.prune_watermelon_pulls", every=timedelta(hours=1), run=prune_watermelon_pulls),
]
