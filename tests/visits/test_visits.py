"""Check-in and check-out: verdicts, evidence kept even when rejected, idempotency, scope, bad input."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from geo.crs import wgs84_to_gcj02
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser, fix

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)
METRE_LAT = 1 / 111_195.0


async def check_in(client: Client, user: FieldUser, poi_id: uuid.UUID, the_fix: dict[str, Any], **extra: Any) -> Any:
    body = {"id": str(uuid.uuid4()), "poi_id": str(poi_id), "fix": the_fix, **extra}
    return await client.post("/v1/visits", json=body, headers=user.headers)


async def test_check_in_at_the_shop_is_verified(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    response = await check_in(client, bd, poi, fix(*SHOP, accuracy_m=8))
    assert response.status_code == 201, response.text
    visit = response.json()
    assert visit["status"] == "open"
    assert visit["check_in"]["verdict"] == {"status": "verified", "confidence": 1.0, "distance_m": 0.0, "reasons": []}
    assert visit["check_out"] is None


async def test_check_in_800_m_away_is_rejected_but_kept(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    response = await check_in(client, bd, poi, fix(SHOP[0] + 800 * METRE_LAT, SHOP[1], accuracy_m=10))
    assert response.status_code == 201
    verdict = response.json()["check_in"]["verdict"]
    assert verdict["status"] == "rejected"
    assert verdict["reasons"] == ["outside_geofence"]
    assert 795 < verdict["distance_m"] < 805
    stored = await factory.count(
        "SELECT count(*) FROM visits WHERE id = :id AND check_in_status = 'rejected'",
        id=uuid.UUID(response.json()["id"]),
    )
    assert stored == 1


async def test_a_coarse_fix_on_the_edge_is_uncertain(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP, radius_m=50)
    response = await check_in(client, bd, poi, fix(SHOP[0] + 50 * METRE_LAT, SHOP[1], accuracy_m=40))
    verdict = response.json()["check_in"]["verdict"]
    assert verdict["status"] == "uncertain"
    assert 0.3 <= verdict["confidence"] < 0.8
    assert "outside_geofence" in verdict["reasons"]


async def test_mocked_gps_is_rejected(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    verdict = (await check_in(client, bd, poi, fix(*SHOP, is_mock=True))).json()["check_in"]["verdict"]
    assert verdict["status"] == "rejected"
    assert verdict["reasons"] == ["mock_location"]


async def test_impossible_speed_since_the_previous_fix(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    here = await factory.poi(tenant, *SHOP)
    far = await factory.poi(tenant, SHOP[0] + 0.3, SHOP[1])  # ~33 km north
    first = await check_in(client, bd, here, fix(*SHOP, ago_s=60))
    assert first.json()["check_in"]["verdict"]["status"] == "verified"
    second = await check_in(client, bd, far, fix(SHOP[0] + 0.3, SHOP[1], ago_s=1))
    verdict = second.json()["check_in"]["verdict"]
    assert verdict["status"] == "rejected"
    assert "impossible_speed" in verdict["reasons"]
    # A mocked fix is never used as the previous position of a speed check.
    other = await factory.user(tenant)
    await check_in(client, other, far, fix(SHOP[0] + 0.3, SHOP[1], ago_s=30, is_mock=True))
    honest = (await check_in(client, other, here, fix(*SHOP, ago_s=1))).json()["check_in"]["verdict"]
    assert honest["status"] == "verified"


async def test_stale_future_and_skewed_fixes(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    poi = await factory.poi(tenant, *SHOP)
    stale_user = await factory.user(tenant)
    stale = (await check_in(client, stale_user, poi, fix(*SHOP, ago_s=600))).json()["check_in"]["verdict"]
    assert stale["status"] == "uncertain"
    assert stale["reasons"] == ["stale_fix"]

    future_user = await factory.user(tenant)
    future_fix = fix(*SHOP)
    future_fix["captured_at"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    del future_fix["age_ms"]
    future = (await check_in(client, future_user, poi, future_fix)).json()["check_in"]["verdict"]
    assert future["status"] == "rejected"
    assert "future_fix" in future["reasons"]

    # The phone's clock is an hour off, but its monotonic age says the fix is 3 s old: we trust the age.
    skew_user = await factory.user(tenant)
    skewed_fix = fix(*SHOP, ago_s=3)
    skewed_fix["captured_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = await check_in(client, skew_user, poi, skewed_fix)
    skewed = response.json()["check_in"]
    assert skewed["verdict"]["status"] == "uncertain"
    assert skewed["verdict"]["reasons"] == ["clock_skew"]
    trusted = datetime.fromisoformat(skewed["trusted_at"])
    assert abs((datetime.now(UTC) - trusted).total_seconds()) < 60


async def test_check_in_is_idempotent_on_the_client_id(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    body = {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(*SHOP)}
    first = await client.post("/v1/visits", json=body, headers=bd.headers)
    again = await client.post("/v1/visits", json=body, headers=bd.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    different = await client.post("/v1/visits", json={**body, "note": "changed"}, headers=bd.headers)
    assert different.status_code == 409
    assert different.json()["code"] == "idempotency_conflict"
    # Someone else replaying the id (same tenant) cannot read or overwrite the visit.
    colleague = await factory.user(tenant)
    stolen = await client.post("/v1/visits", json=body, headers=colleague.headers)
    assert stolen.status_code == 409
    assert await factory.count("SELECT count(*) FROM visits WHERE id = :id", id=uuid.UUID(body["id"])) == 1


async def test_check_out_with_its_own_verdict_and_retries(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    visit = (await check_in(client, bd, poi, fix(*SHOP, ago_s=30))).json()
    body = {"fix": fix(SHOP[0] + 400 * METRE_LAT, SHOP[1]), "note": "signed up for the recharge offer"}
    closed = await client.post(f"/v1/visits/{visit['id']}/checkout", json=body, headers=bd.headers)
    assert closed.status_code == 200, closed.text
    result = closed.json()
    assert result["status"] == "closed"
    assert result["check_out"]["verdict"]["status"] == "rejected"  # left the shop before checking out
    assert result["check_in"]["verdict"]["status"] == "verified"
    assert result["note"] == "signed up for the recharge offer"
    retried = await client.post(f"/v1/visits/{visit['id']}/checkout", json=body, headers=bd.headers)
    assert retried.status_code == 200
    assert retried.json() == result
    other = await client.post(f"/v1/visits/{visit['id']}/checkout", json={"fix": fix(*SHOP)}, headers=bd.headers)
    assert other.status_code == 409
    assert other.json()["code"] == "visit_already_closed"


async def test_other_people_and_tenants_cannot_touch_a_visit(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    visit = (await check_in(client, bd, poi, fix(*SHOP))).json()
    colleague = await factory.user(tenant)
    foreign_tenant = await factory.tenant()
    foreigner = await factory.user(foreign_tenant, Role.ADMIN)
    foreign_poi = await factory.poi(foreign_tenant, *SHOP)
    for user in (colleague, foreigner):
        response = await client.post(
            f"/v1/visits/{visit['id']}/checkout", json={"fix": fix(*SHOP)}, headers=user.headers
        )
        assert response.status_code == 404
        assert (await client.get(f"/v1/visits/{visit['id']}", headers=user.headers)).status_code == 404
    # Checking in at another tenant's merchant: not found, and nothing stored.
    response = await check_in(client, bd, foreign_poi, fix(*SHOP))
    assert response.status_code == 404
    assert await factory.count("SELECT count(*) FROM visits WHERE poi_id = :p", p=foreign_poi) == 0
    assert (await client.get(f"/v1/visits/{visit['id']}", headers=bd.headers)).json()["status"] == "open"


async def test_list_follows_the_data_scope(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    north = await factory.team(tenant, "North")
    north_east = await factory.team(tenant, "North-East", parent=north)
    south = await factory.team(tenant, "South")
    bd_north = await factory.user(tenant, team_id=north)
    bd_north_east = await factory.user(tenant, team_id=north_east)
    bd_south = await factory.user(tenant, team_id=south)
    sup_team = await factory.user(tenant, Role.SUPERVISOR, team_id=north, scope="team")
    sup_below = await factory.user(tenant, Role.SUPERVISOR, team_id=north)
    ops = await factory.user(tenant, Role.OPS)
    poi = await factory.poi(tenant, *SHOP)
    for user in (bd_north, bd_north_east, bd_south):
        await check_in(client, user, poi, fix(*SHOP))

    async def visible(user: FieldUser) -> set[str]:
        response = await client.get("/v1/visits", headers=user.headers)
        assert response.status_code == 200, response.text
        return {v["user_id"] for v in response.json()["items"]}

    assert await visible(bd_north) == {str(bd_north.id)}
    assert await visible(sup_team) == {str(bd_north.id)}
    assert await visible(sup_below) == {str(bd_north.id), str(bd_north_east.id)}
    assert await visible(ops) == {str(bd_north.id), str(bd_north_east.id), str(bd_south.id)}


async def test_list_pages_with_a_cursor(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    ids = {(await check_in(client, bd, poi, fix(*SHOP))).json()["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/visits", params=params, headers=bd.headers)).json()
        seen += [v["id"] for v in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5
    assert set(seen) == ids
    bad = await client.get("/v1/visits", params={"cursor": "%%%"}, headers=bd.headers)
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"


async def test_check_in_with_gcj02_coordinates(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    lat, lon = wgs84_to_gcj02(*SHOP)
    body = {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(lat, lon)}
    response = await client.post("/v1/visits", json=body, params={"crs": "gcj02"}, headers=bd.headers)
    visit = response.json()
    assert visit["check_in"]["verdict"]["status"] == "verified"  # ~500 m apart if the offset were ignored
    assert abs(visit["check_in"]["location"]["lat"] - lat) < 1e-6


async def test_check_in_bad_input_stores_nothing(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    good = fix(*SHOP)
    no_accuracy = {k: v for k, v in good.items() if k != "accuracy_m"}
    bad_fixes = [
        no_accuracy,
        {**good, "lat": 91},
        {**good, "lon": "east"},
        {**good, "accuracy_m": -1},
        {**good, "captured_at": "yesterday"},
        {**good, "captured_at": "2026-11-24T10:00:00"},  # no offset: ambiguous
        {**good, "provider": "satellite-phone"},
        {**good, "age_ms": -5},
        {**good, "is_mock": "no"},
        {**good, "teleport": True},
    ]
    for bad_fix in bad_fixes:
        response = await client.post(
            "/v1/visits", json={"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": bad_fix}, headers=bd.headers
        )
        assert response.status_code == 422, bad_fix
        assert response.json()["code"] == "validation_failed"
    # JSON has no NaN or infinity; 1e400 overflows a double: all must be refused, not stored as inf.
    for raw_number in ("1e400", "NaN", "Infinity", "-1e999"):
        raw = json.dumps({"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": {**good, "accuracy_m": "@"}})
        response = await client.post(
            "/v1/visits",
            content=raw.replace('"@"', raw_number).encode(),
            headers={**bd.headers, "content-type": "application/json"},
        )
        assert response.status_code == 422, raw_number
    for body in ({"poi_id": str(poi), "fix": good}, {"id": "x", "poi_id": str(poi), "fix": good}, []):
        assert (await client.post("/v1/visits", json=body, headers=bd.headers)).status_code == 422
    missing = await check_in(client, bd, uuid.uuid4(), good)
    assert missing.status_code == 404
    assert await factory.count("SELECT count(*) FROM visits WHERE tenant_id = :t", t=tenant) == 0


async def test_tenant_policy_tunes_the_verdict(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    policy = await client.patch(
        "/v1/tenant/verification-policy", json={"default_geofence_radius_m": 1000}, headers=admin.headers
    )
    assert policy.status_code == 200, policy.text
    assert policy.json()["default_geofence_radius_m"] == 1000
    verdict = (await check_in(client, bd, poi, fix(SHOP[0] + 800 * METRE_LAT, SHOP[1]))).json()["check_in"]["verdict"]
    assert verdict["status"] == "verified"
    forbidden = await client.patch("/v1/tenant/verification-policy", json={"max_speed_mps": 5}, headers=bd.headers)
    assert forbidden.status_code == 403
    for bad in (
        {"max_speed_mps": -1},
        {"verified_min_confidence": 2},
        {"uncertain_min_confidence": 0.95},
        {"nonsense": 1},
        {"stale_after_s": "soon"},
    ):
        response = await client.patch("/v1/tenant/verification-policy", json=bad, headers=admin.headers)
        assert response.status_code == 422, bad
        assert response.json()["code"] == "validation_failed"
    current = await client.get("/v1/tenant/verification-policy", headers=bd.headers)
    assert current.json()["max_speed_mps"] == 70.0
    assert current.json()["default_geofence_radius_m"] == 1000


async def test_concurrent_retries_of_one_check_in_store_one_visit(factory: Factory, client: Client) -> None:
    import asyncio

    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    body = {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(*SHOP)}
    responses = await asyncio.gather(*(client.post("/v1/visits", json=body, headers=bd.headers) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 200, 201]
    assert len({r.json()["check_in"]["received_at"] for r in responses}) == 1  # all answer with the stored visit
    assert await factory.count("SELECT count(*) FROM visits WHERE id = :id", id=uuid.UUID(body["id"])) == 1
