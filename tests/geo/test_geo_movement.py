"""Stops, trips, gaps, presence and geofence events derived from a trail (geo.movement): properties over
generated trails, and the cases a supervisor reads the day for."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from geo.distance import destination, haversine_m
from geo.fence import CircleFence
from geo.movement import MovementPolicy, Place, derive, trail_order
from geo.stored_fix import StoredFix

SHOP = (31.2304, 121.4737)
T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
POLICY = MovementPolicy()


def _fix(n: int, at: datetime, lat: float, lon: float, accuracy_m: float = 8.0, **kw: object) -> StoredFix:
    return StoredFix(fix_id=UUID(int=n + 1), recorded_at=at, lat=lat, lon=lon, accuracy_m=accuracy_m, **kw)  # type: ignore[arg-type]


def _jitter(seed: int, count: int, radius_m: float, *, start: int = 0, every_s: float = 15.0) -> list[StoredFix]:
    rng = random.Random(seed)
    out = []
    for k in range(count):
        lat, lon = destination(*SHOP, rng.uniform(0, 360), rng.uniform(0, radius_m))
        out.append(_fix(start + k, T0 + timedelta(seconds=k * every_s), lat, lon, rng.uniform(4, 20)))
    return out


def _walk(
    start_n: int,
    origin: tuple[float, float],
    bearing: float,
    length_m: float,
    step_m: float,
    at: datetime,
    speed_mps: float = 1.4,
    seed: int = 0,
    noise_m: float = 0.0,
) -> list[StoredFix]:
    rng = random.Random(seed)
    steps = int(length_m // step_m)
    out = []
    for k in range(steps + 1):
        lat, lon = destination(*origin, bearing, k * step_m)
        if noise_m:
            lat, lon = destination(lat, lon, rng.uniform(0, 360), rng.uniform(0, noise_m))
        out.append(_fix(start_n + k, at + timedelta(seconds=k * step_m / speed_mps), lat, lon, 6.0))
    return out


def _total_trip_m(fixes: list[StoredFix]) -> float:
    return sum(trip.distance_m for trip in derive(fixes).trips)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(14, 120), radius=st.floats(1.0, 30.0))
def test_jitter_inside_the_radius_is_one_stop_and_no_distance(seed: int, count: int, radius: float) -> None:
    fixes = _jitter(seed, count, radius)
    day = derive(fixes)
    assert len(day.stops) == 1
    assert day.stops[0].fixes == count
    assert _total_trip_m(fixes) < 1.0
    assert haversine_m(day.stops[0].lat, day.stops[0].lon, *SHOP) <= radius


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    data=st.data(),
)
def test_the_day_depends_only_on_the_set_of_fixes(seed: int, data: st.DataObject) -> None:
    """Shuffled, duplicated and split-into-batches trails derive the same day."""
    fixes = [
        *_jitter(seed, 20, 20.0),
        *_walk(100, SHOP, 45.0, 800.0, 10.0, T0 + timedelta(minutes=6), seed=seed, noise_m=5.0),
    ]
    shop = Place("merchant", UUID(int=7), CircleFence(*SHOP, 60.0))
    reference = derive(fixes, [shop])
    shuffled = data.draw(st.permutations(fixes))
    repeats = data.draw(st.lists(st.sampled_from(fixes), max_size=30))
    assert derive([*shuffled, *repeats], [shop]) == reference


@settings(max_examples=30, deadline=None)
@given(
    bearing=st.floats(0.0, 359.0),
    length=st.floats(300.0, 3000.0),
    step=st.floats(3.0, 25.0),
    seed=st.integers(0, 1000),
)
def test_a_straight_walk_measures_its_length(bearing: float, length: float, step: float, seed: int) -> None:
    walk = _walk(0, SHOP, bearing, length, step, T0, seed=seed, noise_m=3.0)
    true_length = haversine_m(walk[0].lat, walk[0].lon, walk[-1].lat, walk[-1].lon)
    day = derive(walk)
    assert day.stops == []
    assert abs(_total_trip_m(walk) - true_length) <= max(0.03 * true_length, 15.0)


def test_stop_walk_stop_is_two_stops_and_one_trip_between() -> None:
    first = _jitter(1, 30, 10.0)
    walk = _walk(100, SHOP, 90.0, 600.0, 7.0, first[-1].recorded_at + timedelta(seconds=10))
    end = walk[-1]
    second = [
        _fix(500 + k, end.recorded_at + timedelta(seconds=15 * (k + 1)), *destination(end.lat, end.lon, 10 * k, 5.0))
        for k in range(20)
    ]
    day = derive([*first, *walk, *second])
    assert len(day.stops) == 2
    between = [trip for trip in day.trips if trip.from_stop == 0 and trip.to_stop == 1]
    assert len(between) == 1
    assert 550.0 <= between[0].distance_m <= 650.0


def test_one_outlier_does_not_end_a_stop() -> None:
    fixes = _jitter(2, 40, 10.0)
    far = destination(*SHOP, 0.0, 400.0)
    fixes[20] = _fix(20, fixes[20].recorded_at, *far)
    day = derive(fixes)
    assert len(day.stops) == 1
    assert day.stops[0].started_at == fixes[0].recorded_at
    assert day.stops[0].ended_at == fixes[-1].recorded_at


def test_a_short_pause_is_no_stop() -> None:
    fixes = _jitter(3, 8, 10.0)  # 105 s < min dwell
    assert derive(fixes).stops == []


def test_mocked_and_impossible_fixes_move_nothing() -> None:
    fixes = _jitter(4, 30, 10.0)
    far = destination(*SHOP, 0.0, 50_000.0)
    fixes[10] = _fix(10, fixes[10].recorded_at, *far, mock=True)
    fixes[11] = _fix(11, fixes[11].recorded_at, *far, reasons=("impossible_speed",))
    fixes[12] = _fix(12, fixes[12].recorded_at, *far, accuracy_m=2000.0)
    day = derive(fixes)
    assert len(day.stops) == 1
    assert _total_trip_m(fixes) < 1.0


def test_a_silence_is_a_gap_with_the_phones_cause() -> None:
    before = _jitter(5, 20, 10.0)
    last = before[-1]
    off = _fix(99, last.recorded_at + timedelta(seconds=5), *SHOP, accuracy_m=5000.0, event="location_off")
    after = [
        _fix(200 + k, last.recorded_at + timedelta(minutes=40, seconds=15 * k), *destination(*SHOP, 0, 3.0))
        for k in range(10)
    ]
    day = derive([*before, off, *after])
    assert len(day.gaps) == 1
    gap = day.gaps[0]
    assert gap.cause == "location_off"
    assert gap.started_at == last.recorded_at
    assert gap.ended_at == after[0].recorded_at
    # Standing at the same place across the silence: still one stop (iOS sends nothing while still).
    assert len(day.stops) == 1


def test_a_silence_without_a_cause_is_unknown() -> None:
    fixes = [_fix(0, T0, *SHOP), _fix(1, T0 + timedelta(hours=1), *destination(*SHOP, 0, 5000.0))]
    assert [gap.cause for gap in derive(fixes).gaps] == ["unknown"]


def test_presence_and_fence_events_at_a_merchant() -> None:
    shop = Place("merchant", UUID(int=7), CircleFence(*SHOP, 40.0))
    elsewhere = Place("merchant", UUID(int=8), CircleFence(*destination(*SHOP, 0, 3000.0), 40.0))
    approach = _walk(0, destination(*SHOP, 270.0, 500.0), 90.0, 500.0, 7.0, T0)
    stay = [
        _fix(300 + k, approach[-1].recorded_at + timedelta(seconds=15 * (k + 1)), *destination(*SHOP, 20 * k, 4.0))
        for k in range(40)
    ]
    leave = _walk(600, SHOP, 90.0, 500.0, 7.0, stay[-1].recorded_at + timedelta(seconds=10))
    day = derive([*approach, *stay, *leave], [shop, elsewhere])
    assert [(p.place_id, p.stop) for p in day.presence] == [(shop.id, 0)]
    assert [e.kind for e in day.events] == ["enter", "dwell", "exit"]
    assert all(e.place_id == shop.id for e in day.events)
    enter, dwell, exit_ = day.events
    assert enter.at < dwell.at < exit_.at
    assert (dwell.at - enter.at).total_seconds() >= POLICY.dwell_s


def test_trail_order_keeps_one_copy_of_each_fix() -> None:
    fixes = _jitter(6, 10, 5.0)
    assert trail_order([*reversed(fixes), *fixes]) == fixes


def test_no_usable_fix_is_an_empty_day() -> None:
    day = derive([_fix(0, T0, *SHOP, mock=True)])
    assert (day.stops, day.trips, day.gaps) == ([], [], [])


@st.composite
def _days(draw: st.DrawFn) -> list[StoredFix]:
    """A random day: stays (jitter of up to 25 m) and walks or drives in any direction, some silences, some
    mocked fixes and some poor ones."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    here = SHOP
    at = T0
    fixes: list[StoredFix] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            for _ in range(draw(st.integers(1, 40))):
                lat, lon = destination(*here, rng.uniform(0, 360), rng.uniform(0, 25))
                fixes.append(_fix(len(fixes), at, lat, lon, rng.uniform(3, 40), mock=rng.random() < 0.05))
                at += timedelta(seconds=rng.choice([5, 15, 30, 60]))
        else:
            bearing, speed = rng.uniform(0, 360), rng.choice([1.4, 4.0, 12.0])
            for _ in range(draw(st.integers(1, 40))):
                here = destination(*here, bearing, speed * 10)
                fixes.append(_fix(len(fixes), at, *here, accuracy_m=rng.choice([5.0, 10.0, 300.0])))
                at += timedelta(seconds=10)
        if draw(st.booleans()):
            at += timedelta(minutes=draw(st.integers(1, 40)))
    return fixes


