"""A day of field movement for the demo: each BD walks from their team's patch between merchants they hold,
checks in and out at each, stops for lunch and goes quiet for a while with location off; each technician walks
between the demo's job sites. The day ends a few minutes before the seed time, so the console shows people who
were just seen.

`plan_days` is a pure function of its random source and the seed time (same seed, same day); `seed_movement`
stores it through the services the apps use: the trail through `tracking.service.ingest` (in the batches a phone
uploads every quarter of an hour, received a few seconds after their last fix), the visits through
`visits.service.check_in` / `check_out` (judged as any check-in). `groundwork simulate` plays live movement after it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from backend.auth.tokens import Principal
from backend.tracking import service as tracking
from backend.tracking.service import IncomingFix, Tracked
from backend.visits import service as visits
from mobile_contract.auth import DataScope, Role
from mobile_contract.location import Fix
from mobile_contract.visits import CheckIn, CheckOut

DAY_HOURS = 8.0  # the day's length, ending `END_BEFORE` before the seed time
END_BEFORE = timedelta(minutes=3)
MOVING_EVERY_S = 30.0  # a fix every 30 s while walking, every 60 s while standing (as a phone's motion modes do)
STILL_EVERY_S = 60.0
UPLOAD_EVERY = timedelta(minutes=15)
LUNCH_AFTER = timedelta(hours=3, minutes=30)
MAX_LEG_M = 2_500.0  # the next merchant is the nearest held one, if within this walk
GAP_CAUSE = "location_off"
_M_PER_DEG_LAT = 110_850.0


@dataclass(frozen=True, slots=True)
class Walker:
    """Someone whose day is made: where they start and the places they may go (merchant id, lat, lon)."""

    user_id: UUID
    team_id: UUID | None
    role: str  # "bd" visits merchants (check-ins); "technician" walks between job sites
    start: tuple[float, float]
    places: Sequence[tuple[UUID, float, float]]


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    visit_id: UUID
    poi_id: UUID
    arrived: IncomingFix  # the fix of the check-in
    leaving: IncomingFix  # the fix of the check-out


@dataclass(slots=True)
class PlannedDay:
    walker: Walker
    fixes: list[IncomingFix] = field(default_factory=list)
    visits: list[PlannedVisit] = field(default_factory=list)
    lunch: tuple[datetime, datetime] | None = None
    gap: tuple[datetime, datetime] | None = None


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _m_per_deg_lon(lat: float) -> float:
    return 111_320.0 * math.cos(math.radians(lat))


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot((a[0] - b[0]) * _M_PER_DEG_LAT, (a[1] - b[1]) * _m_per_deg_lon(a[0]))


def _nudge(point: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    return point[0] + north_m / _M_PER_DEG_LAT, point[1] + east_m / _m_per_deg_lon(point[0])


class _Day:
    """The fixes of one person's day, written in time order."""

    def __init__(self, rng: random.Random, walker: Walker, start: datetime) -> None:
        self.rng = rng
        self.plan = PlannedDay(walker)
        self.at = start
        self.here = walker.start
        self.battery = rng.uniform(88.0, 100.0)

    def fix(self, point: tuple[float, float], *, speed: float, bearing: float | None, activity: str) -> IncomingFix:
        rng = self.rng
        moving = speed > 0.3
        accuracy = rng.uniform(4.0, 12.0) if moving else rng.uniform(6.0, 18.0)
        jitter = accuracy * 0.4
        lat, lon = _nudge(point, rng.gauss(0.0, jitter), rng.gauss(0.0, jitter))
        self.battery = max(5.0, self.battery - rng.uniform(0.02, 0.06))
        fix = IncomingFix(
            id=_uuid(rng),
            lat=round(lat, 7),
            lon=round(lon, 7),
            accuracy_m=round(accuracy, 1),
            captured_at=self.at,
            speed_mps=round(speed, 2) if moving else 0.0,
            bearing_deg=round(bearing, 1) if bearing is not None and moving else None,
            provider="fused",
            battery=round(self.battery, 1),
            charging=False,
            activity=activity,
        )
        self.plan.fixes.append(fix)
        return fix

    def stand(self, minutes: float, activity: str = "still") -> None:
        until = self.at + timedelta(minutes=minutes)
        while self.at < until:
            self.fix(self.here, speed=0.0, bearing=None, activity=activity)
            self.at += timedelta(seconds=STILL_EVERY_S * self.rng.uniform(0.9, 1.1))

    def walk(self, to: tuple[float, float]) -> None:
        distance = _distance_m(self.here, to)
        speed = self.rng.uniform(1.1, 1.5)
        seconds = distance / speed
        north = (to[0] - self.here[0]) * _M_PER_DEG_LAT
        east = (to[1] - self.here[1]) * _m_per_deg_lon(self.here[0])
        bearing = math.degrees(math.atan2(east, north)) % 360.0
        origin, elapsed = self.here, 0.0
        while elapsed < seconds:
            share = elapsed / seconds
            point = (origin[0] + (to[0] - origin[0]) * share, origin[1] + (to[1] - origin[1]) * share)
            self.fix(point, speed=speed * self.rng.uniform(0.85, 1.15), bearing=bearing, activity="walking")
            step = MOVING_EVERY_S * self.rng.uniform(0.9, 1.1)
            elapsed += step
            self.at += timedelta(seconds=step)
        self.at += timedelta(seconds=max(0.0, seconds - elapsed))
        self.here = to


