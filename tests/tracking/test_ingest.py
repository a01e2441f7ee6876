"""POST /v1/tracking/positions: idempotent per fix id in any order, refusals kept with reasons, bad input 4xx."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.settings import Settings
from backend.tracking import queries, service
from mobile_contract.auth import Role
from tests.factories import Factory, fix

URL = "/v1/tracking/positions"


def _fix(ago_s: float = 2.0, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), **fix(31.2304, 121.4737, ago_s=ago_s), **extra}


async def test_a_batch_is_stored_once_and_a_retry_is_all_duplicates(
    client: AsyncTestClient,
    factory: Factory,  # type: ignore[type-arg]
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    batch = {
        "device_id": "phone-1",
        "positions": [_fix(battery=80, charging=False, activity="walking") for _ in range(5)],
    }
    first = await client.post(URL, json=batch, headers=bd.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 5, "duplicate": 0, "refused": 0, "refusals": []}
    again = await client.post(URL, json=batch, headers=bd.headers)
    assert again.json() == {"accepted": 0, "duplicate": 5, "refused": 0, "refusals": []}
    assert await factory.count("SELECT count(*) FROM tracking_positions WHERE tenant_id = :t", t=tenant) == 5


async def test_a_fix_from_the_future_is_refused_and_kept(
    client: AsyncTestClient,
    factory: Factory,  # type: ignore[type-arg]
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    future = _fix()
    future.pop("age_ms")
    future["captured_at"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    answer = await client.post(URL, json={"device_id": "p", "positions": [future, _fix()]}, headers=bd.headers)
    assert answer.json()["refusals"] == [{"id": future["id"], "reasons": ["future_fix"]}]
    assert answer.json()["accepted"] == 1
    kept = await factory.count(
        "SELECT count(*) FROM tracking_refused WHERE tenant_id = :t AND fix IS NOT NULL"
        " AND 'future_fix' = ANY(reasons)",
        t=tenant,
    )
    assert kept == 1


async def test_mocked_fixes_are_evidence_and_never_move_the_live_position(
    client: AsyncTestClient,
    factory: Factory,  # type: ignore[type-arg]
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    real = _fix(ago_s=20)
    mocked = {**_fix(), "is_mock": True, "lat": 40.0}
    answer = await client.post(URL, json={"device_id": "p", "positions": [real, mocked]}, headers=bd.headers)
    assert answer.json()["accepted"] == 2
    latest = await queries.latest_positions(factory.database.hot, tenant, [bd.id])
    assert str(latest[bd.id].fix_id) == real["id"]
    trail = await queries.fixes_between(
        factory.database.hot, tenant, bd.id, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    )
    assert {(str(f.fix_id), f.mock, f.reasons) for f in trail} == {
        (real["id"], False, ()),
        (mocked["id"], True, ("mock_location",)),
    }


async def test_fixes_outside_the_teams_window_are_counted_not_kept(
    client: AsyncTestClient,
    factory: Factory,  # type: ignore[type-arg]
) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    admin = await factory.user(tenant, Role.ADMIN)
    bd = await factory.user(tenant, Role.BD, team_id=team)
    now = datetime.now(UTC)
    # A window that ends an hour ago and starts two hours from now, every day: now is outside it.
    starts, ends = (now + timedelta(hours=2)).strftime("%H:%M"), (now - timedelta(hours=1)).strftime("%H:%M")
    window = {"team_id": str(team), "weekdays": [1, 2, 3, 4, 5, 6, 7], "starts": starts, "ends": ends}
    put = await client.put(
        "/v1/tracking/settings", json={"retention_days": 30, "windows": [window]}, headers=admin.headers
    )
    assert put.status_code == 200, put.text
    refused = _fix()
    answer = await client.post(URL, json={"device_id": "p", "positions": [refused]}, headers=bd.headers)
    assert answer.json()["refusals"] == [{"id": refused["id"], "reasons": ["outside_tracking_window"]}]
    assert await factory.count("SELECT count(*) FROM tracking_positions WHERE tenant_id = :t", t=tenant) == 0
    # The refusal is on record, without the position.
    assert (
        await factory.count("SELECT count(*) FROM tracking_refused WHERE tenant_id = :t AND fix IS NULL", t=tenant) == 1
    )
    forbidden = await client.put("/v1/tracking/settings", json={"retention_days": 30}, headers=bd.headers)
    assert forbidden.status_code == 403


async def test_bad_input_is_a_problem_never_a_500(
    client: AsyncTestClient,
    factory: Factory,  # type: ignore[type-arg]
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    bad_bodies: list[Any] = [
        {"device_id": "p", "positions": [_fix(lat=91.0)]},
        {"device_id": "p", "positions": [_fix(lon=-181.0)]},
        {"device_id": "p", "positions": [{**_fix(), "battery": 150}]},
        {"device_id": "p", "positions": [{**_fix(), "unknown": 1}]},
        {"device_id": "p", "positions": []},
        {"device_id": "", "positions": [_fix()]},
        {"device_id": "p", "positions": [_fix() for _ in range(1_001)]},
        {"device_id": "p", "positions": [{**_fix(), "id": "not-a-uuid"}]},
        {"device_id": "p", "positions": [{**_fix(), "captured_at": "2026-12-02T09:00:00"}]},
    ]
    for body in bad_bodies:
        answer = await client.post(URL, json=body, headers=bd.headers)
        assert answer.status_code in (413, 422), (body, answer.text)
        assert answer.json()["code"] in ("validation_failed", "body_too_large")
    nan = b'{"device_id": "p", "positions": [{"id": "' + str(uuid.uuid4()).encode() + b'", "lat": NaN, "lon": 1,'
    nan += b' "accuracy_m": 5, "captured_at": "2026-12-02T09:00:00Z"}]}'
    answer = await client.post(URL, content=nan, headers={**bd.headers, "Content-Type": "application/json"})
    assert answer.status_code == 422
    unauthenticated = await client.post(URL, json={"device_id": "p", "positions": [_fix()]})
    assert unauthenticated.status_code == 401


# --- generated: any shuffling, duplication and splitting of a trail stores the same trail --------------------------

T0 = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
RECEIVED = T0 + timedelta(days=1)


def _trail(n: int) -> list[service.IncomingFix]:
    return [
        service.IncomingFix(
            id=uuid.UUID(int=i + 1),
            lat=31.2 + i * 0.0001,
            lon=121.4,
            accuracy_m=10.0,
            # Around midnight, with monotonic ages: the trail spans two partitions.
            captured_at=T0 + timedelta(hours=16, minutes=50) + timedelta(minutes=i),
            age_ms=int(
                (RECEIVED - (T0 + timedelta(hours=16, minutes=50) + timedelta(minutes=i))).total_seconds() * 1e3
            ),
        )
        for i in range(n)
    ]


async def _store(url: str, batches: list[list[service.IncomingFix]]) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        tenant, user = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 't')", tenant, f"gen-{tenant.hex}")
        await conn.execute(
            "INSERT INTO users (id, tenant_id, username, display_name, role, data_scope, password_hash) "
            "VALUES ($1, $2, $3, 'u', 'bd', 'self', 'x')",
            user,
            tenant,
            f"gen-{user.hex}@test",
        )
        who = service.Tracked(tenant_id=tenant, user_id=user, team_id=None, device_id="p")
        for batch in batches:
            # Each resend recomputes the ages a little later: the same fixes, received 1-3 ms later.
            await service.ingest(conn, who, batch, received_at=RECEIVED, source="app")
        stored = await queries.fixes_between(conn, tenant, user, T0, T0 + timedelta(days=2))
        latest = await queries.latest_positions(conn, tenant, [user])
        return [(f.fix_id, f.recorded_at, f.lat, f.lon, f.reasons) for f in stored] + [(latest[user].fix_id,)]
    finally:
        await conn.close()


@given(data=st.data(), n=st.integers(min_value=1, max_value=30))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_shuffled_duplicated_split_batches_store_the_same_trail(
    settings: Settings, data: st.DataObject, n: int
) -> None:
    trail = _trail(n)
    expected = asyncio.run(_store(settings.database_url, [trail]))
    sent = data.draw(st.lists(st.sampled_from(trail), min_size=n, max_size=3 * n).map(lambda extra: trail + extra))
    shuffled = data.draw(st.permutations(sent))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(shuffled)), max_size=6)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True) if shuffled[a:b]]
    assert asyncio.run(_store(settings.database_url, batches)) == expected
