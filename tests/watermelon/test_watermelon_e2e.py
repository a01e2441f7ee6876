"""The real WatermelonDB client (0.28, LokiJS adapter, in Node) syncing with the real server over HTTP.

Operations work through the in-process test client; the phones are `driver.mjs` processes calling
`synchronize()` against the app served by uvicorn (`live_server`), on the same database. Between steps the test
changes things on the server, so each sync meets what a phone really meets: new work, its own offline edits,
edits made elsewhere, work taken away.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.live_server import LiveServer
from tests.watermelon.harness import Phone, Rows, StartPhone

Client = AsyncTestClient[Litestar]

SHOP_1 = (31.2304, 121.4737)
SHOP_2 = (31.2404, 121.4837)  # ~1.5 km from shop 1
METRES_PER_DEGREE_LAT = 111_320.0
FAR_FROM_SHOP_2 = (SHOP_2[0] + 800 / METRES_PER_DEGREE_LAT, SHOP_2[1])  # 800 m north: outside any geofence


# -- the server side: every call operations (or a user's online session) makes, in one place ------------------


@dataclass
class Server:
    """Online API calls, as the console and the online app make them. Bodies per mobile_contract/tasks.py."""

    client: Client

    async def campaign_with_targets(self, ops: FieldUser, targets: list[tuple[uuid.UUID, uuid.UUID]]) -> list[str]:
        """A campaign, and a work item per (poi, assignee): the work item ids, in order."""
        now = datetime.now(UTC)
        body = {
            "type": "recharge_push",
            "title": "Winter recharge push",
            "instructions": "Offer the 10% bonus on recharges over 500.",
            "goal": {"kind": "recharge_amount", "target": 500},
            "form": {
                "version": 1,
                "fields": [{"key": "owner_present", "label": "Owner present?", "type": "boolean"}],
            },
            "offer": {"title": "10% bonus", "description": "On recharges over 500 CNY"},
            "starts_at": (now - timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=14)).isoformat(),
            "time_zone": "Asia/Shanghai",
        }
        created = await self.client.post("/v1/campaigns", json=body, headers=ops.headers)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        added = await self.client.post(
            f"/v1/campaigns/{campaign_id}/targets",
            json={"targets": [{"poi_id": str(poi), "assignee_id": str(user)} for poi, user in targets]},
            headers=ops.headers,
        )
        assert added.status_code == 200, added.text
        item_ids: list[str] = added.json()["created"]
        assert len(item_ids) == len(targets), added.text
        return item_ids

    async def edit_notes(self, editor: FieldUser, item_id: str, notes: str) -> None:
        """An online edit of a work item's notes (only its assignee may edit them: here from the web console)."""
        response = await self.client.patch(f"/v1/work-items/{item_id}", json={"notes": notes}, headers=editor.headers)
        assert response.status_code == 200, response.text

    async def reassign(self, ops: FieldUser, item_id: str, assignee: FieldUser) -> None:
        response = await self.client.patch(
            f"/v1/work-items/{item_id}", json={"assignee_id": str(assignee.id)}, headers=ops.headers
        )
        assert response.status_code == 200, response.text

    async def refreshed_access_token(self, factory: Factory, user: FieldUser) -> str:
        """What the app does when its access token runs out: sign-in tokens, then a refresh."""
        tokens = await factory.login(user.username, device_id="phone")
        response = await self.client.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"], "device_id": "phone"}
        )
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token

    async def work_item(self, viewer: FieldUser, item_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/work-items/{item_id}", headers=viewer.headers)
        assert response.status_code == 200, response.text
        item: dict[str, Any] = response.json()
        return item


# -- what a phone writes offline ---------------------------------------------------------------------------------


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def check_in_row(
    visit_id: str, poi_id: uuid.UUID, user: FieldUser, at: datetime, lat: float, lon: float
) -> dict[str, Any]:
    """A `visits` row as the app creates it on checking in offline: the verdict columns are left for the server."""
    return {
        "id": visit_id,
        "poi_id": str(poi_id),
        "user_id": str(user.id),
        "status": "open",
        "checked_in_at": ms(at),
        "in_lat": lat,
        "in_lon": lon,
        "in_accuracy_m": 8.0,
        "in_captured_at": ms(at),
        "in_is_mock": False,
    }


def check_out_columns(at: datetime, lat: float, lon: float) -> dict[str, Any]:
    """What the app writes on a visit row when checking out offline."""
    return {
        "status": "closed",
        "checked_out_at": ms(at),
        "out_lat": lat,
        "out_lon": lon,
        "out_accuracy_m": 8.0,
        "out_captured_at": ms(at),
        "out_is_mock": False,
    }


def token_of(user: FieldUser) -> str:
    return user.headers["Authorization"].removeprefix("Bearer ")


def unsynced(rows: Rows) -> list[tuple[str, str, str, str]]:
    return [
        (table, row_id, row["_status"], row["_changed"])
        for table, by_id in rows.items()
        for row_id, row in by_id.items()
        if row["_status"] != "synced" or row["_changed"]
    ]


async def scalar(factory: Factory, sql: str, **params: Any) -> Any:
    async with factory.database.sessions() as session:
        return await session.scalar(text(sql), params)


# -- the scenario ------------------------------------------------------------------------------------------------


async def test_watermelondb_client_syncs_with_the_server(
    factory: Factory, client: Client, phones: StartPhone, live_server: LiveServer
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd_a = await factory.user(tenant, name="BD A")
    bd_b = await factory.user(tenant, name="BD B")
    poi_1 = await factory.poi(tenant, *SHOP_1, name="Noodle House")
    poi_2 = await factory.poi(tenant, *SHOP_2, name="Tea Corner")
    server = Server(client)

    # 1. Operations target two merchants for A; A's phone syncs from scratch and gets both, whole.
    item_1, item_2 = await server.campaign_with_targets(ops, [(poi_1, bd_a.id), (poi_2, bd_a.id)])
    phone_a: Phone = await phones("phone-a", token_of(bd_a))
    await phone_a.sync()
    rows = await phone_a.dump()
    assert set(rows["work_items"]) == {item_1, item_2}
    assert set(rows["pois"]) == {str(poi_1), str(poi_2)}
    assert rows["visits"] == {}
    first = rows["work_items"][item_1]
    assert first["status"] == "assigned"
    assert first["poi_id"] == str(poi_1)
    assert first["assignee_id"] == str(bd_a.id)
    assert first["campaign_title"] == "Winter recharge push"
    assert first["campaign_type"] == "recharge_push"
    assert first["time_zone"] == "Asia/Shanghai"
    assert first["starts_at"] < first["ends_at"]
    assert '"recharge_amount"' in first["campaign_goal"]
    assert '"owner_present"' in first["campaign_form"]
    assert rows["pois"][str(poi_1)]["name"] == "Noodle House"
    assert math.isclose(rows["pois"][str(poi_1)]["lat"], SHOP_1[0], abs_tol=1e-6)
    assert math.isclose(rows["pois"][str(poi_1)]["lon"], SHOP_1[1], abs_tol=1e-6)
    assert unsynced(rows) == []

    # 2. Offline: A checks in at shop 1 and writes a note on its work item; a second check-in at shop 2 is
    #    800 m away. The sync stores both visits (the far one rejected: evidence is kept) and starts item 1.
    #    (The times make a believable trip: the server checks the travel speed between a user's fixes.)
    now = datetime.now(UTC)
    near_visit, far_visit = str(uuid.uuid4()), str(uuid.uuid4())
    await phone_a.create("visits", check_in_row(near_visit, poi_1, bd_a, now - timedelta(minutes=5), *SHOP_1))
    await phone_a.update("work_items", item_1, {"notes": "Owner away until 3pm; manager keen on the bonus."})
    await phone_a.create("visits", check_in_row(far_visit, poi_2, bd_a, now - timedelta(minutes=8), *FAR_FROM_SHOP_2))
    pending = await phone_a.dump()
    assert pending["visits"][near_visit]["_status"] == "created"
    assert pending["work_items"][item_1]["_status"] == "updated"
    assert pending["work_items"][item_1]["_changed"] == "notes"

    await phone_a.sync()  # pull, then push: the verdicts come back on the next pull
    await phone_a.sync()
    assert await factory.count(
        "SELECT count(*) FROM visits WHERE id = :id AND user_id = :user AND check_in_status = 'verified'",
        id=uuid.UUID(near_visit),
        user=bd_a.id,
    )
    assert await factory.count(
        "SELECT count(*) FROM visits WHERE id = :id AND check_in_status = 'rejected' "
        "AND 'outside_geofence' = ANY(check_in_reasons)",
        id=uuid.UUID(far_visit),
    )
    assert await scalar(factory, "SELECT status FROM work_items WHERE id = :id", id=uuid.UUID(item_1)) == "in_progress"
    assert (
        await scalar(factory, "SELECT notes FROM work_items WHERE id = :id", id=uuid.UUID(item_1))
        == "Owner away until 3pm; manager keen on the bonus."
    )
    rows = await phone_a.dump()
    near, far = rows["visits"][near_visit], rows["visits"][far_visit]
    assert near["in_status"] == "verified", near
    assert far["in_status"] == "rejected", far
    assert "outside_geofence" in far["in_reasons"]
    assert 700 < far["in_distance_m"] < 900, far
    assert near["status"] == far["status"] == "open"
    assert rows["work_items"][item_1]["status"] == "in_progress"
    assert rows["work_items"][item_1]["notes"] == "Owner away until 3pm; manager keen on the bonus."
    assert unsynced(rows) == []

    # 3. Item 2's notes edited on both sides: online (A at the web console) and offline on the phone. The
    #    server's rule keeps both: its text, a new line, the phone's. Phone and server then agree.
    #    Meanwhile A checks out of shop 1 offline: an update of the visit row.
    server_text, phone_text = "Console: call the owner before going.", "Phone: shop closed on Mondays."
    console = await factory.login(bd_a.username, device_id="web-console")  # another device than the phone
    await server.edit_notes(
        dataclasses.replace(bd_a, headers={"Authorization": f"Bearer {console['access_token']}"}), item_2, server_text
    )
    await phone_a.update("work_items", item_2, {"notes": phone_text})
    await phone_a.update("visits", near_visit, check_out_columns(now - timedelta(seconds=30), *SHOP_1))
    await phone_a.sync()
    await phone_a.sync()
    assert await factory.count(
        "SELECT count(*) FROM visits WHERE id = :id AND status = 'closed' AND check_out_status = 'verified'",
        id=uuid.UUID(near_visit),
    )
    merged = await scalar(factory, "SELECT notes FROM work_items WHERE id = :id", id=uuid.UUID(item_2))
    assert server_text in merged, merged
    assert phone_text in merged, merged
    assert merged.index(server_text) < merged.index(phone_text), merged
    rows = await phone_a.dump()
    assert rows["work_items"][item_2]["notes"] == merged
    checked_out = rows["visits"][near_visit]
    assert checked_out["status"] == "closed"
    assert checked_out["out_status"] == "verified", checked_out
    assert checked_out["checked_out_at"] == ms(now - timedelta(seconds=30))
    assert (await server.work_item(bd_a, item_2))["notes"] == merged
    assert unsynced(rows) == []
    before_reassign = rows["work_items"][item_2]

    # 4. Operations reassign item 2 to B. A's phone loses it, and shop 2 with it (A has no other reason to see
    #    that merchant); A's own visits stay. B's phone gets the item whole, and the merchant.
    #    WatermelonDB applies deletions before it pushes, so the item first comes marked gone (`removed_at`) and
    #    is deleted later, once anything the phone still held for it has been pushed: here the phone has nothing
    #    to push, so after one more pull (a push that died would have waited the same way).
    await server.reassign(ops, item_2, bd_b)
    assert await scalar(factory, "SELECT assignee_id FROM work_items WHERE id = :id", id=uuid.UUID(item_2)) == bd_b.id
    await phone_a.sync()
    marked = (await phone_a.dump())["work_items"][item_2]
    assert marked["removed_at"] is not None, marked
    await phone_a.sync()
    assert (await phone_a.dump())["work_items"][item_2]["removed_at"] is not None
    await phone_a.sync()
    rows_a = await phone_a.dump()
    assert set(rows_a["work_items"]) == {item_1}
    assert set(rows_a["pois"]) == {str(poi_1)}
    assert set(rows_a["visits"]) == {near_visit, far_visit}

    phone_b: Phone = await phones("phone-b", token_of(bd_b))
    await phone_b.sync()
    rows_b = await phone_b.dump()
    assert set(rows_b["work_items"]) == {item_2}
    assert set(rows_b["pois"]) == {str(poi_2)}
    assert rows_b["visits"] == {}
    received = rows_b["work_items"][item_2]
    assert received["assignee_id"] == str(bd_b.id)
    assert received["notes"] == merged
    for column, value in before_reassign.items():
        if column not in ("assignee_id", "updated_at"):
            assert received[column] == value, (column, received[column], value)
    assert rows_b["pois"][str(poi_2)]["name"] == "Tea Corner"

    # 5. Nothing new: syncing again changes nothing anywhere, and nothing is left unsynced.
    #    A's phone refreshed its access token meanwhile: the next sync uses the new one.
    state_sql = (
        "SELECT (SELECT count(*) FROM visits WHERE tenant_id = :t), (SELECT max(updated_at) FROM visits "
        "WHERE tenant_id = :t), (SELECT max(updated_at) FROM work_items WHERE tenant_id = :t), "
        "(SELECT count(*) FROM sync_mutations WHERE tenant_id = :t)"
    )
    async with factory.database.sessions() as session:
        before = (await session.execute(text(state_sql), {"t": tenant})).one()
    await phone_a.set_token(await server.refreshed_access_token(factory, bd_a))
    await phone_a.sync()
    await phone_b.sync()
    async with factory.database.sessions() as session:
        after = (await session.execute(text(state_sql), {"t": tenant})).one()
    assert after == before
    assert before[0] == 2  # both check-ins, the rejected one included
    assert await phone_a.dump() == rows_a
    assert await phone_b.dump() == rows_b
    assert unsynced(rows_a) == []
    assert unsynced(rows_b) == []


async def test_a_garbage_last_pulled_at_is_a_problem_with_a_code(factory: Factory, live_server: LiveServer) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    async with httpx.AsyncClient(base_url=live_server.url, headers=bd.headers, timeout=10) as http:
        pulled = await http.get("/v1/sync/watermelon", params={"last_pulled_at": "yesterday", "schema_version": 1})
        pushed = await http.post("/v1/sync/watermelon", params={"last_pulled_at": "-1"}, json={"changes": {}})
    # A push never fails over its base (a refused push is retried by WatermelonDB forever): it counts as none.
    assert pushed.status_code == 200, pushed.text
    for response in (pulled,):
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json"), response.headers
        problem = response.json()
        assert problem["code"] == "invalid_cursor", problem
        assert problem["status"] == response.status_code