def _next_place(day: _Day, todo: list[tuple[UUID, float, float]]) -> None:
    """Walk to the nearest place not yet seen and stay there (a visit, for a BD at a merchant); with none within
    reach, wander the patch (a walk and a pause)."""
    rng, walker = day.rng, day.plan.walker
    todo.sort(key=lambda place: (_distance_m(day.here, (place[1], place[2])), place[0].int))
    if not todo or _distance_m(day.here, (todo[0][1], todo[0][2])) > MAX_LEG_M:
        day.walk(_nudge(walker.start, rng.uniform(-400.0, 400.0), rng.uniform(-400.0, 400.0)))
        day.stand(rng.uniform(5.0, 15.0))
        return
    poi_id, lat, lon = todo.pop(0)
    # Arrive at the door (a few metres off the merchant's point), stay 12 to 30 minutes.
    day.walk(_nudge((lat, lon), rng.uniform(-8.0, 8.0), rng.uniform(-8.0, 8.0)))
    dwell = rng.uniform(12.0, 30.0)
    arrived = day.fix(day.here, speed=0.0, bearing=None, activity="still")
    day.at += timedelta(seconds=STILL_EVERY_S)
    day.stand(dwell - 2.0)
    leaving = day.fix(day.here, speed=0.0, bearing=None, activity="still")
    day.at += timedelta(seconds=STILL_EVERY_S)
    if walker.role == "bd":
        day.plan.visits.append(PlannedVisit(_uuid(rng), poi_id, arrived, leaving))


def plan_ahead(rng: random.Random, walker: Walker, *, start: datetime, hours: float) -> list[IncomingFix]:
    """Where someone goes from `start` on, for `hours` (no lunch, no gap): the path `groundwork simulate` plays."""
    day = _Day(rng, walker, start)
    end = start + timedelta(hours=hours)
    todo = list(walker.places)
    while day.at < end:
        _next_place(day, todo)
    return day.plan.fixes


def plan_day(rng: random.Random, walker: Walker, *, now: datetime) -> PlannedDay:
    """One person's day, from `DAY_HOURS` before the seed time to a few minutes before it."""
    end = now - END_BEFORE
    day = _Day(rng, walker, end - timedelta(hours=DAY_HOURS))
    begun = day.at
    day.stand(rng.uniform(8.0, 15.0))  # the morning at the office
    todo = list(walker.places)
    lunched = False
    while day.at < end - timedelta(minutes=40):
        if not lunched and day.at - begun >= LUNCH_AFTER:
            lunched = True
            spot = _nudge(day.here, rng.uniform(-250.0, 250.0), rng.uniform(-250.0, 250.0))
            day.walk(spot)
            lunch_start = day.at
            day.stand(rng.uniform(40.0, 50.0))
            day.plan.lunch = (lunch_start, day.at)
            # Location off from the middle of lunch until some way into the next walk.
            quiet = lunch_start + (day.at - lunch_start) / 2
            day.plan.gap = (quiet, quiet + timedelta(minutes=rng.uniform(22.0, 32.0)))
            continue
        _next_place(day, todo)
    while day.at < end:  # the last minutes: a short walk, then wherever that ends
        day.walk(_nudge(day.here, rng.uniform(-300.0, 300.0), rng.uniform(-300.0, 300.0)))
        day.stand((end - day.at).total_seconds() / 60.0 + 1.0)
    plan = day.plan
    plan.fixes = [fix for fix in plan.fixes if fix.captured_at < end]
    plan.visits = [visit for visit in plan.visits if visit.leaving.captured_at < end]
    if plan.gap is not None:
        plan.gap = _clear_of_visits(plan.gap, plan.visits)
        plan.fixes = _quiet(plan.fixes, plan.gap)
    return plan


def _clear_of_visits(gap: tuple[datetime, datetime], visits: list[PlannedVisit]) -> tuple[datetime, datetime]:
    """The gap ends before the next check-in: nobody checks in with location off."""
    start, end = gap
    for visit in visits:
        if start <= visit.arrived.captured_at <= end + timedelta(minutes=2):
            end = min(end, visit.arrived.captured_at - timedelta(minutes=2))
    return start, max(start + timedelta(minutes=11), end)


def _quiet(fixes: list[IncomingFix], gap: tuple[datetime, datetime]) -> list[IncomingFix]:
    """No fixes inside the gap; the last one before it says why (the phone reports location turned off)."""
    from dataclasses import replace

    kept = [fix for fix in fixes if not gap[0] <= fix.captured_at < gap[1]]
    before = [index for index, fix in enumerate(kept) if fix.captured_at < gap[0]]
    if before:
        kept[before[-1]] = replace(kept[before[-1]], event=GAP_CAUSE)
    return kept


