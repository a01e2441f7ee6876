"""The ingest's two ways to the statement give the same rows: a plain WGS-84 fix goes as it was decoded (the
statement computes its trusted time), a fix the service judged or converted goes as a `Row` saying its trusted
time and doubts. Every field is stored as sent, whichever way it went."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from backend.coordinates import point_to_wgs84
from mobile_contract.auth import Role
from mobile_contract.location import CrsName
from tests.factories import Factory

URL = "/v1/tracking/positions"


def _full(received_guess: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "lat": 31.2304,
        "lon": 121.4737,
        "accuracy_m": 7.5,
        "captured_at": (received_guess - timedelta(seconds=30)).isoformat(),
        "age_ms": 30_000,
        "altitude_m": 12.5,
        "speed_mps": 1.25,
        "bearing_deg": 270.0,
        "provider": "fused",
        "battery": 64.0,
        "charging": True,
        "activity": "walking",
        "event": "heartbeat",
        **extra,
    }


async def _stored(factory: Factory, tenant: uuid.UUID, fix_id: str) -> dict[str, Any]:
    from sqlalchemy import text

    async with factory.database.sessions() as session:
        found = await session.execute(
            text(
                "SELECT fix_id, recorded_at, captured_at, received_at, lat, lon, accuracy_m, altitude_m, speed_mps,"
                " bearing_deg, battery, charging, activity, event, provider, mock, source, reasons"
                " FROM tracking_positions WHERE tenant_id = :t AND fix_id = :f"
            ),
            {"t": tenant, "f": uuid.UUID(fix_id)},
        )
        rows = [dict(row._mapping) for row in found]
    assert len(rows) == 1
    return rows[0]


async def test_plain_judged_and_converted_fixes_are_stored_alike(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    now = datetime.now(UTC)
    plain = _full(now)
    # The phone's clock is an hour off but its monotonic age is right: judged, kept with `clock_skew`.
    skewed = _full(now, captured_at=(now - timedelta(hours=1)).isoformat())
    mocked = _full(now, is_mock=True)
    answer = await client.post(URL, json={"device_id": "p", "positions": [plain, skewed, mocked]}, headers=bd.headers)
    assert answer.json() == {"accepted": 3, "duplicate": 0, "refused": 0, "refusals": []}
    rows = {
        name: await _stored(factory, tenant, fix["id"])
        for name, fix in (("plain", plain), ("skewed", skewed), ("mocked", mocked))
    }
    received = rows["plain"]["received_at"]
    for name, row in rows.items():
        assert row["recorded_at"] == received - timedelta(milliseconds=30_000), name
        assert (row["lat"], row["lon"], row["accuracy_m"], row["altitude_m"]) == (31.2304, 121.4737, 7.5, 12.5)
        assert (row["speed_mps"], row["bearing_deg"], row["battery"], row["charging"]) == (1.25, 270.0, 64.0, True)
        assert (row["activity"], row["event"], row["provider"], row["source"]) == (
            "walking",
            "heartbeat",
            "fused",
            "app",
        )
    assert rows["plain"]["reasons"] == []
    assert rows["plain"]["mock"] is False
    assert rows["skewed"]["reasons"] == ["clock_skew"]
    assert rows["skewed"]["captured_at"] == datetime.fromisoformat(skewed["captured_at"])
    assert rows["mocked"]["reasons"] == ["mock_location"]
    assert rows["mocked"]["mock"] is True


async def test_a_batch_in_another_crs_is_stored_in_wgs84(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    sent = _full(datetime.now(UTC), age_ms=None)
    del sent["age_ms"]
    answer = await client.post(f"{URL}?crs=gcj02", json={"device_id": "p", "positions": [sent]}, headers=bd.headers)
    assert answer.json()["accepted"] == 1, answer.text
    row = await _stored(factory, tenant, sent["id"])
    assert (row["lat"], row["lon"]) == point_to_wgs84(31.2304, 121.4737, CrsName.GCJ02)
    assert row["recorded_at"] == datetime.fromisoformat(sent["captured_at"])  # no age: the phone's time
