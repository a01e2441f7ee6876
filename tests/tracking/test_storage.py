"""The trail's storage: idempotency per (tenant, fix id) across partitions, partitions made on demand, the loader."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from backend.db.engine import Database
from backend.tracking import queries
from backend.tracking.queries import IngestRows
from mobile_contract.auth import Role
from tests.factories import Factory


def _rows(fixes: list[tuple[uuid.UUID, datetime, float, float]]) -> IngestRows:
    rows = IngestRows.empty()
    for fix_id, at, lat, lon in fixes:
        rows.fix_id.append(fix_id)
        rows.recorded_at.append(at)
        rows.captured_at.append(at)
        rows.lat.append(lat)
        rows.lon.append(lon)
        rows.accuracy_m.append(8.0)
        for column in (rows.altitude_m, rows.speed_mps, rows.bearing_deg, rows.battery, rows.charging):
            column.append(None)
        for text_column in (rows.activity, rows.event, rows.provider):
            text_column.append(None)
        rows.mock.append(False)
        rows.reasons.append("")
    return rows


async def test_a_resent_fix_whose_trusted_time_crossed_midnight_is_a_duplicate(
    factory: Factory, database: Database
) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, Role.BD, login=False)
    fix_id = uuid.uuid4()
    # A day long ago, so its partitions surely do not exist yet: created on demand.
    before_midnight = datetime(2021, 3, 4, 23, 59, 59, 999000, tzinfo=UTC)
    received = datetime(2021, 3, 5, 0, 0, 5, tzinfo=UTC)
    kwargs = {"tenant_id": tenant, "user_id": user.id, "device_id": "d1", "received_at": received, "source": "app"}
    first = await queries.insert_fixes(database.hot, **kwargs, rows=_rows([(fix_id, before_midnight, 31.2, 121.4)]))
    # The resend's age gives a trusted time 2 ms later: the next day, the next partition.
    after_midnight = before_midnight + timedelta(milliseconds=2)
    again = await queries.insert_fixes(database.hot, **kwargs, rows=_rows([(fix_id, after_midnight, 31.2, 121.4)]))
    assert first == {fix_id}
    assert again == set()
    trail = await queries.fixes_between(
        database.hot, tenant, user.id, before_midnight - timedelta(hours=1), after_midnight + timedelta(hours=1)
    )
    assert [fix.fix_id for fix in trail] == [fix_id]
    assert trail[0].recorded_at == before_midnight
    latest = await queries.latest_positions(database.hot, tenant, [user.id])
    assert latest[user.id].fix_id == fix_id


async def test_the_loader_orders_by_trusted_time_and_flags_a_spike(factory: Factory, database: Database) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, Role.BD, login=False)
    start = datetime(2021, 6, 1, 9, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(3)]
    fixes = [
        (ids[2], start + timedelta(seconds=120), 31.2002, 121.4),
        (ids[0], start, 31.2, 121.4),
        (ids[1], start + timedelta(seconds=60), 32.5, 121.4),  # 140 km away for a minute
    ]
    await queries.insert_fixes(
        database.hot,
        tenant_id=tenant,
        user_id=user.id,
        device_id="d1",
        received_at=start + timedelta(hours=1),
        source="app",
        rows=_rows(fixes),
    )
    async with database.sessions() as session:
        trail = await queries.fixes_between(session, tenant, user.id, start, start + timedelta(hours=1))
    assert [fix.fix_id for fix in trail] == ids
    assert [fix.reasons for fix in trail] == [(), ("impossible_speed",), ()]
    other_tenant = await queries.fixes_between(database.hot, uuid.uuid4(), user.id, start, start + timedelta(hours=1))
    assert other_tenant == []


async def test_partitions_are_made_ahead_and_old_trail_is_dropped_per_tenant_retention(
    factory: Factory, database: Database
) -> None:
    from backend.tracking import tasks

    now = datetime(2031, 1, 10, 12, tzinfo=UTC)  # a clock of its own: no other test writes these days
    await tasks.create_partitions(database, now)
    days = await queries.partition_days(database.hot)
    assert {now.date() + timedelta(days=n) for n in range(3)} <= set(days)
    # A second run creates nothing and fails nothing.
    assert (await tasks.create_partitions(database, now))["created"] == []
    short = await factory.tenant()
    user = await factory.user(short, Role.BD, login=False)
    async with database.sessions() as session:
        from sqlalchemy import text

        await session.execute(
            text("INSERT INTO tracking_settings (tenant_id, retention_days) VALUES (:t, 3)"), {"t": short}
        )
        await session.commit()
    old, recent = uuid.uuid4(), uuid.uuid4()
    await queries.insert_fixes(
        database.hot,
        tenant_id=short,
        user_id=user.id,
        device_id="d",
        received_at=now,
        source="app",
        rows=_rows([(old, now - timedelta(days=5), 31.2, 121.4), (recent, now - timedelta(days=1), 31.2, 121.4)]),
    )
    await tasks.enforce_retention(database, now)
    trail = await queries.fixes_between(database.hot, short, user.id, now - timedelta(days=30), now)
    assert [fix.fix_id for fix in trail] == [recent]
    assert await factory.count("SELECT count(*) FROM tracking_fix_ids WHERE tenant_id = :t", t=short) == 1