def plan_days(walkers: Sequence[Walker], *, now: datetime, seed: int) -> list[PlannedDay]:
    """Everyone's day; the same walkers, seed time and seed give the same days."""
    rng = random.Random(seed)
    return [plan_day(random.Random(rng.getrandbits(64)), walker, now=now) for walker in walkers]


# ---------------------------------------------------------------------------------------------------------------
# Storing


async def walkers_of(
    conn: asyncpg.Connection, tenant_id: UUID, patches: dict[str, tuple[float, float]]
) -> list[Walker]:
    """The demo's BDs (their held merchants, from their team's patch) and technicians (the job sites)."""
    users = await conn.fetch(
        "SELECT u.id, u.team_id, u.role, t.name AS team FROM users u LEFT JOIN teams t"
        " ON t.tenant_id = u.tenant_id AND t.id = u.team_id"
        " WHERE u.tenant_id = $1 AND u.role IN ('bd', 'technician') ORDER BY u.username",
        tenant_id,
    )
    held = await conn.fetch(
        "SELECT holder_id, id, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon FROM pois"
        " WHERE tenant_id = $1 AND holder_id IS NOT NULL ORDER BY holder_id, id",
        tenant_id,
    )
    jobs = await conn.fetch(
        "SELECT id, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon FROM jobs"
        " WHERE tenant_id = $1 ORDER BY id",
        tenant_id,
    )
    by_holder: dict[UUID, list[tuple[UUID, float, float]]] = {}
    for row in held:
        by_holder.setdefault(row["holder_id"], []).append((row["id"], row["lat"], row["lon"]))
    sites = [(row["id"], row["lat"], row["lon"]) for row in jobs]
    walkers = []
    for user in users:
        if user["role"] == "bd":
            places = by_holder.get(user["id"], [])
            start = patches.get(user["team"] or "", places[0][1:] if places else (31.2304, 121.4737))
        else:
            places = sites
            start = (sites[0][1], sites[0][2]) if sites else (31.2304, 121.4737)
        walkers.append(Walker(user["id"], user["team_id"], user["role"], (start[0], start[1]), places))
    return walkers


@dataclass(frozen=True, slots=True)
class Seeded:
    people: int
    fixes: int
    visits: int


async def seed_movement(
    database_url: str, tenant_id: UUID, *, now: datetime, seed: int, patches: dict[str, tuple[float, float]]
) -> Seeded:
    """Store everyone's planned day through the tracking and visits services."""
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

    conn: asyncpg.Connection = await asyncpg.connect(database_url)
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        days = plan_days(await walkers_of(conn, tenant_id, patches), now=now, seed=seed)
        fixes = sum(len(day.fixes) for day in days)
        sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        for day in days:
            walker = day.walker
            who = Tracked(tenant_id=tenant_id, user_id=walker.user_id, team_id=walker.team_id, device_id="demo")
            # Uploaded as a phone does: every quarter of an hour, received a few seconds after the last fix.
            chunk: list[IncomingFix] = []
            for fix in day.fixes:
                if chunk and fix.captured_at - chunk[0].captured_at >= UPLOAD_EVERY:
                    await _upload(conn, who, chunk)
                    chunk = []
                chunk.append(fix)
            if chunk:
                await _upload(conn, who, chunk)
            if not day.visits:
                continue
            principal = Principal(
                user_id=walker.user_id,
                tenant_id=tenant_id,
                role=Role.BD,
                data_scope=DataScope.SELF,
                team_id=walker.team_id,
                device_id="demo",
                expires_at=(now + timedelta(hours=1)).timestamp(),
            )
            async with sessions() as session:
                for visit in day.visits:
                    arrived, leaving = visit.arrived, visit.leaving
                    checked_in = arrived.captured_at + timedelta(seconds=5)
                    check_in = CheckIn(id=visit.visit_id, poi_id=visit.poi_id, fix=_wire_fix(arrived))
                    await visits.check_in(
                        session,
                        principal,
                        check_in,
                        received_at=checked_in + timedelta(seconds=1),
                        action_at=checked_in,
                    )
                    checked_out = leaving.captured_at + timedelta(seconds=5)
                    await visits.check_out(
                        session,
                        principal,
                        visit.visit_id,
                        CheckOut(fix=_wire_fix(leaving)),
                        received_at=checked_out + timedelta(seconds=1),
                        action_at=checked_out,
                    )
                await session.commit()
        return Seeded(people=len(days), fixes=fixes, visits=sum(len(day.visits) for day in days))
    finally:
        await conn.close()
        await engine.dispose()


async def _upload(conn: asyncpg.Connection, who: Tracked, chunk: list[IncomingFix]) -> None:
    received = chunk[-1].captured_at + timedelta(seconds=4)
    await tracking.ingest(conn, who, chunk, received_at=received, source="app")


def _wire_fix(fix: IncomingFix) -> Fix:
    return Fix(lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m, captured_at=fix.captured_at, provider="fused")
