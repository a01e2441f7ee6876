"""The demo's day of movement (backend/demo/movement.py): deterministic, and shaped as a field day is: walks
between merchants with a visit at each, a lunch stop, a gap whose cause the phone gave, ending at the seed."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

from backend.demo.movement import DAY_HOURS, END_BEFORE, GAP_CAUSE, Walker, plan_days
from geo.distance import haversine_m

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai


def _walkers() -> list[Walker]:
    rng = random.Random(7)
    patch = (31.2317, 121.4846)
    places = [
        (uuid.UUID(int=rng.getrandbits(128)), patch[0] + rng.uniform(-0.02, 0.02), patch[1] + rng.uniform(-0.02, 0.02))
        for _ in range(12)
    ]
    return [
        Walker(uuid.UUID(int=1), None, "bd", patch, places),
        Walker(uuid.UUID(int=2), None, "bd", patch, []),  # holds nothing: wanders the patch
        Walker(uuid.UUID(int=3), None, "technician", places[0][1:], places[:4]),
    ]


def test_the_same_seed_gives_the_same_days() -> None:
    first = plan_days(_walkers(), now=NOW, seed=1)
    again = plan_days(_walkers(), now=NOW, seed=1)
    other = plan_days(_walkers(), now=NOW, seed=2)
    assert [day.fixes for day in first] == [day.fixes for day in again]
    assert [day.visits for day in first] == [day.visits for day in again]
    assert [day.fixes for day in first] != [day.fixes for day in other]


def test_a_day_of_walks_visits_lunch_and_a_gap() -> None:
    for day in plan_days(_walkers(), now=NOW, seed=3):
        times = [fix.captured_at for fix in day.fixes]
        assert times == sorted(times)
        assert NOW - END_BEFORE - timedelta(hours=DAY_HOURS) <= times[0]
        assert NOW - END_BEFORE - timedelta(minutes=3) <= times[-1] < NOW - END_BEFORE
        steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert max(steps) > 600  # the gap
        assert day.gap is not None
        assert day.lunch is not None
        assert (day.gap[1] - day.gap[0]) >= timedelta(minutes=11)
        assert not any(day.gap[0] <= time < day.gap[1] for time in times)
        quiet = [fix for fix in day.fixes if fix.event == GAP_CAUSE]
        assert len(quiet) == 1
        assert quiet[0].captured_at < day.gap[0]
        lunch = [fix for fix in day.fixes if day.lunch[0] <= fix.captured_at < day.gap[0]]
        assert lunch
        assert all(fix.activity == "still" for fix in lunch)
        # Walking pace between fixes: never a jump.
        for a, b in zip(day.fixes, day.fixes[1:], strict=False):
            seconds = (b.captured_at - a.captured_at).total_seconds()
            assert haversine_m(a.lat, a.lon, b.lat, b.lon) <= 2.0 * seconds + 60.0
    bd, idle, tech = plan_days(_walkers(), now=NOW, seed=3)
    assert len(bd.visits) >= 4
    assert idle.visits == []
    assert tech.visits == []
    places = {place[0]: place for place in bd.walker.places}
    for visit in bd.visits:
        _, lat, lon = places[visit.poi_id]
        assert haversine_m(lat, lon, visit.arrived.lat, visit.arrived.lon) < 40.0
        assert visit.leaving.captured_at - visit.arrived.captured_at >= timedelta(minutes=10)
    assert len({visit.poi_id for visit in bd.visits}) == len(bd.visits)
