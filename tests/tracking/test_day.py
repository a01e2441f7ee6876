"""GET /v1/tracking/users/{id}/day and .../trail: the timeline from the derived tables with visits, the trail in
four formats, the caller's data scope, the caller's coordinate system, and bad input as 4xx problems."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from litestar.testing import AsyncTestClient

from backend.queue.worker import run_due
from geo.crs import Crs, from_wgs84
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.tracking.test_derived import SHOP, day_trail, registry, send

DAY_URL = "/v1/tracking/users/{}/day"
TRAIL_URL = "/v1/tracking/users/{}/trail"


FieldDay = tuple[FieldUser, date, list[dict[str, Any]], uuid.UUID]


async def _field_day(client: AsyncTestClient, factory: Factory) -> FieldDay:  # type: ignore[type-arg]
    tenant = await factory.tenant()
    shop = await factory.poi(tenant, *SHOP, radius_m=40.0, name="Noodle House")
    team = await factory.team(tenant)
    bd = await factory.user(tenant, Role.BD, team_id=team)
    day = datetime.now(UTC).date() - timedelta(days=2)
    trail = day_trail(day, 7)
    await send(client, bd, trail)
    await run_due(factory.database, registry(), tenant_id=tenant)
    return bd, day, trail, shop


async def test_a_bds_day_is_a_timeline_with_the_trail(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    bd, day, trail, shop = await _field_day(client, factory)
    answer = await client.get(DAY_URL.format(bd.id), params={"date": day.isoformat()}, headers=bd.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["date"] == day.isoformat()
    assert body["tz"] == "UTC"
    kinds = [entry["type"] for entry in body["timeline"]]
    assert kinds.count("stop") == 2
    assert "trip" in kinds
    assert "gap" in kinds
    first_stop = next(entry for entry in body["timeline"] if entry["type"] == "stop")
    assert first_stop["place"]["id"] == str(shop)
    assert first_stop["place"]["name"] == "Noodle House"
    assert first_stop["place"]["kind"] == "merchant"
    (gap,) = [entry for entry in body["timeline"] if entry["type"] == "gap"]
    assert gap["cause"] == "location_off"
    fences = [entry["kind"] for entry in body["timeline"] if entry["type"] == "geofence"]
    assert fences == ["enter", "dwell", "exit"]
    moments = [entry.get("started_at") or entry.get("at") for entry in body["timeline"]]
    assert moments == sorted(moments)
    assert len(body["trail"]) == len(trail)
    assert body["summary"]["stops"] == 2
    assert 330 <= body["summary"]["distance_m"] <= 450
    assert body["summary"]["fixes"] == len(trail)
    assert body["derived_at"] is not None


async def test_the_day_in_another_zone_and_coordinate_system(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    bd, day, _, _ = await _field_day(client, factory)
    # 01:00-01:40 UTC is 09:00-09:40 in Shanghai: the same day there.
    params = {"date": day.isoformat(), "tz": "Asia/Shanghai", "crs": "gcj02"}
    shanghai = (await client.get(DAY_URL.format(bd.id), params=params, headers=bd.headers)).json()
    plain = (await client.get(DAY_URL.format(bd.id), params={"date": day.isoformat()}, headers=bd.headers)).json()
    assert shanghai["starts_at"].startswith(f"{(day - timedelta(days=1)).isoformat()}T16:00:00")
    stop_gcj = next(e for e in shanghai["timeline"] if e["type"] == "stop")["location"]
    stop_wgs = next(e for e in plain["timeline"] if e["type"] == "stop")["location"]
    lat, lon = from_wgs84(stop_wgs["lat"], stop_wgs["lon"], Crs.GCJ02)
    assert (stop_gcj["lat"], stop_gcj["lon"]) == pytest.approx((lat, lon), abs=1e-6)
    first = shanghai["trail"][0]
    raw = plain["trail"][0]
    assert (first["lat"], first["lon"]) == pytest.approx(from_wgs84(raw["lat"], raw["lon"], Crs.GCJ02), abs=1e-6)
    # The next day starts after this trail: nothing in it.
    later = (day + timedelta(days=1)).isoformat()
    empty = (await client.get(DAY_URL.format(bd.id), params={"date": later, "tz": "UTC"}, headers=bd.headers)).json()
    assert empty["timeline"] == []
    assert empty["trail"] == []


async def test_a_check_in_is_on_the_timeline_with_its_verdict(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    shop = await factory.poi(tenant, *SHOP, radius_m=60.0)
    bd = await factory.user(tenant, Role.BD)
    from tests.factories import fix

    visit = {"id": str(uuid.uuid4()), "poi_id": str(shop), "fix": fix(*SHOP)}
    checked = await client.post("/v1/visits", json=visit, headers=bd.headers)
    assert checked.status_code in (200, 201), checked.text
    today = datetime.now(UTC).date().isoformat()
    body = (await client.get(DAY_URL.format(bd.id), params={"date": today}, headers=bd.headers)).json()
    (entry,) = [e for e in body["timeline"] if e["type"] == "visit"]
    assert entry["visit_id"] == visit["id"]
    assert entry["check_in"]["status"] == "verified"
    assert entry["place"] == {"kind": "merchant", "id": str(shop), "name": entry["place"]["name"], "confidence": None}
    assert body["summary"]["visits"] == 1


async def test_scope_a_bd_sees_only_themself_a_supervisor_their_team(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    bd, day, _, _ = await _field_day(client, factory)
    params = {"date": day.isoformat()}
    colleague = await factory.user(bd.tenant_id, Role.BD, team_id=bd.team_id)
    supervisor = await factory.user(bd.tenant_id, Role.SUPERVISOR, team_id=bd.team_id)
    other_team = await factory.user(bd.tenant_id, Role.SUPERVISOR, team_id=await factory.team(bd.tenant_id, "B"))
    stranger_tenant = await factory.tenant()
    stranger = await factory.user(stranger_tenant, Role.ADMIN)
    for url in (DAY_URL, TRAIL_URL):
        query = params if url == DAY_URL else _span(day)
        assert (await client.get(url.format(bd.id), params=query, headers=supervisor.headers)).status_code == 200
        for outsider in (colleague, other_team, stranger):
            refused = await client.get(url.format(bd.id), params=query, headers=outsider.headers)
            assert refused.status_code == 404, (url, outsider.role)
            assert refused.json()["code"] == "not_found"
        # An id no one has, and another tenant's user asked by a supervisor: the same 404.
        for unknown in (uuid.uuid4(), stranger.id):
            missing = await client.get(url.format(unknown), params=query, headers=supervisor.headers)
            assert missing.status_code == 404
        assert (await client.get(url.format(bd.id), params=query)).status_code == 401


def _span(day: date, days: float = 1.0) -> dict[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat()}


async def test_the_trail_in_each_format(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    bd, day, trail, _ = await _field_day(client, factory)
    url = TRAIL_URL.format(bd.id)
    geojson = await client.get(url, params={**_span(day), "format": "geojson"}, headers=bd.headers)
    assert geojson.status_code == 200, geojson.text
    assert geojson.headers["content-type"].startswith("application/geo+json")
    assert f'filename="trail-{bd.id}-' in geojson.headers["content-disposition"]
    assert geojson.headers["content-disposition"].endswith('.geojson"')
    features = json.loads(geojson.content)["features"]
    assert features[0]["geometry"]["type"] == "MultiLineString"
    assert len(features[0]["geometry"]["coordinates"]) == 2  # split at the gap
    assert len(features) == 1 + len(trail)

    gpx = await client.get(url, params={**_span(day), "format": "gpx"}, headers=bd.headers)
    assert gpx.headers["content-type"].startswith("application/gpx+xml")
    root = ET.fromstring(gpx.content)  # noqa: S314 - our own answer
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert len(root.findall(".//g:trkseg", ns)) == 2
    assert len(root.findall(".//g:trkpt", ns)) == len(trail)

    kml = await client.get(url, params={**_span(day), "format": "kml"}, headers=bd.headers)
    assert kml.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
    placemarks = ET.fromstring(kml.content).findall(".//{http://www.opengis.net/kml/2.2}Placemark")  # noqa: S314
    assert len(placemarks) == 2

    table = await client.get(url, params={**_span(day), "format": "csv", "crs": "bd09"}, headers=bd.headers)
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == len(trail)
    first = min(trail, key=lambda f: f["captured_at"])
    bd09 = from_wgs84(first["lat"], first["lon"], Crs.BD09)
    assert (float(rows[0]["lat"]), float(rows[0]["lon"])) == pytest.approx(bd09, abs=1e-6)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"date": "2026-13-01"}, "validation_failed"),
        ({"date": "2026-02-30"}, "validation_failed"),
        ({"date": "yesterday"}, "validation_failed"),
        ({"date": "0000-01-01"}, "validation_failed"),
        ({"date": "2026-12-02", "tz": "Mars/Olympus"}, "validation_failed"),
        ({"date": "2026-12-02", "tz": "../../etc/passwd"}, "validation_failed"),
        ({"date": "2026-12-02", "crs": "osgb36"}, "validation_failed"),
        ({}, "validation_failed"),
    ],
)
async def test_bad_day_input_is_a_422(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
    params: dict[str, str],
    code: str,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    answer = await client.get(DAY_URL.format(bd.id), params=params, headers=bd.headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"from": "2026-12-02T10:00:00Z", "to": "2026-12-02T09:00:00Z"}, 422, "validation_failed"),
        ({"from": "2026-12-02T10:00:00Z", "to": "2026-12-02T10:00:00Z"}, 422, "validation_failed"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, 422, "range_too_long"),
        ({"from": "1900-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}, 422, "validation_failed"),
        ({"from": "2026-12-02T10:00:00", "to": "2026-12-02T11:00:00"}, 422, "validation_failed"),
        ({"from": "last tuesday", "to": "2026-12-02T11:00:00Z"}, 422, "validation_failed"),
        ({"from": "2026-12-02T10:00:00Z", "to": "2026-12-02T11:00:00Z", "format": "shp"}, 422, "validation_failed"),
        ({"to": "2026-12-02T11:00:00Z"}, 422, "validation_failed"),
    ],
)
async def test_bad_trail_input_is_a_4xx(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    answer = await client.get(TRAIL_URL.format(bd.id), params=params, headers=bd.headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    if code == "range_too_long":
        assert answer.json()["max_days"] == 7


async def test_a_technicians_job_and_its_site_are_on_the_timeline(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    from tests.jobs.helpers import SITE, create_job, step, technician

    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops)
    assigned = await client.post(
        f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers
    )
    assert assigned.status_code == 200, assigned.text
    assert (await step(client, tech, job["id"], "accept")).status_code == 200
    arrived = await step(client, tech, job["id"], "arrive", fix=fix_at(*SITE))
    assert arrived.status_code == 200, arrived.text
    # Ten minutes at the site, just now.
    now = datetime.now(UTC)
    trail = [
        {
            "id": str(uuid.uuid4()),
            "lat": SITE[0],
            "lon": SITE[1] + 0.00001 * (k % 3),
            "accuracy_m": 8.0,
            "captured_at": (now - timedelta(seconds=600 - 20 * k)).isoformat(),
        }
        for k in range(30)
    ]
    await send(client, tech, trail)
    await run_due(factory.database, registry(), tenant_id=tenant)
    today = now.date().isoformat()
    body = (await client.get(DAY_URL.format(tech.id), params={"date": today}, headers=ops.headers)).json()
    (entry,) = [e for e in body["timeline"] if e["type"] == "job"]
    assert entry["job_id"] == job["id"]
    assert entry["place"]["kind"] == "job_site"
    assert [s["action"] for s in entry["steps"]] == ["accept", "arrive"]
    assert entry["arrival"] == "verified"
    stops = [e for e in body["timeline"] if e["type"] == "stop" and e["started_at"] >= trail[0]["captured_at"][:19]]
    assert any(place["kind"] == "job_site" and place["id"] == job["id"] for stop in stops for place in stop["at"])


def fix_at(lat: float, lon: float) -> dict[str, Any]:
    from tests.factories import fix

    return fix(lat, lon)
