"""The merchant view (GET /v1/pois/{id}) and adding a merchant (POST /v1/pois)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from geo.crs import wgs84_to_gcj02
from mobile_contract.auth import Role
from tests.factories import Factory, fix

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)


def new_poi(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "Lao Wang Noodle House",
        "category": "restaurant",
        "address": "12 Yunnan Rd, Huangpu",
        "phone": "+86 21 6328 0000",
        "location": {"lat": SHOP[0], "lon": SHOP[1]},
        "contacts": [{"name": "Wang Jun", "role": "owner", "phone": "+86 139 0000 0000"}],
    }
    body.update(overrides)
    return body


async def test_merchant_view_shows_contacts_and_recent_visits_in_scope(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    bd = await factory.user(tenant, team_id=team)
    other_bd = await factory.user(tenant, team_id=team)
    supervisor = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    created = await client.post("/v1/pois", json=new_poi(), headers=bd.headers)
    assert created.status_code == 201, created.text
    poi_id = created.json()["id"]
    for user in (bd, other_bd):
        visit = {"id": str(uuid.uuid4()), "poi_id": poi_id, "fix": fix(*SHOP)}
        assert (await client.post("/v1/visits", json=visit, headers=user.headers)).status_code == 201
    mine = (await client.get(f"/v1/pois/{poi_id}", headers=bd.headers)).json()
    assert mine["name"] == "Lao Wang Noodle House"
    assert mine["contacts"][0]["name"] == "Wang Jun"
    assert mine["holder"]["user_id"] == str(bd.id)
    assert mine["geofence"] == {"radius_m": 100.0, "polygon": None}
    assert [v["user_id"] for v in mine["recent_visits"]] == [str(bd.id)]  # a BD's scope is their own work
    assert mine["recent_visits"][0]["verdict"]["status"] == "verified"
    seen_by_supervisor = (await client.get(f"/v1/pois/{poi_id}", headers=supervisor.headers)).json()
    assert {v["user_id"] for v in seen_by_supervisor["recent_visits"]} == {str(bd.id), str(other_bd.id)}


async def test_another_tenants_merchant_is_not_found(factory: Factory, client: Client) -> None:
    mine, theirs = await factory.tenant(), await factory.tenant()
    bd = await factory.user(mine)
    foreign = await factory.poi(theirs)
    for poi_id in (foreign, uuid.uuid4()):
        response = await client.get(f"/v1/pois/{poi_id}", headers=bd.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert (await client.get("/v1/pois/not-a-uuid", headers=bd.headers)).status_code in (404, 422)


async def test_create_is_idempotent_on_the_client_id(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    body = new_poi()
    first = await client.post("/v1/pois", json=body, headers=bd.headers)
    again = await client.post("/v1/pois", json=body, headers=bd.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    changed = await client.post("/v1/pois", json={**body, "name": "Another name"}, headers=bd.headers)
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_conflict"
    assert await factory.count("SELECT count(*) FROM poi_contacts WHERE poi_id = :id", id=uuid.UUID(body["id"])) == 1
    assert await factory.count("SELECT count(*) FROM pois WHERE name = 'Another name'") == 0


async def test_a_similar_name_nearby_is_a_possible_duplicate_until_confirmed(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    existing = await factory.poi(tenant, SHOP[0] + 0.0002, SHOP[1], name="Lao Wang Noodles")  # ~22 m away
    body = new_poi(name="Laowang Noodle House")
    refused = await client.post("/v1/pois", json=body, headers=bd.headers)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "possible_duplicate"
    assert problem["candidates"][0]["id"] == str(existing)
    assert 15 < problem["candidates"][0]["distance_m"] < 30
    assert await factory.count("SELECT count(*) FROM pois WHERE id = :id", id=uuid.UUID(body["id"])) == 0
    confirmed = await client.post("/v1/pois", json={**body, "confirm_new": True}, headers=bd.headers)
    assert confirmed.status_code == 201
    # The same name far away, or another tenant's merchant next door, is no duplicate.
    far = await client.post(
        "/v1/pois",
        json=new_poi(name="Lao Wang Noodles", location={"lat": SHOP[0] + 0.01, "lon": SHOP[1]}),
        headers=bd.headers,
    )
    assert far.status_code == 201
    other = await factory.tenant()
    other_bd = await factory.user(other)
    assert (
        await client.post("/v1/pois", json=new_poi(name="Lao Wang Noodles"), headers=other_bd.headers)
    ).status_code == 201


async def test_create_in_gcj02_is_stored_in_wgs84(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    lat, lon = wgs84_to_gcj02(*SHOP)
    body = new_poi(location={"lat": lat, "lon": lon})
    response = await client.post("/v1/pois", json=body, params={"crs": "gcj02"}, headers=bd.headers)
    assert response.status_code == 201
    assert abs(response.json()["location"]["lat"] - lat) < 1e-6
    wgs = (await client.get(f"/v1/pois/{body['id']}", headers=bd.headers)).json()["location"]
    assert abs(wgs["lat"] - SHOP[0]) < 1e-6
    assert abs(wgs["lon"] - SHOP[1]) < 1e-6


async def test_create_bad_input(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    bad = [
        new_poi(id="not-a-uuid"),
        new_poi(name=""),
        new_poi(name="x" * 201),
        new_poi(category="Fancy Category"),
        new_poi(location={"lat": 95, "lon": 0}),
        new_poi(location={"lat": 1}),
        new_poi(location={"lat": 1, "lon": 2, "alt": 3}),
        new_poi(phone="call me"),
        new_poi(unexpected=True),
        new_poi(contacts=[{"name": "x"}] * 21),
    ]
    for body in bad:
        response = await client.post("/v1/pois", json=body, headers=bd.headers)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_failed"
        assert response.json()["errors"], body
    overflow = json.dumps(new_poi(location={"lat": "@", "lon": 0})).replace('"@"', "1e400")
    response = await client.post(
        "/v1/pois", content=overflow.encode(), headers={**bd.headers, "content-type": "application/json"}
    )
    assert response.status_code == 422
    huge = await client.post(
        "/v1/pois",
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
        headers={**bd.headers, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["code"] == "body_too_large"
    assert await factory.count("SELECT count(*) FROM pois WHERE tenant_id = :t", t=tenant) == 0


async def test_another_tenants_id_is_a_new_merchant_and_theirs_stays(factory: Factory, client: Client) -> None:
    # Ids are keyed within the tenant: another tenant's id is as free as a fresh one (no existence oracle).
    theirs = await factory.tenant()
    foreign = await factory.poi(theirs, name="Their shop")
    mine = await factory.tenant()
    bd = await factory.user(mine)
    response = await client.post("/v1/pois", json=new_poi(id=str(foreign)), headers=bd.headers)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == str(foreign)
    assert await factory.count("SELECT count(*) FROM pois WHERE id = :id AND name = 'Their shop'", id=foreign) == 1
    assert await factory.count("SELECT count(*) FROM pois WHERE id = :id AND tenant_id = :t", id=foreign, t=mine) == 1


async def test_technicians_cannot_add_merchants(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    response = await client.post("/v1/pois", json=new_poi(), headers=tech.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_concurrent_retries_of_one_create_store_one_merchant(factory: Factory, client: Client) -> None:
    import asyncio

    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    body = new_poi()
    responses = await asyncio.gather(*(client.post("/v1/pois", json=body, headers=bd.headers) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 200, 201]
    assert await factory.count("SELECT count(*) FROM pois WHERE id = :id", id=uuid.UUID(body["id"])) == 1
