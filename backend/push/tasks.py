"""Push's background work: delivering the "sync now" pushes that `notify_users` queued, through APNs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.push.apns import ApnsSettings, PushDelivery
from backend.push.service import DELIVER
from backend.queue.service import Handler
from backend.settings import Settings


@asynccontextmanager
async def handlers(settings: Settings) -> AsyncIterator[dict[str, Handler]]:
    """The queue handlers of push, for as long as a worker runs: one APNs client, closed at the end."""
    delivery = PushDelivery(ApnsSettings.from_env())
    try:
        yield {DELIVER: delivery}
    finally:
        await delivery.close()
