"""Territories: CRUD for ops and admins, validated polygons (422), the caller's crs, another tenant's ids (404),
and `territory_of`: a merchant belongs by its location, to the smallest territory covering it."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.assignment.territories import polygon_ewkt
from backend.errors import DomainError
from geo.crs import Crs, from_wgs84
from mobile_contract.auth import Role
from tests.factories import Factory
from tests.leads.helpers import Client

# A district of Shanghai (~2 km square) and a business circle inside it.
DISTRICT = [(31.22, 121.46), (31.22, 121.48), (31.24, 121.48), (31.24, 121.46)]
CIRCLE = [(31.228, 121.468), (31.228, 121.472), (31.232, 121.472), (31.232, 121.468)]


def ring(points: list[tuple[float, float]]) -> list[dict[str, float]]:
    return [{"lat": lat, "lon": lon} for lat, lon in points]


async def test_ops_draws_a_team_territory_and_reads_it_back(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant, "Jing'an")
    ops = await factory.user(tenant, Role.OPS)
    response = await client.post(
        "/v1/territories", json={"name": "Jing'an", "team_id": str(team), "ring": ring(DISTRICT)}, headers=ops.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["team_id"] == str(team)
    assert body["ring"][0] == body["ring"][-1]  # closed
    assert {(p["lat"], p["lon"]) for p in body["ring"]} == set(DISTRICT)
    listed = await client.get("/v1/territories", headers=ops.headers)
    assert [t["id"] for t in listed.json()] == [body["id"]]
    renamed = await client.put(
        f"/v1/territories/{body['id']}", json={"name": "Jing'an West", "ring": ring(CIRCLE)}, headers=ops.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Jing'an West"
    assert renamed.json()["team_id"] is None
    gone = await client.delete(f"/v1/territories/{body['id']}", headers=ops.headers)
    assert gone.status_code == 204
    assert (await client.get(f"/v1/territories/{body['id']}", headers=ops.headers)).status_code == 404


async def test_the_ring_arrives_and_leaves_in_the_callers_crs(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    gcj = [from_wgs84(lat, lon, Crs.GCJ02) for lat, lon in DISTRICT]
    response = await client.post(
        "/v1/territories?crs=gcj02", json={"name": "D", "ring": ring(gcj)}, headers=ops.headers
    )
    assert response.status_code == 201, response.text
    wgs = (await client.get(f"/v1/territories/{response.json()['id']}", headers=ops.headers)).json()
    for point, (lat, lon) in zip(wgs["ring"], DISTRICT, strict=False):
        assert abs(point["lat"] - lat) < 1e-6
        assert abs(point["lon"] - lon) < 1e-6
    back = response.json()["ring"]
    for point, (lat, lon) in zip(back, gcj, strict=False):
        assert abs(point["lat"] - lat) < 1e-6
        assert abs(point["lon"] - lon) < 1e-6


async def test_bad_polygons_are_422_never_500(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bowtie = [(31.22, 121.46), (31.24, 121.48), (31.22, 121.48), (31.24, 121.46)]
    line = [(31.22, 121.46), (31.23, 121.47), (31.24, 121.48)]
    repeated = [(31.22, 121.46), (31.22, 121.46), (31.24, 121.48)]
    for points in (bowtie, line, repeated, DISTRICT[:2]):
        response = await client.post("/v1/territories", json={"name": "X", "ring": ring(points)}, headers=ops.headers)
        assert response.status_code == 422, (points, response.text)
        assert response.json()["code"] == "validation_failed"
    out_of_range = await client.post(
        "/v1/territories", json={"name": "X", "ring": ring([(91, 0), (0, 1), (1, 1)])}, headers=ops.headers
    )
    assert out_of_range.status_code == 422


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-60, 60), st.floats(-170, 170)), min_size=3, max_size=8))
def test_any_ring_is_a_valid_polygon_or_a_stable_refusal(points: list[tuple[float, float]]) -> None:
    code = None
    try:
        wkt = polygon_ewkt(points)
    except DomainError as refusal:
        code = refusal.code.value
    else:
        assert wkt.startswith("SRID=4326;POLYGON((")
    assert code in (None, "validation_failed")


async def test_another_tenants_territory_and_team_are_404(factory: Factory, client: Client) -> None:
    mine, theirs = await factory.tenant(), await factory.tenant()
    ops, other_ops = await factory.user(mine, Role.OPS), await factory.user(theirs, Role.OPS)
    their_team = await factory.team(theirs)
    created = await client.post(
        "/v1/territories", json={"name": "T", "ring": ring(DISTRICT)}, headers=other_ops.headers
    )
    their_id = created.json()["id"]
    assert (await client.get(f"/v1/territories/{their_id}", headers=ops.headers)).status_code == 404
    put = await client.put(
        f"/v1/territories/{their_id}", json={"name": "Mine", "ring": ring(DISTRICT)}, headers=ops.headers
    )
    assert put.status_code == 404
    assert (await client.delete(f"/v1/territories/{their_id}", headers=ops.headers)).status_code == 404
    assert (await client.get(f"/v1/territories/{uuid.uuid4()}", headers=ops.headers)).status_code == 404
    team = await client.post(
        "/v1/territories", json={"name": "T", "team_id": str(their_team), "ring": ring(DISTRICT)}, headers=ops.headers
    )
    assert team.status_code == 404
    assert (await client.get("/v1/territories", headers=ops.headers)).json() == []


async def test_roles_without_the_permission_are_refused(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd, supervisor = await factory.user(tenant, Role.BD), await factory.user(tenant, Role.SUPERVISOR)
    body = {"name": "T", "ring": ring(DISTRICT)}
    assert (await client.post("/v1/territories", json=body, headers=bd.headers)).status_code == 403
    assert (await client.post("/v1/territories", json=body, headers=supervisor.headers)).status_code == 403
    assert (await client.get("/v1/territories", headers=bd.headers)).status_code == 403
    assert (await client.get("/v1/territories", headers=supervisor.headers)).status_code == 200


async def test_a_merchant_belongs_to_the_smallest_territory_covering_it(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    district = (
        await client.post("/v1/territories", json={"name": "D", "ring": ring(DISTRICT)}, headers=ops.headers)
    ).json()
    circle = (
        await client.post("/v1/territories", json={"name": "C", "ring": ring(CIRCLE)}, headers=ops.headers)
    ).json()
    in_circle = await factory.poi(tenant, 31.23, 121.47)
    in_district = await factory.poi(tenant, 31.235, 121.475)
    outside = await factory.poi(tenant, 31.30, 121.60)
    sql = "SELECT territory_of(tenant_id, location)::text FROM pois WHERE tenant_id = :t AND id = :p"
    async with factory.database.sessions() as session:
        from sqlalchemy import text

        found = [await session.scalar(text(sql), {"t": tenant, "p": p}) for p in (in_circle, in_district, outside)]
    assert found == [circle["id"], district["id"], None]


async def test_a_retried_create_is_the_same_territory(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    body = {"id": str(uuid.uuid4()), "name": "D", "ring": ring(DISTRICT)}
    first = await client.post("/v1/territories", json=body, headers=ops.headers)
    again = await client.post("/v1/territories", json=body, headers=ops.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = await client.post("/v1/territories", json={**body, "ring": ring(CIRCLE)}, headers=ops.headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
