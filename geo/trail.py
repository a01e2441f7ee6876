"""A check-in judged against the person's trail: does the movement around it bear the claim out?

`geo.verdict.judge` weighs one fix against a fence. This module weighs the check-in against the fixes the phone's
tracker recorded around it (`StoredFix`, as backend/tracking/queries.py's `fixes_between` returns them), and says
three things a single fix cannot:

- `trail_contradicts`: fixes close in time place the person so far from the fence that no believable speed
  (`max_speed_mps`, the check-in's own speed limit) could have brought them there by the check-in's time, or
  away from it since. Each fix's accuracy radius is forgiven, and one fix alone never contradicts (one stray GPS
  jump is not a person): at least `min_contradicting` of them must.
- `short_dwell`: the person left at once: within `short_dwell_s` after the check-in the trail is clearly outside
  the fence (the whole accuracy disc and `leave_margin_m` beyond it), for two fixes in a row. Not said when the
  trail contradicts the check-in (who was never there did not leave).
- `playback`: the trail is a recording played back: a run of `repeat_min_fixes` fixes around the check-in repeats
  an earlier run of this person's trail coordinate for coordinate (to 1e-7 degrees) with the same time offsets,
  or `rigid_min_steps` steps in a row move by the very same vector at the same interval (a simulator's straight
  line, no jitter at all). Conservative on purpose: a phone standing still that repeats its cached position is
  not a recording (every run must move), and honest GPS never repeats to the centimetre while moving.

The answer depends only on the set of fixes: they are deduplicated by fix id and ordered by (trusted time, fix
id), so arrival order, batch splits and resends never change it. Mocked fixes are evidence of mocking (the fix's
own verdict says so), never a place the person was: they are left out here. Pure: no clock, no database.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from geo.distance import EARTH_RADIUS_M, haversine_m, validate_lat_lon
from geo.fence import CircleFence, Fence, distance_to_fence_m
from geo.stored_fix import StoredFix
from geo.verdict import Reason, VerdictPolicy, VerdictStatus, status_for

__all__ = [
    "TRAIL_REASONS",
    "TrailCheckIn",
    "TrailPolicy",
    "TrailSignals",
    "canonical_trail",
    "judge_trail",
    "outside_m",
    "with_trail",
]

# The reasons this module gives, in `Reason` order; any other reason of a verdict is the fix's own.
TRAIL_REASONS = (Reason.TRAIL_CONTRADICTS, Reason.SHORT_DWELL, Reason.PLAYBACK)


@dataclass(frozen=True, slots=True)
class TrailPolicy:
    """Thresholds of `judge_trail`; a tenant may override any of them (`from_mapping`)."""

    window_s: float = 1800.0
    """Fixes within this long of the check-in (either side) speak for or against it."""

    max_speed_mps: float = 70.0
    """Fastest believable travel (the check-in's `impossible_speed` limit): a fix further from the fence than this
    speed covers in the time between is a contradiction."""

    min_contradicting: int = 2
    """How many fixes must contradict the check-in: one alone may be a stray jump of the GPS."""

    short_dwell_s: float = 180.0
    """Leaving the fence sooner than this after checking in is `short_dwell`."""

    leave_margin_m: float = 25.0
    """A fix is clearly outside when its whole accuracy disc and this margin lie outside the fence."""

    playback_lookback_s: float = 6 * 3600.0
    """How far back the trail is searched for the run a recording repeats."""

    repeat_min_fixes: int = 5
    """A repeated run is this many fixes long at least, over at least three distinct positions."""

    repeat_min_shift_s: float = 300.0
    """The repeat lies at least this long before the run it repeats (a resend of the same fixes is not one)."""

    repeat_time_tolerance_s: float = 2.0
    """Time offsets within a run must agree to this (trusted times are derived from ages, in milliseconds)."""

    rigid_min_steps: int = 10
    """This many steps in a row by the same vector (each at least 1 m) and the same interval is a simulator."""

    rigid_tolerance_m: float = 0.01
    """Two steps are the same vector when they differ by less than this (honest GPS jitters by decimetres)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field.name} must be a finite number > 0, got {value!r}")
        for name in ("min_contradicting", "repeat_min_fixes", "rigid_min_steps"):
            if int(getattr(self, name)) != getattr(self, name):
                raise ValueError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        if self.repeat_min_fixes < 3:
            raise ValueError(f"repeat_min_fixes must be at least 3, got {self.repeat_min_fixes!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> TrailPolicy:
        """Build a policy from settings; missing keys keep their defaults. ValueError names a bad field."""
        known = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown trail policy field(s): {', '.join(unknown)}")
        values: dict[str, float | int] = {}
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {type(value).__name__}")
            values[name] = int(value) if known[name].type in (int, "int") and value == int(value) else value
        return cls(**values)  # type: ignore[arg-type]

    @property
    def reach(self) -> timedelta:
        """How far from a check-in's time a fix can change its trail verdict (either side): a late fix in this
        range of a check-in is a reason to judge the check-in again."""
        return timedelta(seconds=max(self.window_s, self.playback_lookback_s + self.window_s))


@dataclass(frozen=True, slots=True)
class TrailCheckIn:
    """What of a check-in the trail is weighed against: where it claims to be and when (the trusted time)."""

    fence: Fence
    at: datetime


@dataclass(frozen=True, slots=True)
class TrailSignals:
    """What the trail says about a check-in; `reasons` in `Reason` order."""

    trail_contradicts: bool = False
    short_dwell: bool = False
    playback: bool = False

    @property
    def reasons(self) -> tuple[Reason, ...]:
        flags = (self.trail_contradicts, self.short_dwell, self.playback)
        return tuple(reason for reason, flag in zip(TRAIL_REASONS, flags, strict=True) if flag)


def with_trail(
    reasons: Iterable[Reason], confidence: float, signals: TrailSignals, policy: VerdictPolicy
) -> tuple[VerdictStatus, tuple[Reason, ...]]:
    """A verdict's status and reasons once the trail has spoken: the fix's own reasons stay, the trail's earlier
    reasons give way to `signals`, and the status follows from the whole (geo.verdict.status_for)."""
    combined = {reason for reason in reasons if reason not in TRAIL_REASONS} | set(signals.reasons)
    ordered = tuple(reason for reason in Reason if reason in combined)
    return status_for(ordered, confidence, policy), ordered


def canonical_trail(fixes: Iterable[StoredFix]) -> list[StoredFix]:
    """The fixes as a set: one per fix id (the least by value, should two differ), ordered by (time, fix id)."""
    chosen: dict[object, StoredFix] = {}
    for fix in fixes:
        current = chosen.get(fix.fix_id)
        if current is None or _sort_key(fix) < _sort_key(current):
            chosen[fix.fix_id] = fix
    return sorted(chosen.values(), key=_sort_key)


def _sort_key(fix: StoredFix) -> tuple[datetime, str, float, float, float]:
    return (fix.recorded_at, str(fix.fix_id), fix.lat, fix.lon, fix.accuracy_m)


def judge_trail(check_in: TrailCheckIn, fixes: Iterable[StoredFix], policy: TrailPolicy | None = None) -> TrailSignals:
    """Judge a check-in against the trail around it. `fixes` may hold anything the caller has (a wider range,
    duplicates, any order): only the set matters, and only fixes within the policy's ranges are read."""
    policy = policy or TrailPolicy()
    if check_in.at.tzinfo is None or check_in.at.utcoffset() is None:
        raise ValueError(f"check_in.at must be a timezone-aware datetime, got naive {check_in.at.isoformat()}")
    window = timedelta(seconds=policy.window_s)
    earliest = check_in.at - timedelta(seconds=policy.playback_lookback_s) - window
    trail = [fix for fix in canonical_trail(fixes) if not fix.mock and earliest <= fix.recorded_at]
    for fix in trail:
        validate_lat_lon(fix.lat, fix.lon)
    near = [fix for fix in trail if abs(fix.recorded_at - check_in.at) <= window]
    contradicts = _contradicts(check_in, near, policy)
    return TrailSignals(
        trail_contradicts=contradicts,
        # Someone the trail never places there did not leave at once: the contradiction says all.
        short_dwell=not contradicts and _short_dwell(check_in, near, policy),
        playback=_repeats_earlier(check_in, trail, near, policy) or _rigid(near, policy),
    )


def outside_m(lat: float, lon: float, fence: Fence) -> float:
    """How far the point lies outside the fence (0 inside): a circle's distance counts from its edge."""
    if isinstance(fence, CircleFence):
        return max(0.0, haversine_m(lat, lon, fence.lat, fence.lon) - fence.radius_m)
    return distance_to_fence_m(lat, lon, fence)


def _contradicts(check_in: TrailCheckIn, near: list[StoredFix], policy: TrailPolicy) -> bool:
    count = 0
    for fix in near:
        elapsed_s = max(abs((fix.recorded_at - check_in.at).total_seconds()), 1.0)
        gap_m = outside_m(fix.lat, fix.lon, check_in.fence) - fix.accuracy_m
        if gap_m > policy.max_speed_mps * elapsed_s:
            count += 1
            if count >= policy.min_contradicting:
                return True
    return False


def _short_dwell(check_in: TrailCheckIn, near: list[StoredFix], policy: TrailPolicy) -> bool:
    after = [fix for fix in near if fix.recorded_at > check_in.at]
    for first, second in itertools.pairwise(after):
        if (first.recorded_at - check_in.at).total_seconds() >= policy.short_dwell_s:
            return False
        if _clearly_outside(first, check_in.fence, policy) and _clearly_outside(second, check_in.fence, policy):
            return True
    return False


def _clearly_outside(fix: StoredFix, fence: Fence, policy: TrailPolicy) -> bool:
    return outside_m(fix.lat, fix.lon, fence) > fix.accuracy_m + policy.leave_margin_m


def _position_key(fix: StoredFix) -> tuple[int, int]:
    return (round(fix.lat * 1e7), round(fix.lon * 1e7))


def _repeats_earlier(
    check_in: TrailCheckIn, trail: list[StoredFix], near: list[StoredFix], policy: TrailPolicy
) -> bool:
    """Whether a run of `repeat_min_fixes` fixes near the check-in repeats an earlier run, position for position
    and offset for offset. Runs are found by hashing their positions, so a long trail costs one pass."""
    k = int(policy.repeat_min_fixes)
    if len(near) < k:
        return False
    keys = [_position_key(fix) for fix in trail]
    starts: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for start in range(len(trail) - k + 1):
        run = tuple(keys[start : start + k])
        if len(set(run)) >= 3:  # a phone standing still repeats its cached position honestly
            starts.setdefault(run, []).append(start)
    first_near = trail.index(near[0])
    shift = timedelta(seconds=policy.repeat_min_shift_s)
    for start in range(first_near, first_near + len(near) - k + 1):
        run = tuple(keys[start : start + k])
        for earlier in starts.get(run, ()):
            if trail[start].recorded_at - trail[earlier].recorded_at < shift:
                break  # the list is in time order: every later candidate is closer still
            if _same_offsets(trail, earlier, start, k, policy.repeat_time_tolerance_s):
                return True
    return False


def _same_offsets(trail: list[StoredFix], a: int, b: int, k: int, tolerance_s: float) -> bool:
    for step in range(1, k):
        offset_a = (trail[a + step].recorded_at - trail[a].recorded_at).total_seconds()
        offset_b = (trail[b + step].recorded_at - trail[b].recorded_at).total_seconds()
        if abs(offset_a - offset_b) > tolerance_s:
            return False
    return True


def _rigid(near: list[StoredFix], policy: TrailPolicy) -> bool:
    """Whether `rigid_min_steps` steps in a row share one vector (to `rigid_tolerance_m`) and one interval."""
    run = 0
    previous: tuple[float, float, float] | None = None
    for a, b in itertools.pairwise(near):
        step = _step(a, b)
        moved = math.hypot(step[0], step[1]) >= 1.0
        if not moved:
            run, previous = 0, None
            continue
        if (
            previous is not None
            and math.hypot(step[0] - previous[0], step[1] - previous[1]) < policy.rigid_tolerance_m
            and abs(step[2] - previous[2]) < 0.5
        ):
            run += 1
        else:
            run = 1
        previous = step
        if run >= policy.rigid_min_steps:
            return True
    return False


def _step(a: StoredFix, b: StoredFix) -> tuple[float, float, float]:
    """(east m, north m, seconds) from a to b, in the plane tangent at a."""
    dlon = (b.lon - a.lon + 180.0) % 360.0 - 180.0
    x = EARTH_RADIUS_M * math.radians(dlon) * math.cos(math.radians(a.lat))
    y = EARTH_RADIUS_M * math.radians(b.lat - a.lat)
    return x, y, (b.recorded_at - a.recorded_at).total_seconds()
