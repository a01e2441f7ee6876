"""The lead pool's periodic work: release the private leads whose protection ended, warn those near it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.db.engine import Database
from backend.leads.release import release_due, warn_due
from backend.queue.scheduler import Periodic


async def release_leads(database: Database, now: datetime) -> dict[str, Any]:
    result = await release_due(database, now)
    return {"released": result.released, "holders": result.holders, "batches": result.batches}


async def warn_leads(database: Database, now: datetime) -> dict[str, Any]:
    return {"warned": await warn_due(database, now)}


# Every 10 minutes: a lead is released within minutes of its date, and the warning reaches the phone the same hour.
PERIODIC: list[Periodic] = [
    Periodic("leads.release", every=timedelta(minutes=10), run=release_leads),
    Periodic("leads.warn", every=timedelta(minutes=10), run=warn_leads),
]
