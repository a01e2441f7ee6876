"""A check-in judged against the trail (geo.trail): honest days never flag, teleports, quick exits and recordings
do, and only the set of fixes matters (order and duplicates never change the answer)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.distance import destination, haversine_m
from geo.fence import CircleFence, PolygonFence
from geo.stored_fix import StoredFix
from geo.trail import TrailCheckIn, TrailPolicy, TrailSignals, canonical_trail, judge_trail, outside_m, with_trail
from geo.verdict import Reason, VerdictPolicy, VerdictStatus

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
POLICY = TrailPolicy()
QUIET = TrailSignals()


def _fix(
    rng: random.Random, at: datetime, lat: float, lon: float, accuracy_m: float, *, mock: bool = False
) -> StoredFix:
    return StoredFix(
        fix_id=UUID(int=rng.getrandbits(128)), recorded_at=at, lat=lat, lon=lon, accuracy_m=accuracy_m, mock=mock
    )


def _jittered(rng: random.Random, lat: float, lon: float, accuracy_m: float) -> tuple[float, float]:
    """Honest GPS noise: a random offset within the accuracy radius, never exactly nothing."""
    return destination(lat, lon, rng.uniform(0.0, 360.0), rng.uniform(0.3, max(0.31, accuracy_m * 0.9)))


def _walk(
    rng: random.Random,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    begin: datetime,
    speed_mps: float,
    every_s: float,
    accuracy_m: float,
) -> tuple[list[StoredFix], datetime]:
    """Fixes of a walk from start to end at a steady speed; returns them and the arrival time."""
    length = haversine_m(*start, *end)
    duration = length / speed_mps
    bearing = _bearing(start, end)
    fixes = []
    t = 0.0
    while t < duration:
        lat, lon = destination(*start, bearing, speed_mps * t)
        fixes.append(_fix(rng, begin + timedelta(seconds=t), *_jittered(rng, lat, lon, accuracy_m), accuracy_m))
        t += every_s
    return fixes, begin + timedelta(seconds=duration)


def _stay(
    rng: random.Random, at: tuple[float, float], *, begin: datetime, end: datetime, every_s: float, accuracy_m: float
) -> list[StoredFix]:
    fixes = []
    t = begin
    while t < end:
        fixes.append(_fix(rng, t, *_jittered(rng, *at, accuracy_m), accuracy_m))
        t += timedelta(seconds=every_s)
    return fixes


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dl = math.radians(b[1] - a[1])
    y = math.sin(dl) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


@st.composite
def honest_days(draw: st.DrawFn) -> tuple[TrailCheckIn, list[StoredFix]]:
    """Walk to the shop from somewhere near, check in once inside, stay a while, walk on; honest jitter."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    shop = (draw(st.floats(-60.0, 60.0)), draw(st.floats(-179.0, 179.0)))
    radius = draw(st.floats(20.0, 120.0))
    polygon = draw(st.booleans())
    if polygon:
        half = radius / math.sqrt(2.0)
        corners = [destination(*shop, bearing, half * math.sqrt(2.0)) for bearing in (45.0, 135.0, 225.0, 315.0)]
        fence: CircleFence | PolygonFence = PolygonFence(exterior=tuple(corners))
        inner = half * 0.5
    else:
        fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=radius)
        inner = radius * 0.5
    accuracy = draw(st.floats(3.0, 30.0))
    every = draw(st.floats(1.0, 30.0))
    speed = draw(st.floats(0.8, 1.8))
    start = destination(*shop, draw(st.floats(0.0, 360.0)), draw(st.floats(150.0, 1500.0)))
    inside = destination(*shop, draw(st.floats(0.0, 360.0)), draw(st.floats(0.0, inner)))
    begin = T0 - timedelta(seconds=draw(st.floats(0.0, 3600.0)))
    walk, arrived = _walk(rng, start, inside, begin=begin, speed_mps=speed, every_s=every, accuracy_m=accuracy)
    checked_in = arrived + timedelta(seconds=draw(st.floats(0.0, 60.0)))
    leaves = checked_in + timedelta(seconds=draw(st.floats(POLICY.short_dwell_s + 30.0, 3600.0)))
    stay = _stay(rng, inside, begin=arrived, end=leaves, every_s=every, accuracy_m=accuracy)
    onward = destination(*shop, draw(st.floats(0.0, 360.0)), draw(st.floats(150.0, 1500.0)))
    away, _ = _walk(rng, inside, onward, begin=leaves, speed_mps=speed, every_s=every, accuracy_m=accuracy)
    return TrailCheckIn(fence=fence, at=checked_in), walk + stay + away


