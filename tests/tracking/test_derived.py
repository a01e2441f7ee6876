"""Derived days: fixes landing through POST /v1/tracking/positions queue one recompute per person-day, the queue
replaces that day's stops, trips, gaps, presence and geofence events, and shuffled, split, duplicated and late
batches derive the same rows as the in-order ingest."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.db.engine import Database
from backend.queue.service import Registry
from backend.queue.worker import run_due
from backend.tracking import derived
from geo.distance import destination
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser

URL = "/v1/tracking/positions"
SHOP = (31.2304, 121.4737)
_days = itertools.count(3)


def registry() -> Registry:
    found = Registry()
    found.register(derived.DERIVE_DAY, derived.handle_derive_day)
    return found


def day_trail(day: date, seed: int) -> list[dict[str, Any]]:
    """A morning: 8 minutes at the shop, a 400 m walk, the phone's location off for 15 minutes, 6 minutes at
    the next place. No `age_ms`: the trusted time is the capture time, the same whenever it is sent."""
    rng = random.Random(seed)
    at = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)
    points: list[tuple[datetime, float, float, float, str | None]] = []
    for k in range(24):
        lat, lon = destination(*SHOP, rng.uniform(0, 360), rng.uniform(0, 12))
        points.append((at + timedelta(seconds=20 * k), lat, lon, rng.uniform(5, 15), None))
    at = points[-1][0]
    for k in range(1, 30):
        lat, lon = destination(*SHOP, 90.0, 14.0 * k)
        points.append((at + timedelta(seconds=10 * k), lat, lon, 6.0, None))
    last = points[-1]
    points[-1] = (*last[:4], "location_off")
    far = destination(*SHOP, 90.0, 14.0 * 29)
    at = last[0] + timedelta(minutes=15)
    for k in range(18):
        lat, lon = destination(*far, rng.uniform(0, 360), rng.uniform(0, 8))
        points.append((at + timedelta(seconds=20 * k), lat, lon, rng.uniform(5, 12), None))
    return [
        {
            "id": str(uuid.uuid4()),
            "lat": lat,
            "lon": lon,
            "accuracy_m": accuracy,
            "captured_at": moment.isoformat(),
            "provider": "gps",
            **({"event": event} if event else {}),
        }
        for moment, lat, lon, accuracy, event in points
    ]


async def send(client: AsyncTestClient, user: FieldUser, fixes: list[dict[str, Any]]) -> None:  # type: ignore[type-arg]
    answer = await client.post(URL, json={"device_id": "phone", "positions": fixes}, headers=user.headers)
    assert answer.status_code == 200, answer.text


async def derived_rows(database: Database, user: FieldUser, day: date) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    columns = {
        "tracking_stops": "seq, started_at, ended_at, round(lat::numeric, 7), round(lon::numeric, 7), radius_m, fixes",
        "tracking_trips": "seq, started_at, ended_at, round(distance_m::numeric, 3), fixes, from_stop, to_stop",
        "tracking_gaps": "seq, started_at, ended_at, cause",
        "tracking_presence": "seq, stop_seq, place_kind, poi_id, job_id, started_at, ended_at, confidence",
        "tracking_fence_events": "seq, at, kind, place_kind, poi_id, job_id",
        "tracking_days": "fixes, timezone",
    }
    conn = database.hot
    for table, selected in columns.items():
        rows = await conn.fetch(
            f"SELECT {selected} FROM {table} WHERE tenant_id = $1 AND user_id = $2 AND day = $3 ORDER BY 1",  # noqa: S608
            user.tenant_id,
            user.id,
            day,
        )
        found[table] = [tuple(row) for row in rows]
    return found


async def test_a_batch_queues_one_recompute_per_day_and_the_queue_derives_it(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    shop = await factory.poi(tenant, *SHOP, radius_m=40.0)
    bd = await factory.user(tenant, Role.BD)
    day = datetime.now(UTC).date() - timedelta(days=2)
    trail = day_trail(day, 1)
    await send(client, bd, trail[:30])
    await send(client, bd, trail[30:])
    waiting = await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND kind = 'tracking.derive_day'"
        " AND done_at IS NULL",
        t=tenant,
    )
    assert waiting == 1  # two batches, one waiting recompute
    assert await run_due(factory.database, registry(), tenant_id=tenant) == 1
    rows = await derived_rows(factory.database, bd, day)
    assert len(rows["tracking_stops"]) == 2
    assert [row[3] for row in rows["tracking_gaps"]] == ["location_off"]
    assert [row[3] for row in rows["tracking_presence"]] == [shop]
    assert [row[2] for row in rows["tracking_fence_events"]] == ["enter", "dwell", "exit"]
    assert rows["tracking_days"] == [(len(trail), "UTC")]
    (trip,) = [row for row in rows["tracking_trips"] if row[5] == 0 and row[6] == 1]
    assert 330 <= float(trip[3]) <= 450  # 406 m walked, give or take the stops' centres

    # A late fix of the same day: queued again, and the day is replaced, not added to.
    late = dict(trail[-1], id=str(uuid.uuid4()), captured_at=(day_start(day) + timedelta(hours=5)).isoformat())
    await send(client, bd, [late])
    assert await run_due(factory.database, registry(), tenant_id=tenant) == 1
    again = await derived_rows(factory.database, bd, day)
    assert again["tracking_days"] == [(len(trail) + 1, "UTC")]
    assert len(again["tracking_stops"]) == 2
    assert len(again["tracking_gaps"]) == 2  # the silence before the late fix


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def test_a_recompute_in_progress_does_not_swallow_new_fixes(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    day = datetime.now(UTC).date() - timedelta(days=2)
    trail = day_trail(day, 2)
    await send(client, bd, trail[:10])
    # The worker has claimed the job (its lease is held): new fixes queue another.
    await factory.database.hot.fetch(
        "UPDATE background_jobs SET locked_until = now() + interval '1 minute' WHERE tenant_id = $1", tenant
    )
    await send(client, bd, trail[10:])
    jobs = await factory.count("SELECT count(*) FROM background_jobs WHERE tenant_id = :t", t=tenant)
    assert jobs == 2


_USERS: dict[str, tuple[FieldUser, FieldUser, uuid.UUID]] = {}


@given(data=st.data(), seed=st.integers(0, 1000))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_shuffled_split_duplicated_late_batches_derive_the_same_day(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
    data: st.DataObject,
    seed: int,
) -> None:
    if "pair" not in _USERS:
        tenant = await factory.tenant()
        shop = await factory.poi(tenant, *SHOP, radius_m=40.0)
        _USERS["pair"] = (await factory.user(tenant, Role.BD), await factory.user(tenant, Role.BD), shop)
    in_order, shuffled_user, _ = _USERS["pair"]
    day = datetime.now(UTC).date() - timedelta(days=next(_days))
    trail = day_trail(day, seed)
    for start in range(0, len(trail), 25):
        await send(client, in_order, trail[start : start + 25])
    # The same fixes under the other person's ids (ids are unique per tenant), shuffled, resent, split, and
    # derived between batches (late data after a derivation).
    twin = [dict(fix, id=str(uuid.uuid5(uuid.NAMESPACE_URL, fix["id"]))) for fix in trail]
    resent = data.draw(st.lists(st.sampled_from(twin), max_size=20))
    shuffled = data.draw(st.permutations(twin + resent))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=5)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True) if shuffled[a:b]]
    for number, batch in enumerate(batches):
        # A batch may hold one fix twice (a phone's retry inside a batch): answered as a duplicate.
        await send(client, shuffled_user, batch)
        if number == 0:
            await run_due(factory.database, registry(), tenant_id=in_order.tenant_id)
    await run_due(factory.database, registry(), tenant_id=in_order.tenant_id)
    assert await derived_rows(factory.database, shuffled_user, day) == await derived_rows(
        factory.database, in_order, day
    )


async def test_derived_days_go_with_the_trail_past_retention(factory: Factory) -> None:
    from backend.tracking import tasks

    now = datetime(2031, 1, 10, 12, tzinfo=UTC)  # the storage test's clock of its own
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD, login=False)
    hot = factory.database.hot
    await hot.fetch("INSERT INTO tracking_settings (tenant_id, retention_days) VALUES ($1, 3)", tenant)
    for day in (date(2031, 1, 1), date(2031, 1, 9)):
        await hot.fetch(
            "INSERT INTO tracking_days (tenant_id, user_id, day, timezone, fixes, derived_at)"
            " VALUES ($1, $2, $3, 'UTC', 0, $4)",
            tenant,
            bd.id,
            day,
            now,
        )
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        await hot.fetch(
            "INSERT INTO tracking_gaps (tenant_id, user_id, day, seq, started_at, ended_at, cause)"
            " VALUES ($1, $2, $3, 0, $4, $5, 'unknown')",
            tenant,
            bd.id,
            day,
            start,
            start + timedelta(hours=1),
        )
    await tasks.enforce_retention(factory.database, now)
    for table in ("tracking_days", "tracking_gaps"):
        rows = await hot.fetch(f"SELECT day FROM {table} WHERE tenant_id = $1", tenant)  # noqa: S608
        assert [row["day"] for row in rows] == [date(2031, 1, 9)], table
