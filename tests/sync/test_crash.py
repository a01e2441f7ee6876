"""A push cut off by a server crash, then retried: every mutation applied exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx

from backend.settings import Settings
from tests.factories import Factory, fix
from tests.live_server import LiveServer

SHOP = (31.2304, 121.4737)
MUTATIONS = 300


async def test_server_killed_mid_push_then_retried_applies_each_mutation_once(
    factory: Factory, settings: Settings
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    now = datetime.now(UTC).isoformat()
    mutations = [
        {
            "id": i,
            "name": "visit.check_in",
            "args": {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(*SHOP)},
            "created_at": now,
        }
        for i in range(1, MUTATIONS + 1)
    ]
    body = {"client_id": "crash-phone", "mutations": mutations}
    server = await asyncio.to_thread(LiveServer(settings).start)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=bd.headers, timeout=60) as client:
            request = asyncio.create_task(client.post("/v1/sync/push", json=body))
            # Kill the server once part of the batch is committed, mid-request.
            applied_before_crash = 0
            for _ in range(600):
                applied_before_crash = await factory.count(
                    "SELECT count(*) FROM sync_mutations WHERE client_id = 'crash-phone' AND user_id = :u", u=bd.id
                )
                if applied_before_crash >= 20:
                    break
                await asyncio.sleep(0.01)
            server.kill()
            outcome = await asyncio.gather(request, return_exceptions=True)
            assert isinstance(outcome[0], httpx.HTTPError), "the push should have been cut off"
    finally:
        server.stop()
    partial = await factory.count("SELECT count(*) FROM visits WHERE user_id = :u", u=bd.id)
    assert 20 <= partial < MUTATIONS  # some committed, some not: a real partial push
    server = await asyncio.to_thread(LiveServer(settings).start)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=bd.headers, timeout=60) as client:
            retried = await client.post("/v1/sync/push", json=body)
            assert retried.status_code == 200, retried.text
            statuses = [r["status"] for r in retried.json()["results"]]
    finally:
        server.stop()
    assert statuses.count("duplicate") == partial
    assert statuses.count("applied") == MUTATIONS - partial
    assert await factory.count("SELECT count(*) FROM visits WHERE user_id = :u", u=bd.id) == MUTATIONS
    assert (
        await factory.count(
            "SELECT count(*) FROM sync_mutations WHERE client_id = 'crash-phone' AND status = 'pending'"
        )
        == 0
    )
