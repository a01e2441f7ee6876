"""The offline engine end to end: pull (paging, scope, out-of-order commits, bad cursors) and push
(exactly once under replays, refusals that do not block the queue, late mutations, conflicts)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient
from sqlalchemy import text

from mobile_contract.auth import Role
from sync.engine import collect_tombstones
from sync.feed import Change, record_changes
from tests.factories import Factory, FieldUser, fix
from tests.tasks.helpers import assign, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)


async def pull_all(client: Client, user: FieldUser, cursor: str | None = None, limit: int = 1000) -> dict[str, Any]:
    """Every page of a pull, merged: what a phone holds after syncing."""
    merged: dict[str, dict[str, Any]] = {"pois": {}, "work_items": {}, "visits": {}}
    removed: dict[str, set[str]] = {name: set() for name in merged}
    pages = 0
    while True:
        body: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.post("/v1/sync/pull", json=body, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        for name, changes in page["changes"].items():
            for record in changes["upserted"]:
                merged[name][record["id"]] = record
                removed[name].discard(record["id"])
            for record_id in changes["removed"]:
                merged[name].pop(record_id, None)
                removed[name].add(record_id)
        cursor = page["cursor"]
        if not page["has_more"]:
            return {"records": merged, "removed": removed, "cursor": cursor, "pages": pages}


def check_in_mutation(mutation_id: int, poi: UUID, *, visit_id: UUID | None = None, **fix_args: Any) -> dict[str, Any]:
    return {
        "id": mutation_id,
        "name": "visit.check_in",
        "args": {"id": str(visit_id or uuid.uuid4()), "poi_id": str(poi), "fix": fix(*SHOP, **fix_args)},
        "created_at": datetime.now(UTC).isoformat(),
    }


async def push(client: Client, user: FieldUser, mutations: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/sync/push", json={"client_id": "phone-1", "mutations": mutations, **extra}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_first_sync_pages_then_nothing_changes(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    pois = [await factory.poi(tenant, name=f"Shop {i}") for i in range(5)]
    items = await assign(client, ops, await create_campaign(client, ops), [(p, bd.id) for p in pois])
    synced = await pull_all(client, bd, limit=3)
    assert synced["pages"] >= 3  # 10 records in pages of 3
    assert set(synced["records"]["work_items"]) == set(items)
    assert set(synced["records"]["pois"]) == {str(p) for p in pois}
    assert synced["records"]["pois"][str(pois[0])]["open_work_items"][0]["assignee_id"] == str(bd.id)
    again = await pull_all(client, bd, synced["cursor"])
    assert again["records"] == {"pois": {}, "work_items": {}, "visits": {}}
    assert again["pages"] == 1
    other = await factory.user(tenant)
    assert (await pull_all(client, other))["records"] == {"pois": {}, "work_items": {}, "visits": {}}


async def test_a_change_committed_out_of_order_is_never_skipped(factory: Factory, client: Client) -> None:
    """T1 starts writing first and commits last; a pull between the two commits must not move past T1."""
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    early, late = await factory.poi(tenant, holder_id=bd.id), await factory.poi(tenant, holder_id=bd.id)
    cursor = (await pull_all(client, bd))["cursor"]
    async with factory.database.sessions() as t1, factory.database.sessions() as t2:
        await record_changes(t1, tenant, [Change(bd.id, "pois", early)])  # T1 takes its xid first
        await record_changes(t2, tenant, [Change(bd.id, "pois", late)])
        await t2.commit()
        between = await pull_all(client, bd, cursor)
        assert set(between["records"]["pois"]) == {str(late)}
        await t1.commit()
    after = await pull_all(client, bd, between["cursor"])
    assert str(early) in after["records"]["pois"]


async def test_reassignment_removes_from_one_phone_and_adds_to_another(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd_a, bd_b = await factory.user(tenant), await factory.user(tenant)
    kept, moved = await factory.poi(tenant), await factory.poi(tenant)
    held_and_moved = await factory.poi(tenant, holder_id=bd_a.id)
    items = await assign(
        client, ops, await create_campaign(client, ops), [(kept, bd_a.id), (moved, bd_a.id), (held_and_moved, bd_a.id)]
    )
    a_cursor = (await pull_all(client, bd_a))["cursor"]
    b_cursor = (await pull_all(client, bd_b))["cursor"]
    for item in items[1:]:
        response = await client.patch(f"/v1/work-items/{item}", json={"assignee_id": str(bd_b.id)}, headers=ops.headers)
        assert response.status_code == 200, response.text
    on_a = await pull_all(client, bd_a, a_cursor)
    assert on_a["removed"]["work_items"] == {items[1], items[2]}
    assert on_a["removed"]["pois"] == {str(moved)}  # the held merchant stays: A still holds it as a lead
    on_b = await pull_all(client, bd_b, b_cursor)
    assert set(on_b["records"]["work_items"]) == {items[1], items[2]}
    assert on_b["records"]["work_items"][items[1]]["assignee_id"] == str(bd_b.id)
    assert set(on_b["records"]["pois"]) == {str(moved), str(held_and_moved)}


async def test_cursor_problems_tell_the_phone_to_resync(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd, other = await factory.user(tenant), await factory.user(tenant)
    await factory.poi(tenant, holder_id=bd.id)
    cursor = (await pull_all(client, bd))["cursor"]
    for garbage in ("garbage", cursor[:-4] + "AAAA", "x" * 600):
        response = await client.post("/v1/sync/pull", json={"cursor": garbage}, headers=bd.headers)
        assert response.status_code in (400, 422), garbage
        assert response.json()["code"] in ("invalid_cursor", "validation_failed")
    foreign = await client.post("/v1/sync/pull", json={"cursor": cursor}, headers=other.headers)
    assert foreign.status_code == 410
    assert foreign.json()["code"] == "resync_required"
    for body in ({"limit": 0}, {"limit": 10**6}, {"cursor": 5}, {"unknown": True}):
        assert (await client.post("/v1/sync/pull", json=body, headers=bd.headers)).status_code == 422, body


async def test_a_cursor_older_than_kept_removals_must_resync(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, holder_id=bd.id)
    released = await factory.poi(tenant, holder_id=bd.id)
    old_cursor = (await pull_all(client, bd))["cursor"]
    async with factory.database.sessions() as session:  # the lead is released: it leaves the BD's scope
        await session.execute(text("UPDATE pois SET holder_id = NULL WHERE id = :id"), {"id": released})
        await record_changes(session, tenant, [Change(bd.id, "pois", released, "remove")])
        await session.execute(
            text("UPDATE sync_changes SET changed_at = now() - interval '40 days' WHERE op = 'remove'")
        )
        await session.commit()
    async with factory.database.sessions() as session:
        assert await collect_tombstones(session, timedelta(days=30)) >= 1
        await session.commit()
    stale = await client.post("/v1/sync/pull", json={"cursor": old_cursor}, headers=bd.headers)
    assert stale.status_code == 410
    assert stale.json()["code"] == "resync_required"
    fresh = await pull_all(client, bd)  # a full resync works and is consistent again
    assert set(fresh["records"]["pois"]) == {str(poi)}


async def test_the_same_push_ten_times_applies_once(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    mutations = [check_in_mutation(i, poi) for i in range(1, 6)]
    results = await asyncio.gather(*(push(client, bd, mutations) for _ in range(10)))
    statuses = [r["status"] for batch in results for r in batch]
    assert statuses.count("applied") == 5
    assert statuses.count("duplicate") == 45
    assert await factory.count("SELECT count(*) FROM visits WHERE user_id = :u", u=bd.id) == 5
    replay = await push(client, bd, mutations[:1])
    assert replay[0]["status"] == "duplicate"
    assert replay[0]["original_status"] == "applied"
    assert replay[0]["result"]["check_in"]["verdict"]["status"] == "verified"


async def test_refusals_are_results_and_the_queue_goes_on(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    foreign_poi = await factory.poi(await factory.tenant(), *SHOP)
    mutations = [
        check_in_mutation(1, poi),
        {"id": 2, "name": "visit.teleport", "args": {}, "created_at": datetime.now(UTC).isoformat()},
        {"id": 3, "name": "visit.check_in", "args": {"poi_id": "nope"}, "created_at": datetime.now(UTC).isoformat()},
        check_in_mutation(4, foreign_poi),
        check_in_mutation(5, poi, is_mock=True),  # applied: stored as evidence with a rejected verdict
        {
            "id": 6,
            "name": "task.update",
            "args": {"id": str(uuid.uuid4()), "notes": "x"},
            "created_at": datetime.now(UTC).isoformat(),
        },
        check_in_mutation(7, poi),
    ]
    results = await push(client, bd, mutations)
    assert [(r["id"], r["status"], r.get("code")) for r in results] == [
        (1, "applied", None),
        (2, "rejected", "unknown_mutation"),
        (3, "rejected", "validation_failed"),
        (4, "rejected", "not_found"),
        (5, "applied", None),
        (6, "rejected", "not_found"),
        (7, "applied", None),
    ]
    assert results[4]["result"]["check_in"]["verdict"]["reasons"] == ["mock_location"]
    assert await factory.count("SELECT count(*) FROM visits WHERE user_id = :u", u=bd.id) == 3
    assert await factory.count("SELECT count(*) FROM visits WHERE poi_id = :p", p=foreign_poi) == 0
    # The refused payloads are kept as sent.
    assert (
        await factory.count(
            "SELECT count(*) FROM sync_mutations WHERE user_id = :u AND status = 'rejected' AND args IS NOT NULL",
            u=bd.id,
        )
        == 4
    )


async def test_a_check_in_synced_days_late_is_judged_by_its_own_times(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    three_days = 3 * 86_400
    mutation = check_in_mutation(1, poi, ago_s=three_days)
    mutation["created_at"] = (datetime.now(UTC) - timedelta(seconds=three_days - 5)).isoformat()
    [result] = await push(client, bd, [mutation])
    visit = result["result"]
    assert visit["check_in"]["verdict"]["status"] == "verified", visit["check_in"]["verdict"]
    checked_in = datetime.fromisoformat(visit["checked_in_at"])
    assert abs((datetime.now(UTC) - checked_in).total_seconds() - three_days) < 120


async def test_a_phone_edit_against_a_newer_server_edit_follows_the_rules(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    [item] = await assign(client, ops, await create_campaign(client, ops), [(await factory.poi(tenant), bd.id)])
    cursor = (await pull_all(client, bd))["cursor"]
    # The server changes the notes (the BD on the web, say: another device) after the phone's pull...
    web = await factory.login(bd.username, device_id="web-browser")
    online = await client.patch(
        f"/v1/work-items/{item}",
        json={"notes": "Called: owner away"},
        headers={"Authorization": f"Bearer {web['access_token']}"},
    )
    assert online.status_code == 200
    # ...and the phone, offline, had edited them too.
    mutation = {
        "id": 1,
        "name": "task.update",
        "created_at": datetime.now(UTC).isoformat(),
        "args": {"id": item, "notes": "Visited: left brochure", "answers": {"competitor": "a"}},
    }
    [result] = await push(client, bd, [mutation], cursor=cursor)
    assert result["status"] == "applied"
    updated = result["result"]["work_item"]
    assert updated["notes"] == "Called: owner away\nVisited: left brochure"
    assert {"field": "notes", "resolution": "merged"} in result["result"]["conflicts"]
    # The phone learns the outcome on its next pull.
    synced = await pull_all(client, bd, cursor)
    assert synced["records"]["work_items"][item]["notes"] == updated["notes"]


async def test_push_bad_input(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    now = datetime.now(UTC).isoformat()
    for body in (
        {"mutations": []},
        {"client_id": "p", "mutations": [{"id": 1, "name": "x", "args": [], "created_at": now}]},
        {"client_id": "p", "mutations": [{"id": 1, "name": "x", "args": {}, "created_at": "now"}]},
        {"client_id": "p", "mutations": [{"id": 1, "name": "x", "args": {}}]},
    ):
        response = await client.post("/v1/sync/push", json=body, headers=bd.headers)
        assert response.status_code == 422, body
    assert (await client.post("/v1/sync/push", json={"client_id": "p", "mutations": []})).status_code == 401
    # A well-formed mutation with a value the contract refuses is refused alone: the queue is not wedged by it.
    body = {"client_id": "p", "mutations": [{"id": 0, "name": "x", "args": {}, "created_at": now}]}
    response = await client.post("/v1/sync/push", json=body, headers=bd.headers)
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "rejected"


async def test_a_large_first_sync_is_compressed_for_phones_that_ask(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    for i in range(60):
        await factory.poi(tenant, holder_id=bd.id, name=f"Shop {i}")
    response = await client.post("/v1/sync/pull", json={}, headers={**bd.headers, "Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["changes"]["pois"]["upserted"]) == 60  # the client decodes it transparently
