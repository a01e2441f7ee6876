"""Task campaigns' periodic work: closing, as expired, the open work items of campaigns that have ended."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.db.engine import Database
from backend.queue.scheduler import Periodic
from backend.tasks.service import expire_due


async def expire_work_items(database: Database, now: datetime) -> dict[str, Any]:
    """One short transaction: the expiry is one UPDATE of the items whose campaign ended by `now`, and it is safe
    to run twice (an expired item is no longer open)."""
    async with database.sessions() as session:
        expired = await expire_due(session, now)
        await session.commit()
    return {"expired": expired}


# Every 5 minutes: a BD's phone learns within minutes that a campaign's work is over.
PERIODIC: list[Periodic] = [Periodic("tasks.expire_work_items", every=timedelta(minutes=5), run=expire_work_items)]
