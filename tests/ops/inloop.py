"""The app served on the test's own event loop, for bursts that must really overlap.

Litestar's AsyncTestClient runs the app through a blocking portal in another thread and waits for each answer
before it returns, so `asyncio.gather` over its requests runs them one after another. httpx's ASGI transport
calls the app on the caller's loop instead; the app's lifespan (which opens the database pools) is driven here
by the ASGI lifespan protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar


@asynccontextmanager
async def served_in_loop(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        await outbox.put(message)

    asgi: Any = app  # Litestar's own ASGI types are narrower than httpx's and ours
    lifespan = asyncio.ensure_future(asgi({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://groundwork.test",  # type: ignore[arg-type]
        ) as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan
