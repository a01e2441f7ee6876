"""Queue handlers of visits: check-ins judged again when their trail grows (backend/visits/verdicts.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.queue.service import Handler
from backend.settings import Settings
from backend.visits.verdicts import REJUDGE, rejudge_handler, system_clock


@asynccontextmanager
async def handlers(settings: Settings) -> AsyncIterator[dict[str, Handler]]:
    yield {REJUDGE: rejudge_handler(system_clock)}