@settings(max_examples=150, deadline=None)
@given(honest_days())
def test_an_honest_walk_to_the_shop_and_a_stay_never_flags(day: tuple[TrailCheckIn, list[StoredFix]]) -> None:
    check_in, trail = day
    assert judge_trail(check_in, trail) == QUIET


@st.composite
def teleports(draw: st.DrawFn) -> tuple[TrailCheckIn, list[StoredFix]]:
    """The phone's trail is kilometres away around the check-in's time; the check-in claims the shop."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    shop = (draw(st.floats(-60.0, 60.0)), draw(st.floats(-179.0, 179.0)))
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=draw(st.floats(20.0, 150.0)))
    elsewhere = destination(*shop, draw(st.floats(0.0, 360.0)), draw(st.floats(20_000.0, 200_000.0)))
    accuracy = draw(st.floats(3.0, 50.0))
    every = draw(st.floats(5.0, 60.0))
    before = draw(st.floats(0.0, 600.0))
    after = draw(st.floats(0.0, 600.0))
    # Both sides of the check-in, so the person is seen there at least twice within ~4 minutes of it.
    trail = _stay(
        rng,
        elsewhere,
        begin=T0 - timedelta(seconds=before + every),
        end=T0 + timedelta(seconds=after + every),
        every_s=every,
        accuracy_m=accuracy,
    )
    return TrailCheckIn(fence=fence, at=T0), trail


@settings(max_examples=100, deadline=None)
@given(teleports())
def test_a_teleport_contradicts(case: tuple[TrailCheckIn, list[StoredFix]]) -> None:
    check_in, trail = case
    assert judge_trail(check_in, trail).trail_contradicts


@st.composite
def any_trails(draw: st.DrawFn) -> tuple[TrailCheckIn, list[StoredFix]]:
    return draw(st.one_of(honest_days(), teleports(), quick_exits(), replays()))


@settings(max_examples=100, deadline=None)
@given(any_trails(), st.randoms(use_true_random=False), st.data())
def test_only_the_set_of_fixes_matters(
    case: tuple[TrailCheckIn, list[StoredFix]], rng: random.Random, data: st.DataObject
) -> None:
    check_in, trail = case
    expected = judge_trail(check_in, trail)
    resent = [fix for fix in trail if data.draw(st.booleans(), label="resent")]
    shuffled = trail + resent
    rng.shuffle(shuffled)
    assert judge_trail(check_in, shuffled) == expected
    assert canonical_trail(shuffled) == canonical_trail(trail)


@st.composite
def quick_exits(draw: st.DrawFn) -> tuple[TrailCheckIn, list[StoredFix]]:
    """An honest arrival and check-in, then driving off within a minute."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    shop = (draw(st.floats(-60.0, 60.0)), draw(st.floats(-179.0, 179.0)))
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=draw(st.floats(20.0, 60.0)))
    accuracy = draw(st.floats(3.0, 20.0))
    every = draw(st.floats(1.0, 10.0))
    start = destination(*shop, draw(st.floats(0.0, 360.0)), draw(st.floats(150.0, 800.0)))
    walk, arrived = _walk(
        rng, start, shop, begin=T0 - timedelta(minutes=20), speed_mps=1.3, every_s=every, accuracy_m=accuracy
    )
    leaves = arrived + timedelta(seconds=draw(st.floats(0.0, 60.0)))
    stay = _stay(rng, shop, begin=arrived, end=leaves, every_s=every, accuracy_m=accuracy)
    onward = destination(*shop, draw(st.floats(0.0, 360.0)), 3000.0)
    drive, _ = _walk(
        rng, shop, onward, begin=leaves, speed_mps=draw(st.floats(8.0, 15.0)), every_s=every, accuracy_m=accuracy
    )
    return TrailCheckIn(fence=fence, at=arrived), walk + stay + drive


