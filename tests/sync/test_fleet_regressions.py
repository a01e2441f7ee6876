"""Divergences the simulated fleet (test_fleet.py) found, each as the smallest reproduction: a phone that synced
must end up equal to the server's view of its user, whatever changed on the server and however."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.tasks import service as tasks_service
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.sync.test_sync import SHOP, check_in_mutation, pull_all, push
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


async def test_a_check_in_queued_again_under_a_new_mutation_id_is_answered_as_the_first(
    factory: Factory, client: Client
) -> None:
    """The app re-queues a check-in it had already queued (it crashed before noting it): same visit id, same
    fix, a later `created_at`. One visit, and the phone is told it is recorded, not refused."""
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    first = check_in_mutation(1, poi)
    again = {**first, "id": 2, "created_at": (datetime.now(UTC) + timedelta(seconds=30)).isoformat()}
    results = await push(client, bd, [first])
    results += await push(client, bd, [again])
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert results[1]["result"]["id"] == results[0]["result"]["id"]
    assert await factory.count("SELECT count(*) FROM visits WHERE user_id = :u", u=bd.id) == 1


async def test_a_reassignment_bumps_the_merchant_for_a_former_assignee_who_keeps_it(
    factory: Factory, client: Client
) -> None:
    """A holds the merchant as a lead and had its work item; the item moves to B. A keeps the merchant, whose
    open work items now name B: A's phone must learn that."""
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd_a, bd_b = await factory.user(tenant), await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP, holder_id=bd_a.id)
    [item] = await assign(client, ops, await create_campaign(client, ops), [(poi, bd_a.id)])
    synced = await pull_all(client, bd_a)
    moved = await client.patch(f"/v1/work-items/{item}", json={"assignee_id": str(bd_b.id)}, headers=ops.headers)
    assert moved.status_code == 200, moved.text
    await _caught_up(client, bd_a, synced["records"], synced["cursor"])


async def test_a_check_in_bumps_the_merchant_whose_recent_visits_it_changes(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP, holder_id=bd.id)
    synced = await pull_all(client, bd)
    [result] = await push(client, bd, [check_in_mutation(1, poi)])
    assert result["status"] == "applied", result
    await _caught_up(client, bd, synced["records"], synced["cursor"])


@pytest.mark.xfail(
    strict=True,
    reason="fleet KNOWN late_notes_doubled: a late notes edit is merged without its base (merge_notes(None, ...)), "
    "so the lines the phone had seen come twice",
)
async def test_a_late_notes_edit_after_the_new_holder_edited_keeps_each_line_once(
    factory: Factory, client: Client
) -> None:
    """A's phone appends a line to notes it had synced; the item moves to B, who adds a line of their own; A's
    queued edit then arrives (a late edit). Both new lines are kept, and the line both had is not doubled."""
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd_a, bd_b = await factory.user(tenant), await factory.user(tenant)
    [item] = await assign(client, ops, await create_campaign(client, ops), [(await factory.poi(tenant), bd_a.id)])
    [first] = await push(client, bd_a, [_update(1, item, "Met the owner")])
    assert first["status"] == "applied", first
    cursor = (await pull_all(client, bd_a))["cursor"]
    moved = await client.patch(f"/v1/work-items/{item}", json={"assignee_id": str(bd_b.id)}, headers=ops.headers)
    assert moved.status_code == 200, moved.text
    online = await client.patch(
        f"/v1/work-items/{item}", json={"notes": "Met the owner\nB: brochure left"}, headers=bd_b.headers
    )
    assert online.status_code == 200, online.text
    [late] = await push(client, bd_a, [_update(2, item, "Met the owner\nA: call Monday")], cursor=cursor)
    assert late["status"] == "applied", late
    notes = (await client.get(f"/v1/work-items/{item}", headers=ops.headers)).json()["notes"]
    lines = notes.splitlines()
    assert sorted(lines) == sorted(set(lines)), notes
    assert set(lines) == {"Met the owner", "B: brochure left", "A: call Monday"}, notes


def _update(mutation_id: int, item: str, notes: str) -> dict[str, Any]:
    return {
        "id": mutation_id,
        "name": "task.update",
        "args": {"id": item, "notes": notes},
        "created_at": datetime.now(UTC).isoformat(),
    }
