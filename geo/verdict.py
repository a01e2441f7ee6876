"""The server's judgment of a location claim: a fix against a fence, under a policy, as a verdict with reasons.

A check-in, an arrival or a location verification is never a bare yes/no (see CONTRACT.md, "Verdicts"). `judge`
weighs the fix's accuracy disc against the fence (`confidence`), and the fix's credibility: the OS mock flag, how
old it was when the action happened, whether the phone's clock can be believed, and whether the person could have
travelled here from their previous trusted position. Pure functions: the caller supplies times and the prior fix.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from geo.distance import haversine_m, validate_lat_lon
from geo.fence import Fence, distance_to_fence_m, inside_share

__all__ = [
    "Fix",
    "PriorFix",
    "Reason",
    "Verdict",
    "VerdictPolicy",
    "VerdictStatus",
    "judge",
    "status_for",
    "trusted_capture_time",
]


@dataclass(frozen=True, slots=True)
class Fix:
    """A location fix as the phone sent it, already converted to WGS-84.

    `captured_at` is the phone's wall-clock capture time (timezone-aware). `age_ms` is the fix's age when the
    request was sent, from a monotonic clock; with it the server can tell when the fix was taken without trusting
    the phone's clock. `provider` and `speed_mps` are carried as evidence; `judge` does not use them.
    """

    lat: float
    lon: float
    accuracy_m: float
    captured_at: datetime
    is_mock: bool = False
    age_ms: int | None = None
    provider: str | None = None
    speed_mps: float | None = None


@dataclass(frozen=True, slots=True)
class PriorFix:
    """The user's previous trusted position and when it was taken (server time), for the travel-speed check."""

    lat: float
    lon: float
    accuracy_m: float
    at: datetime


