"""What a person's trail says they did: stops, trips, gaps, presence at places and geofence events.

Pure: a list of `StoredFix` (WGS-84, trusted time) and the places to watch go in, plain data comes out. The
answer depends only on the SET of fixes: they are sorted by (trusted time, fix id) and a fix id seen twice
counts once, so late, duplicated and shuffled batches derive the same day as an in-order one.

- Which fixes say where someone was: not mocked ones, not ones no neighbour could reach (`impossible_speed`),
  not ones whose accuracy is worse than `max_accuracy_m`. The others stay evidence; they move nothing.
- A **stop**: consecutive fixes within `stop_radius_m` of their running centre (accuracy-aware: a fix may lie
  its own accuracy further out, up to `stop_radius_m` more), lasting at least `min_dwell_s`. Hysteresis: one
  lone fix outside the circle followed by one back inside is an outlier, not a departure; a departure needs two
  fixes in a row outside. A stop may span a silence of the phone (iOS sends nothing while the phone is still):
  the fix after the silence must be inside the circle.
- A **trip**: what lies between two stops (or before the first / after the last of the span). Its distance is
  noise-filtered: a step counts only once the fix has moved more than `min_step_m` and the two fixes' mean
  accuracy from the last counted point, so GPS jitter while standing still adds nothing, and a straight walk
  measures its length (less at most one threshold at its end, which the leg to the next stop recovers).
- A **gap**: more than `gap_s` without a usable fix. Its cause is what the phone said, on the fix before or after
  it (`event`): `permission`, `location_off`, `battery_saver`, `no_network`, else `unknown`.
- **Presence**: a stop at a place: at least `presence_share` of the stop's accuracy disc (its centre, radius its
  fixes' median accuracy) lies inside the place's fence (geo.fence.inside_share).
- **Geofence events**: `enter` when a fix is inside a fence with share >= `enter_share`, `exit` when one is at
  <= `exit_share` (hysteresis: the shares between change nothing), and `dwell` once per visit after `dwell_s`
  inside.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from geo.distance import haversine_m
from geo.fence import CircleFence, Fence, PolygonFence, inside_share
from geo.stored_fix import StoredFix

__all__ = [
    "GAP_CAUSES",
    "Day",
    "FenceEvent",
    "Gap",
    "MovementPolicy",
    "Place",
    "Presence",
    "Stop",
    "Trip",
    "derive",
    "gap_cause",
    "trail_order",
    "usable",
]

# The phone's words for why it went quiet, to one cause each. Unknown words are not a cause.
GAP_CAUSES: dict[str, str] = {
    "permission": "permission",
    "permission_revoked": "permission",
    "permission_denied": "permission",
    "location_off": "location_off",
    "location_disabled": "location_off",
    "providerchange": "location_off",
    "battery_saver": "battery_saver",
    "power_save": "battery_saver",
    "low_power": "battery_saver",
    "no_network": "no_network",
    "offline": "no_network",
}
UNKNOWN_CAUSE = "unknown"


@dataclass(frozen=True, slots=True)
class MovementPolicy:
    """The thresholds. Defaults fit people on foot and in town traffic with phone GPS (5-30 m accuracy)."""

    stop_radius_m: float = 50.0
    min_dwell_s: float = 180.0
    max_accuracy_m: float = 150.0
    min_step_m: float = 10.0
    gap_s: float = 600.0
    presence_share: float = 0.5
    enter_share: float = 0.6
    exit_share: float = 0.3
    dwell_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Place:
    """Something whose fence we watch: a merchant (`merchant`), a job site (`job_site`), a territory."""

    kind: str
    id: UUID
    fence: Fence


@dataclass(frozen=True, slots=True)
class Stop:
    started_at: datetime
    ended_at: datetime
    lat: float
    lon: float
    radius_m: float  # the median accuracy of its fixes: how well its place is known
    fixes: int

    @property
    def dwell_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Trip:
    started_at: datetime
    ended_at: datetime
    distance_m: float
    fixes: int
    from_stop: int | None  # index into Day.stops
    to_stop: int | None


@dataclass(frozen=True, slots=True)
class Gap:
    started_at: datetime
    ended_at: datetime
    cause: str


@dataclass(frozen=True, slots=True)
class Presence:
    stop: int  # index into Day.stops
    place_kind: str
    place_id: UUID
    started_at: datetime
    ended_at: datetime
    confidence: float


@dataclass(frozen=True, slots=True)
class FenceEvent:
    at: datetime
    kind: str  # enter | exit | dwell
    place_kind: str
    place_id: UUID


@dataclass(frozen=True, slots=True)
class Day:
    stops: list[Stop] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    presence: list[Presence] = field(default_factory=list)
    events: list[FenceEvent] = field(default_factory=list)


def trail_order(fixes: Iterable[StoredFix]) -> list[StoredFix]:
    """The fixes by (trusted time, fix id), each fix id once (its earliest copy): what every derivation reads."""
    ordered = sorted(fixes, key=lambda fix: (fix.recorded_at, fix.fix_id.bytes))
    seen: set[UUID] = set()
    out = []
    for fix in ordered:
        if fix.fix_id not in seen:
            seen.add(fix.fix_id)
            out.append(fix)
    return out


def usable(fix: StoredFix, policy: MovementPolicy) -> bool:
    """Whether the fix says where the person was (see the module's docstring)."""
    return (
        not fix.mock
        and "impossible_speed" not in fix.reasons
        and math.isfinite(fix.accuracy_m)
        and fix.accuracy_m <= policy.max_accuracy_m
    )


def gap_cause(before: StoredFix | None, after: StoredFix | None) -> str:
    for fix in (before, after):
        if fix is not None and fix.event is not None:
            cause = GAP_CAUSES.get(fix.event.lower())
            if cause is not None:
                return cause
    return UNKNOWN_CAUSE


def derive(fixes: Iterable[StoredFix], places: Sequence[Place] = (), policy: MovementPolicy | None = None) -> Day:
    """Stops, trips, gaps, presence and geofence events of a span of trail (see the module's docstring)."""
    policy = policy or MovementPolicy()
    trail = trail_order(fixes)
    good = [fix for fix in trail if usable(fix, policy)]
    if not good:
        return Day()
    gaps = _gaps(trail, good, policy)
    spans = _stop_spans(good, policy)
    stops = [_stop(good[a : b + 1]) for a, b in spans]
    trips = _trips(good, spans, stops, policy)
    presence = _presence(stops, places, policy)
    events = _events(good, places, policy)
    return Day(stops=stops, trips=trips, gaps=gaps, presence=presence, events=events)


# ---------------------------------------------------------------------------------------------------------------


def _gaps(trail: list[StoredFix], good: list[StoredFix], policy: MovementPolicy) -> list[Gap]:
    """Silences between usable fixes; the cause is read from any fix (usable or not) around the silence."""
    by_id = {fix.fix_id: index for index, fix in enumerate(trail)}
    gaps = []
    for before, after in itertools.pairwise(good):
        if (after.recorded_at - before.recorded_at).total_seconds() <= policy.gap_s:
            continue
        # The phone may have said why on an unusable fix inside the silence (a coarse "location_off" fix).
        start, end = by_id[before.fix_id], by_id[after.fix_id]
        cause = UNKNOWN_CAUSE
        for fix in trail[start : end + 1]:
            cause = gap_cause(fix, None)
            if cause != UNKNOWN_CAUSE:
                break
        gaps.append(Gap(started_at=before.recorded_at, ended_at=after.recorded_at, cause=cause))
    return gaps


class _Centre:
    """The running centre of a stop's fixes, weighted by 1 / accuracy^2 in a plane around the first fix."""

    def __init__(self, first: StoredFix) -> None:
        self.lat0 = first.lat
        self.lon0 = first.lon
        self.cos0 = math.cos(math.radians(first.lat))
        self.sx = 0.0
        self.sy = 0.0
        self.sw = 0.0
        self.add(first)

    def add(self, fix: StoredFix) -> None:
        weight = 1.0 / max(fix.accuracy_m, 3.0) ** 2
        dlon = (fix.lon - self.lon0 + 180.0) % 360.0 - 180.0
        self.sx += weight * dlon * self.cos0
        self.sy += weight * (fix.lat - self.lat0)
        self.sw += weight

    @property
    def point(self) -> tuple[float, float]:
        lat = self.lat0 + self.sy / self.sw
        lon = self.lon0 + self.sx / self.sw / (self.cos0 if self.cos0 > 1e-9 else 1e-9)
        return lat, (lon + 180.0) % 360.0 - 180.0

    def reaches(self, fix: StoredFix, policy: MovementPolicy) -> bool:
        lat, lon = self.point
        allowance = policy.stop_radius_m + min(fix.accuracy_m, policy.stop_radius_m)
        return haversine_m(lat, lon, fix.lat, fix.lon) <= allowance


def _stop_spans(good: list[StoredFix], policy: MovementPolicy) -> list[tuple[int, int]]:
    """(first, last) indexes into `good` of each stop, in time order."""
    spans: list[tuple[int, int]] = []
    start = 0
    count = len(good)
    while start < count:
        centre = _Centre(good[start])
        last = start
        index = start + 1
        while index < count:
            fix = good[index]
            if centre.reaches(fix, policy):
                centre.add(fix)
                last = index
                index += 1
                continue
            # Hysteresis: one fix out and the next back in is an outlier, not a departure.
            if index + 1 < count and centre.reaches(good[index + 1], policy):
                index += 1
                continue
            break
        first, last = _trim(good, start, last, policy)
        if first <= last and (good[last].recorded_at - good[first].recorded_at).total_seconds() >= policy.min_dwell_s:
            spans.append((first, last))
            start = last + 1
        else:
            start += 1
    return spans


def _trim(good: list[StoredFix], first: int, last: int, policy: MovementPolicy) -> tuple[int, int]:
    """Drop the approach and the departure from a stop: the running centre lags behind someone walking in, so
    the first and last fixes of a cluster can be the walk; those farther than `stop_radius_m` from the
    cluster's final centre are the trip's."""
    for _ in range(2):
        centre = _Centre(good[first])
        for fix in good[first + 1 : last + 1]:
            centre.add(fix)
        lat, lon = centre.point
        while first < last and haversine_m(lat, lon, good[first].lat, good[first].lon) > policy.stop_radius_m:
            first += 1
        while last > first and haversine_m(lat, lon, good[last].lat, good[last].lon) > policy.stop_radius_m:
            last -= 1
    return first, last


def _stop(fixes: list[StoredFix]) -> Stop:
    centre = _Centre(fixes[0])
    for fix in fixes[1:]:
        centre.add(fix)
    lat, lon = centre.point
    return Stop(
        started_at=fixes[0].recorded_at,
        ended_at=fixes[-1].recorded_at,
        lat=lat,
        lon=lon,
        radius_m=float(statistics.median(fix.accuracy_m for fix in fixes)),
        fixes=len(fixes),
    )


def _trips(
    good: list[StoredFix], spans: list[tuple[int, int]], stops: list[Stop], policy: MovementPolicy
) -> list[Trip]:
    """The stretches between stops. A trip leaves from the last fix of the stop it leaves and reaches the first
    fix of the next (or starts / ends with the span); its distance runs from stop centre to stop centre."""
    last_index = len(good) - 1
    bounds: list[tuple[int, int, int | None, int | None]] = []
    if not spans:
        bounds.append((0, last_index, None, None))
    else:
        if spans[0][0] > 0:
            bounds.append((0, spans[0][0], None, 0))
        bounds.extend((spans[n - 1][1], spans[n][0], n - 1, n) for n in range(1, len(spans)))
        if spans[-1][1] < last_index:
            bounds.append((spans[-1][1], last_index, len(spans) - 1, None))
    trips = []
    for begin, end, from_stop, to_stop in bounds:
        if end <= begin:
            continue
        points = [(fix.lat, fix.lon, fix.accuracy_m) for fix in good[begin : end + 1]]
        if from_stop is not None:
            points[0] = (stops[from_stop].lat, stops[from_stop].lon, stops[from_stop].radius_m)
        if to_stop is not None:
            points[-1] = (stops[to_stop].lat, stops[to_stop].lon, stops[to_stop].radius_m)
        trips.append(
            Trip(
                started_at=good[begin].recorded_at,
                ended_at=good[end].recorded_at,
                distance_m=_filtered_distance(points, policy),
                fixes=end - begin + 1,
                from_stop=from_stop,
                to_stop=to_stop,
            )
        )
    return trips


def _filtered_distance(points: list[tuple[float, float, float]], policy: MovementPolicy) -> float:
    """Distance along (lat, lon, accuracy) points, counting a step only past the noise (see the module's
    docstring). The last point always counts: it is where the trip ended."""
    anchor = points[0]
    total = 0.0
    for point in points[1:-1]:
        step = haversine_m(anchor[0], anchor[1], point[0], point[1])
        if step > max(policy.min_step_m, (anchor[2] + point[2]) / 2.0):
            total += step
            anchor = point
    end = points[-1]
    total += haversine_m(anchor[0], anchor[1], end[0], end[1])
    return total


def _presence(stops: list[Stop], places: Sequence[Place], policy: MovementPolicy) -> list[Presence]:
    found = []
    for number, stop in enumerate(stops):
        for place in places:
            if not _near(stop.lat, stop.lon, stop.radius_m, place):
                continue
            share = inside_share(stop.lat, stop.lon, stop.radius_m, place.fence)
            if share >= policy.presence_share:
                found.append(
                    Presence(
                        stop=number,
                        place_kind=place.kind,
                        place_id=place.id,
                        started_at=stop.started_at,
                        ended_at=stop.ended_at,
                        confidence=round(share, 4),
                    )
                )
    found.sort(key=lambda p: (p.stop, -p.confidence, p.place_kind, p.place_id.bytes))
    return found


def _events(good: list[StoredFix], places: Sequence[Place], policy: MovementPolicy) -> list[FenceEvent]:
    events = []
    for place in places:
        inside_since: datetime | None = None
        dwelt = False
        for fix in good:
            if not _near(fix.lat, fix.lon, fix.accuracy_m, place):
                share = 0.0
            else:
                share = inside_share(fix.lat, fix.lon, fix.accuracy_m, place.fence)
            if inside_since is None:
                if share >= policy.enter_share:
                    inside_since = fix.recorded_at
                    dwelt = False
                    events.append(FenceEvent(fix.recorded_at, "enter", place.kind, place.id))
                continue
            if share <= policy.exit_share:
                events.append(FenceEvent(fix.recorded_at, "exit", place.kind, place.id))
                inside_since = None
                continue
            if not dwelt and (fix.recorded_at - inside_since).total_seconds() >= policy.dwell_s:
                dwelt = True
                events.append(FenceEvent(fix.recorded_at, "dwell", place.kind, place.id))
    events.sort(key=lambda e: (e.at, e.place_kind, e.place_id.bytes, _EVENT_ORDER[e.kind]))
    return events


_EVENT_ORDER = {"exit": 0, "enter": 1, "dwell": 2}


def _near(lat: float, lon: float, accuracy_m: float, place: Place) -> bool:
    """A cheap test before the exact share: could the disc reach the fence at all?"""
    centre_lat, centre_lon, reach = _bounds(place.fence)
    return haversine_m(lat, lon, centre_lat, centre_lon) <= reach + accuracy_m


def _bounds(fence: Fence) -> tuple[float, float, float]:
    if isinstance(fence, CircleFence):
        return fence.lat, fence.lon, fence.radius_m
    return _polygon_bounds(fence)


_POLYGON_BOUNDS: dict[PolygonFence, tuple[float, float, float]] = {}


def _polygon_bounds(fence: PolygonFence) -> tuple[float, float, float]:
    known = _POLYGON_BOUNDS.get(fence)
    if known is None:
        lat = sum(v[0] for v in fence.exterior) / len(fence.exterior)
        lon = fence.exterior[0][1]
        reach = max(haversine_m(lat, lon, v[0], v[1]) for v in fence.exterior)
        known = (lat, lon, reach)
        if len(_POLYGON_BOUNDS) > 10_000:
            _POLYGON_BOUNDS.clear()
        _POLYGON_BOUNDS[fence] = known
    return known