@settings(max_examples=60, deadline=None)
@given(fixes=_days())
def test_what_any_day_derives_is_consistent(fixes: list[StoredFix]) -> None:
    shop = Place("merchant", UUID(int=7), CircleFence(*SHOP, 40.0))
    day = derive(fixes, [shop])
    for stop in day.stops:
        assert stop.dwell_s >= POLICY.min_dwell_s
    for before, after in zip(day.stops, day.stops[1:], strict=False):
        assert before.ended_at < after.started_at  # in time order, never overlapping
    for trip in day.trips:
        assert trip.distance_m >= 0.0
        assert trip.started_at <= trip.ended_at
        if trip.from_stop is not None:
            assert trip.started_at == day.stops[trip.from_stop].ended_at
        if trip.to_stop is not None:
            assert trip.ended_at == day.stops[trip.to_stop].started_at
    usable = [f for f in trail_order(fixes) if not f.mock and f.accuracy_m <= POLICY.max_accuracy_m]
    silences = [
        (a.recorded_at, b.recorded_at)
        for a, b in itertools.pairwise(usable)
        if (b.recorded_at - a.recorded_at).total_seconds() > POLICY.gap_s
    ]
    assert [(g.started_at, g.ended_at) for g in day.gaps] == silences
    for presence in day.presence:
        assert 0 <= presence.stop < len(day.stops)
        assert presence.confidence >= POLICY.presence_share
    kinds = [e.kind for e in day.events]
    inside = False
    for kind in kinds:  # enter, (dwell), exit, enter, ...
        assert kind != "enter" or not inside
        assert kind == "enter" or inside
        inside = kind != "exit"
