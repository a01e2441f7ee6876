"""Queue handlers of lead intake: an import runs in the worker, after the request that stored its file commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from uuid import UUID

from backend.intake.service import IMPORT_JOB, run_import
from backend.queue.service import Handler, Job
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.db.engine import Database


async def import_merchants(database: Database, job: Job) -> None:
    assert job.tenant_id is not None
    await run_import(database.sessions, job.tenant_id, UUID(str(job.payload["import_id"])))


@asynccontextmanager
async def handlers(settings: Settings) -> AsyncIterator[dict[str, Handler]]:
    yield {IMPORT_JOB: import_merchants}
