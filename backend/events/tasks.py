"""Queue handlers of business events: re-attribution of a merchant's events after a late visit, follow-up or
target (queued in the transaction that wrote it, so it runs only after that commits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from uuid import UUID

from backend.events.service import REATTRIBUTE, reattribute_merchant
from backend.queue.service import Handler, Job
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.db.engine import Database


async def reattribute(database: Database, job: Job) -> None:
    """Recompute the merchant's events whole: safe to repeat, and two jobs for one merchant give one answer."""
    async with database.sessions() as session:
        await reattribute_merchant(session, UUID(str(job.payload["tenant_id"])), UUID(str(job.payload["poi_id"])))
        await session.commit()


@asynccontextmanager
async def handlers(settings: Settings) -> AsyncIterator[dict[str, Handler]]:
    yield {REATTRIBUTE: reattribute}
