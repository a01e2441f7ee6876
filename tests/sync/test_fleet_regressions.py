"""Divergences the simulated fleet (test_fleet.py) found, each as the smallest reproduction: a phone that synced
must end up equal to the server's view of its user, whatever changed on the server and however."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from backend.tasks import service as tasks_service
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.sync.test_sync import SHOP, pull_all
from tests.tasks.helpers import assign, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]


async def _caught_up(client: Client, user: FieldUser, held: dict[str, Any], cursor: str) -> None:
    """An incremental pull brings the phone to exactly what a fresh pull shows."""
    since = await pull_all(client, user, cursor)
    for name, records in since["records"].items():
        held[name].update(records)
        for record_id in since["removed"][name]:
            held[name].pop(record_id, None)
    fresh = (await pull_all(client, user))["records"]
    for name in fresh:
        assert held[name] == fresh[name], f"{name}: the phone kept a stale record"


async def test_expiry_bumps_the_merchants_whose_open_work_items_it_closes(factory: Factory, client: Client) -> None:
    """A merchant's record lists its open work items: expiring one changes the merchant on every phone."""
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    ends = datetime.now(UTC) + timedelta(hours=1)
    await assign(client, ops, await create_campaign(client, ops, ends_at=ends.isoformat()), [(poi, bd.id)])
    synced = await pull_all(client, bd)
    assert synced["records"]["pois"][str(poi)]["open_work_items"]
    async with factory.database.sessions() as session:
        assert await tasks_service.expire_due(session, now=ends + timedelta(minutes=1)) >= 1
        await session.commit()
    await _caught_up(client, bd, synced["records"], synced["cursor"])