@settings(max_examples=100, deadline=None)
@given(quick_exits())
def test_leaving_at_once_is_a_short_dwell(case: tuple[TrailCheckIn, list[StoredFix]]) -> None:
    check_in, trail = case
    signals = judge_trail(check_in, trail)
    assert signals.short_dwell
    assert not signals.trail_contradicts
    assert not signals.playback


@st.composite
def replays(draw: st.DrawFn) -> tuple[TrailCheckIn, list[StoredFix]]:
    """An honest walk to the shop recorded hours ago, played back (same positions, same offsets) to check in."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    shop = (draw(st.floats(-60.0, 60.0)), draw(st.floats(-179.0, 179.0)))
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=50.0)
    every = draw(st.floats(1.0, 20.0))
    start = destination(*shop, draw(st.floats(0.0, 360.0)), draw(st.floats(300.0, 800.0)))
    shift = timedelta(seconds=draw(st.floats(1800.0, 5 * 3600.0)))
    recorded, arrived = _walk(
        rng, start, shop, begin=T0 - shift - timedelta(minutes=15), speed_mps=1.2, every_s=every, accuracy_m=8.0
    )
    recorded += _stay(rng, shop, begin=arrived, end=arrived + timedelta(minutes=10), every_s=every, accuracy_m=8.0)
    # The replay keeps the recording's positions and offsets; the player's clock adds milliseconds of its own.
    played = [
        replace(
            fix,
            fix_id=UUID(int=rng.getrandbits(128)),
            recorded_at=fix.recorded_at + shift + timedelta(milliseconds=rng.uniform(-300, 300)),
        )
        for fix in recorded
    ]
    return TrailCheckIn(fence=fence, at=arrived + shift + timedelta(seconds=30)), recorded + played


@settings(max_examples=100, deadline=None)
@given(replays())
def test_a_recording_played_back_is_playback(case: tuple[TrailCheckIn, list[StoredFix]]) -> None:
    check_in, trail = case
    assert judge_trail(check_in, trail).playback


def test_a_simulated_straight_line_without_jitter_is_playback() -> None:
    rng = random.Random(7)
    shop = (31.2304, 121.4737)
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=50.0)
    start = destination(*shop, 200.0, 600.0)
    trail = []
    for step in range(40):  # 1.5 m/s, a fix a second, no noise: what a route simulator interpolates
        lat = start[0] + (shop[0] - start[0]) * step / 40
        lon = start[1] + (shop[1] - start[1]) * step / 40
        trail.append(_fix(rng, T0 - timedelta(seconds=40 - step), lat, lon, 5.0))
    assert judge_trail(TrailCheckIn(fence=fence, at=T0), trail).playback


def test_a_phone_standing_still_repeating_its_cached_fix_is_no_recording() -> None:
    rng = random.Random(8)
    shop = (31.2304, 121.4737)
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=50.0)
    # The same cached position every 10 s for an hour before, and the same again this morning: honest.
    trail = [_fix(rng, T0 - timedelta(seconds=10 * n), *shop, 12.0) for n in range(360)]
    trail += [_fix(rng, T0 - timedelta(hours=3, seconds=10 * n), *shop, 12.0) for n in range(360)]
    assert judge_trail(TrailCheckIn(fence=fence, at=T0 - timedelta(minutes=50)), trail) == QUIET


def test_one_stray_jump_does_not_contradict_but_two_do() -> None:
    rng = random.Random(9)
    shop = (31.2304, 121.4737)
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=50.0)
    trail = _stay(
        rng, shop, begin=T0 - timedelta(minutes=10), end=T0 + timedelta(minutes=10), every_s=5.0, accuracy_m=10.0
    )
    far = destination(*shop, 90.0, 5000.0)
    one = [*trail, _fix(rng, T0 + timedelta(seconds=2), *far, 10.0)]
    assert judge_trail(TrailCheckIn(fence=fence, at=T0), one) == QUIET
    two = [*one, _fix(rng, T0 - timedelta(seconds=3), *far, 10.0)]
    assert judge_trail(TrailCheckIn(fence=fence, at=T0), two).trail_contradicts


def test_mocked_fixes_are_no_place_the_person_was() -> None:
    rng = random.Random(10)
    shop = (31.2304, 121.4737)
    fence = CircleFence(lat=shop[0], lon=shop[1], radius_m=50.0)
    far = destination(*shop, 90.0, 5000.0)
    trail = [_fix(rng, T0 + timedelta(seconds=s), *far, 10.0, mock=True) for s in (-5, -2, 2, 5)]
    assert judge_trail(TrailCheckIn(fence=fence, at=T0), trail) == QUIET


def test_an_empty_trail_says_nothing() -> None:
    fence = CircleFence(lat=1.0, lon=1.0, radius_m=50.0)
    assert judge_trail(TrailCheckIn(fence=fence, at=T0), []) == QUIET


def test_naive_times_are_refused() -> None:
    fence = CircleFence(lat=1.0, lon=1.0, radius_m=50.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        judge_trail(TrailCheckIn(fence=fence, at=datetime(2026, 1, 1)), [])  # noqa: DTZ001


def test_outside_counts_from_the_edge() -> None:
    fence = CircleFence(lat=0.0, lon=0.0, radius_m=100.0)
    assert outside_m(0.0, 0.0, fence) == 0.0
    assert outside_m(*destination(0.0, 0.0, 0.0, 150.0), fence) == pytest.approx(50.0, abs=0.01)


def test_trail_reasons_join_the_fix_s_own_and_replace_the_trail_s_earlier_ones() -> None:
    policy = VerdictPolicy()
    status, reasons = with_trail([Reason.STALE_FIX], 0.95, TrailSignals(short_dwell=True), policy)
    assert (status, reasons) == (VerdictStatus.UNCERTAIN, (Reason.STALE_FIX, Reason.SHORT_DWELL))
    status, reasons = with_trail(reasons, 0.95, TrailSignals(trail_contradicts=True), policy)
    assert (status, reasons) == (VerdictStatus.REJECTED, (Reason.STALE_FIX, Reason.TRAIL_CONTRADICTS))
    assert with_trail(reasons, 0.95, QUIET, policy) == (VerdictStatus.UNCERTAIN, (Reason.STALE_FIX,))
    assert with_trail([], 0.95, QUIET, policy) == (VerdictStatus.VERIFIED, ())
    assert with_trail([], 0.95, TrailSignals(playback=True), policy)[0] is VerdictStatus.REJECTED


def test_policy_validation() -> None:
    assert TrailPolicy.from_mapping({}) == POLICY
    assert TrailPolicy.from_mapping({"short_dwell_s": 300, "min_contradicting": 3}).min_contradicting == 3
    with pytest.raises(ValueError, match="unknown"):
        TrailPolicy.from_mapping({"nope": 1})
    with pytest.raises(ValueError, match="must be a number"):
        TrailPolicy.from_mapping({"window_s": True})
    with pytest.raises(ValueError, match="> 0"):
        TrailPolicy(window_s=-1.0)
    with pytest.raises(ValueError, match="whole number"):
        TrailPolicy(min_contradicting=1.5)  # type: ignore[arg-type]
    assert POLICY.reach >= timedelta(seconds=POLICY.window_s)
