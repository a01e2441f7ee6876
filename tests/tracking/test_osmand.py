"""/v1/tracking/osmand: each stock tracker app's request, as it sends it, is taken; keys, not device ids, decide."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from backend.tracking import queries
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser

URL = "/v1/tracking/osmand"


async def _keyed(factory: Factory, client: AsyncTestClient) -> tuple[FieldUser, str, uuid.UUID]:  # type: ignore[type-arg]
    tenant = await factory.tenant()
    supervisor = await factory.user(tenant, Role.SUPERVISOR, scope="all")
    bd = await factory.user(tenant, Role.BD)
    answer = await client.post(
        "/v1/tracking/keys", json={"user_id": str(bd.id), "device_id": "traccar-1"}, headers=supervisor.headers
    )
    assert answer.status_code == 200, answer.text
    return bd, answer.json()["key"], tenant


async def _trail(factory: Factory, tenant: uuid.UUID, user: uuid.UUID) -> list[Any]:
    now = datetime.now(UTC)
    return await queries.fixes_between(factory.database.hot, tenant, user, now - timedelta(hours=2), now)


async def test_every_stock_client_shape_is_taken(client: AsyncTestClient, factory: Factory) -> None:  # type: ignore[type-arg]
    bd, key, tenant = await _keyed(factory, client)
    now = datetime.now(UTC)
    seconds = int(now.timestamp()) - 60
    shapes: list[tuple[str, dict[str, Any]]] = [
        # The OsmAnd app's URL template: GET with a query, seconds.
        (
            "osmand GET",
            {
                "method": "GET",
                "params": {
                    "id": key,
                    "lat": "31.23",
                    "lon": "121.47",
                    "timestamp": seconds - 50,
                    "hdop": "2",
                    "altitude": "4",
                    "speed": "1.5",
                },
            },
        ),
        # The older Traccar Client for Android: POST with the query string and an empty body, milliseconds.
        (
            "traccar android POST query",
            {
                "method": "POST",
                "params": {
                    "id": key,
                    "lat": "31.231",
                    "lon": "121.471",
                    "timestamp": (seconds - 40) * 1000,
                    "speed": "0",
                    "bearing": "90",
                    "batt": "71",
                    "accuracy": "8",
                },
            },
        ),
        # Traccar Client 10: form body.
        (
            "traccar 10 form",
            {
                "method": "POST",
                "data": {
                    "id": key,
                    "lat": "31.232",
                    "lon": "121.472",
                    "timestamp": str(seconds - 30),
                    "accuracy": "12",
                    "batt": "70",
                    "charge": "true",
                },
            },
        ),
        # GPSLogger: GET with ISO-8601 time and location=lat,lon.
        (
            "gpslogger",
            {
                "method": "GET",
                "params": {
                    "deviceid": key,
                    "location": "31.233,121.473",
                    "timestamp": (now - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "accuracy": "5",
                },
            },
        ),
        # Traccar Client 9: the JSON object of the background-geolocation plugin.
        (
            "traccar 9 json",
            {
                "method": "POST",
                "json": {
                    "device_id": key,
                    "location": {
                        "timestamp": (now - timedelta(seconds=10)).isoformat(),
                        "coords": {
                            "latitude": 31.234,
                            "longitude": 121.474,
                            "accuracy": 6.0,
                            "speed": 1.2,
                            "heading": -1,
                            "altitude": 5,
                        },
                        "is_moving": True,
                        "event": "motionchange",
                        "battery": {"level": 0.55, "is_charging": False},
                        "activity": {"type": "walking"},
                        "mock": False,
                    },
                },
            },
        ),
        # Traccar Client 10 with headers: the key as a bearer, a JSON array of flat objects.
        (
            "traccar 10 json array",
            {
                "method": "POST",
                "headers": {"Authorization": f"Bearer {key}"},
                "json": [
                    {"id": "phone", "lat": 31.235, "lon": 121.475, "timestamp": (seconds - 5) * 1000, "accuracy": 7},
                    {"id": "phone", "lat": 31.236, "lon": 121.476, "timestamp": (seconds - 4) * 1000, "accuracy": 7},
                ],
            },
        ),
    ]
    for name, request in shapes:
        method = request.pop("method")
        answer = await client.request(method, URL, **request)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.content == b"", name
    trail = await _trail(factory, tenant, bd.id)
    assert len(trail) == 7
    assert {fix.source for fix in trail} == {"osmand"}
    by_lat = {round(fix.lat, 3): fix for fix in trail}
    assert abs((by_lat[31.23].speed_mps or 0) - 1.5 * 1852 / 3600) < 1e-4  # knots
    assert by_lat[31.231].battery == 71
    assert by_lat[31.231].bearing_deg == 90
    assert by_lat[31.232].charging is True
    assert by_lat[31.234].activity == "walking"
    assert by_lat[31.234].battery == 55
    assert by_lat[31.234].event == "motionchange"
    # The same report again is a duplicate, not a second fix.
    again = await client.get(
        URL,
        params={
            "id": key,
            "lat": "31.23",
            "lon": "121.47",
            "timestamp": seconds - 50,
            "hdop": "2",
            "altitude": "4",
            "speed": "1.5",
        },
    )
    assert again.status_code == 200
    assert len(await _trail(factory, tenant, bd.id)) == 7


async def test_a_device_id_is_not_a_key_and_a_revoked_key_stops(client: AsyncTestClient, factory: Factory) -> None:  # type: ignore[type-arg]
    bd, key, _tenant = await _keyed(factory, client)
    point = {"lat": "31.23", "lon": "121.47", "timestamp": int(time.time())}
    missing = await client.get(URL, params=point)
    assert missing.status_code == 400
    assert missing.json()["code"] == "tracking_id_missing"
    for wrong in ("traccar-1", "gwt_" + "x" * 32, str(bd.id)):
        refused = await client.get(URL, params={**point, "id": wrong})
        assert refused.status_code == 401, wrong
        assert refused.json()["code"] == "tracking_key_invalid", wrong
    keys = await client.get("/v1/tracking/keys", headers=bd.headers)
    assert [item["device_id"] for item in keys.json()["items"]] == ["traccar-1"]
    assert "key" not in keys.json()["items"][0]
    revoked = await client.delete(f"/v1/tracking/keys/{keys.json()['items'][0]['id']}", headers=bd.headers)
    assert revoked.status_code == 204
    after = await client.get(URL, params={**point, "id": key})
    assert after.status_code == 401


async def test_bad_reports_are_problems(client: AsyncTestClient, factory: Factory) -> None:  # type: ignore[type-arg]
    _, key, _ = await _keyed(factory, client)
    for params in (
        {"id": key, "lat": "91", "lon": "0"},
        {"id": key, "lat": "NaN", "lon": "0"},
        {"id": key, "lat": "x", "lon": "0"},
        {"id": key, "location": "31.2"},
        {"id": key, "lat": "1", "lon": "1", "timestamp": "yesterday"},
        {"id": key, "lat": "1", "lon": "1", "timestamp": "99999999999999999999"},
        {"id": key, "lat": "1", "lon": "1", "accuracy": "-5"},
    ):
        answer = await client.get(URL, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["code"] == "validation_failed", params
    broken = await client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422


async def test_keys_of_another_tenants_user_cannot_be_issued(client: AsyncTestClient, factory: Factory) -> None:  # type: ignore[type-arg]
    tenant = await factory.tenant()
    supervisor = await factory.user(tenant, Role.SUPERVISOR, scope="all")
    stranger = await factory.user(await factory.tenant(), Role.BD)
    answer = await client.post(
        "/v1/tracking/keys", json={"user_id": str(stranger.id), "device_id": "x"}, headers=supervisor.headers
    )
    assert answer.status_code == 404
    bd = await factory.user(tenant, Role.BD)
    other_bd = await factory.user(tenant, Role.BD)
    answer = await client.post(
        "/v1/tracking/keys", json={"user_id": str(other_bd.id), "device_id": "x"}, headers=bd.headers
    )
    assert answer.status_code == 403
    listed = await client.get("/v1/tracking/keys", params={"user_id": str(stranger.id)}, headers=supervisor.headers)
    assert listed.status_code == 404
    gone = await client.delete(f"/v1/tracking/keys/{uuid.uuid4()}", headers=supervisor.headers)
    assert gone.status_code == 404