@dataclass(frozen=True, slots=True)
class VerdictPolicy:
    """Thresholds for `judge`; a tenant may override any of them (see `from_mapping`)."""

    verified_min_confidence: float = 0.8
    """Confidence needed for `verified`; below it the verdict carries `outside_geofence`."""

    uncertain_min_confidence: float = 0.3
    """Below this confidence the fix is `outside_geofence` and the claim is `rejected`, not merely `uncertain`."""

    max_accuracy_m: float = 150.0
    """Accuracy radius beyond which the fix is `low_accuracy`: at best `uncertain`, however it overlaps the fence."""

    max_speed_mps: float = 70.0
    """Fastest believable travel from the prior fix (70 m/s is about 250 km/h, a fast train); faster is
    `impossible_speed` and `rejected`."""

    stale_after_s: float = 120.0
    """A fix further than this from the moment of the action is `stale_fix` (`uncertain`): it shows where the phone
    was, not where the action happened."""

    max_clock_skew_s: float = 300.0
    """When the phone's wall-clock capture time and the server-derived one (from `age_ms`) differ by more than this,
    the verdict carries `clock_skew` (`uncertain`) and the derived time is used for everything else."""

    future_tolerance_s: float = 30.0
    """A fix whose capture time is later than its arrival at the server by more than this is `future_fix` and
    `rejected`: no honest phone reports a position it has not had yet."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number, got {value!r}")
        if not 0.0 < self.verified_min_confidence <= 1.0:
            raise ValueError(f"verified_min_confidence must be in (0, 1], got {self.verified_min_confidence!r}")
        if not 0.0 <= self.uncertain_min_confidence <= self.verified_min_confidence:
            raise ValueError(
                "uncertain_min_confidence must be in [0, verified_min_confidence], "
                f"got {self.uncertain_min_confidence!r} (verified_min_confidence={self.verified_min_confidence!r})"
            )
        for name in ("max_accuracy_m", "max_speed_mps", "stale_after_s", "max_clock_skew_s"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.future_tolerance_s >= 0.0:
            raise ValueError(f"future_tolerance_s must be >= 0, got {self.future_tolerance_s!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> VerdictPolicy:
        """Build a policy from settings (e.g. a tenant's JSON); missing keys keep their defaults.

        Raises ValueError naming the field for an unknown key, a non-number (booleans included: JSON `true` is
        not a threshold) or an out-of-range value.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown verdict policy field(s): {', '.join(unknown)}")
        values: dict[str, float] = {}
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {type(value).__name__}")
            values[name] = float(value)
        return cls(**values)

    def as_dict(self) -> dict[str, float]:
        """The policy as plain data, every field present; `from_mapping(p.as_dict()) == p`."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


class VerdictStatus(enum.StrEnum):
    """`rejected` claims are still stored as evidence; `uncertain` ones are for a person to review."""

    VERIFIED = "verified"
    UNCERTAIN = "uncertain"
    REJECTED = "rejected"


class Reason(enum.StrEnum):
    """Why a verdict is less than `verified`. Verdicts list reasons in this declaration order."""

    OUTSIDE_GEOFENCE = "outside_geofence"
    LOW_ACCURACY = "low_accuracy"
    MOCK_LOCATION = "mock_location"
    IMPOSSIBLE_SPEED = "impossible_speed"
    STALE_FIX = "stale_fix"
    CLOCK_SKEW = "clock_skew"
    FUTURE_FIX = "future_fix"
    # What the person's trail says about a check-in (geo.trail): fixes close in time place them too far away to
    # have been there; they left at once; the trail is a recording played back.
    TRAIL_CONTRADICTS = "trail_contradicts"
    SHORT_DWELL = "short_dwell"
    PLAYBACK = "playback"


# Any one of these makes the claim `rejected`; every other reason makes it at most `uncertain`.
_REJECTING = frozenset(
    {Reason.MOCK_LOCATION, Reason.FUTURE_FIX, Reason.IMPOSSIBLE_SPEED, Reason.TRAIL_CONTRADICTS, Reason.PLAYBACK}
)


def status_for(reasons: Iterable[Reason], confidence: float, policy: VerdictPolicy) -> VerdictStatus:
    """The status that these reasons and this confidence earn: the one rule `judge` and a re-judgment share."""
    found = set(reasons)
    if found & _REJECTING or confidence < policy.uncertain_min_confidence:
        return VerdictStatus.REJECTED
    if found:
        return VerdictStatus.UNCERTAIN
    return VerdictStatus.VERIFIED


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgment: status, confidence (share of the accuracy disc inside the fence, 3 decimals), distance to
    the fence in metres (0.1 m), reasons in `Reason` order, and the capture time the server believes (UTC)."""

    status: VerdictStatus
    confidence: float
    distance_m: float
    reasons: tuple[Reason, ...]
    trusted_captured_at: datetime


def _require_aware(name: str, value: datetime) -> None:
    # Naive datetimes would be silently read as local time; every time here must say which zone it is in.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


def _validate_position(name: str, lat: float, lon: float, accuracy_m: float) -> None:
    try:
        validate_lat_lon(lat, lon)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not (math.isfinite(accuracy_m) and accuracy_m >= 0.0):
        raise ValueError(f"{name}: accuracy_m must be a finite number >= 0, got {accuracy_m!r}")


def trusted_capture_time(fix: Fix, received_at: datetime) -> datetime:
    """When the fix was taken, as far as the server can tell, in UTC.

    With `age_ms`, `received_at - age_ms`: a monotonic age is right even when the phone's wall clock is not.
    Without it, the phone's `captured_at` is all there is.
    """
    _require_aware("received_at", received_at)
    _require_aware("fix.captured_at", fix.captured_at)
    if fix.age_ms is None:
        return fix.captured_at.astimezone(UTC)
    if isinstance(fix.age_ms, bool) or fix.age_ms < 0:
        raise ValueError(f"fix.age_ms must be an integer >= 0, got {fix.age_ms!r}")
    return (received_at - timedelta(milliseconds=fix.age_ms)).astimezone(UTC)


def judge(
    fix: Fix,
    fence: Fence,
    *,
    received_at: datetime,
    policy: VerdictPolicy,
    prior: PriorFix | None = None,
    action_at: datetime | None = None,
) -> Verdict:
    """Judge a location claim: is `fix` credible evidence that the person was inside `fence` at `action_at`?

    `received_at` is when the server received the fix. `action_at` is when the claimed action (a check-in)
    happened, by default `received_at`; for an offline action synced days later, pass the time the phone recorded
    it, so the fix is judged against the action and not against its late arrival. `prior` is the user's previous
    trusted position, for the travel-speed check.

    Raises ValueError for impossible coordinates or accuracies and for naive datetimes.
    """
    _validate_position("fix", fix.lat, fix.lon, fix.accuracy_m)
    _require_aware("received_at", received_at)
    if action_at is None:
        action_at = received_at
    _require_aware("action_at", action_at)
    if prior is not None:
        _validate_position("prior", prior.lat, prior.lon, prior.accuracy_m)
        _require_aware("prior.at", prior.at)
    trusted_at = trusted_capture_time(fix, received_at)

    # Decisions use the rounded figures the client sees, so a verdict never shows confidence 0.8 while calling
    # the fix outside a fence whose threshold is 0.8.
    confidence = round(inside_share(fix.lat, fix.lon, fix.accuracy_m, fence), 3)
    distance_m = round(distance_to_fence_m(fix.lat, fix.lon, fence), 1)

    reasons: set[Reason] = set()
    if confidence < policy.verified_min_confidence:
        reasons.add(Reason.OUTSIDE_GEOFENCE)
    if fix.accuracy_m > policy.max_accuracy_m:
        reasons.add(Reason.LOW_ACCURACY)
    if fix.is_mock:
        reasons.add(Reason.MOCK_LOCATION)
    if prior is not None and _implied_speed_mps(fix, trusted_at, prior) > policy.max_speed_mps:
        reasons.add(Reason.IMPOSSIBLE_SPEED)
    # Both directions count: a fix taken long after the action proves as little about it as one taken long before.
    if abs((action_at - trusted_at).total_seconds()) > policy.stale_after_s:
        reasons.add(Reason.STALE_FIX)
    if fix.age_ms is not None and abs((fix.captured_at - trusted_at).total_seconds()) > policy.max_clock_skew_s:
        reasons.add(Reason.CLOCK_SKEW)
    # Measured on the trusted time: with age_ms it can never lie after received_at, so a phone whose clock runs
    # ahead gets clock_skew (uncertain), and only a phone with nothing but its wall clock can claim the future.
    if (trusted_at - received_at).total_seconds() > policy.future_tolerance_s:
        reasons.add(Reason.FUTURE_FIX)

    return Verdict(
        status=status_for(reasons, confidence, policy),
        confidence=confidence,
        distance_m=distance_m,
        reasons=tuple(reason for reason in Reason if reason in reasons),
        trusted_captured_at=trusted_at,
    )


def _implied_speed_mps(fix: Fix, trusted_at: datetime, prior: PriorFix) -> float:
    """The slowest speed that explains moving from the prior fix to this one; 0 when the order is not forward.

    Both positions may be off by their accuracy radii, so that much of the distance is forgiven: two poor
    network fixes a minute apart must not read as a teleport. Elapsed time is floored at one second so that two
    fixes stamped in the same second do not divide by zero.
    """
    if trusted_at <= prior.at:
        # A fix older than the prior (an offline queue replayed out of order) says nothing about speed.
        return 0.0
    gap_m = max(0.0, haversine_m(prior.lat, prior.lon, fix.lat, fix.lon) - fix.accuracy_m - prior.accuracy_m)
    elapsed_s = max((trusted_at - prior.at).total_seconds(), 1.0)
    return gap_m / elapsed_s
