"""Where a phone says it is (a fix), where a thing is (a point), and the server's judgment (a verdict)."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from mobile_contract.base import AwareDatetime, Latitude, Longitude, Request, Response


class CrsName(enum.StrEnum):
    """Coordinate system of the coordinates in a request and its answer (query parameter `crs`).

    Chinese map SDKs report GCJ-02 (AMap, Tencent) or BD-09 (Baidu); storage is always WGS-84.
    """

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


class Point(Response):
    lat: float
    lon: float


class PointIn(Request):
    lat: Latitude
    lon: Longitude


class Fix(Request):
    """A location fix, sent wherever a phone asserts where it is (never a bare point)."""

    lat: Latitude
    lon: Longitude
    accuracy_m: Annotated[float, msgspec.Meta(ge=0.0, le=100_000.0, description="68% radius, metres")]
    captured_at: AwareDatetime
    altitude_m: Annotated[float, msgspec.Meta(ge=-1_000.0, le=20_000.0)] | None = None
    speed_mps: Annotated[float, msgspec.Meta(ge=0.0, le=1_000.0)] | None = None
    bearing_deg: Annotated[float, msgspec.Meta(ge=0.0, le=360.0)] | None = None
    provider: Literal["gps", "network", "fused"] | None = None
    is_mock: bool = False
    age_ms: Annotated[int, msgspec.Meta(ge=0, le=30 * 86_400_000, description="fix age at send, monotonic")] | None = (
        None
    )


class VerdictStatus(enum.StrEnum):
    VERIFIED = "verified"
    UNCERTAIN = "uncertain"
    REJECTED = "rejected"


class VerdictReason(enum.StrEnum):
    """Why a verdict is less than `verified`. The fix's own: `outside_geofence`, `low_accuracy`, `mock_location`,
    `impossible_speed`, `stale_fix`, `clock_skew`, `future_fix`. The person's trail around a check-in (judged again
    when late fixes arrive, so a visit's verdict can change after the fact; the visit then comes again in sync):
    `trail_contradicts` (fixes close in time place the person too far away to have been there; rejected),
    `short_dwell` (they left the fence at once; uncertain), `playback` (the trail is a recording played back;
    rejected)."""

    OUTSIDE_GEOFENCE = "outside_geofence"
    LOW_ACCURACY = "low_accuracy"
    MOCK_LOCATION = "mock_location"
    IMPOSSIBLE_SPEED = "impossible_speed"
    STALE_FIX = "stale_fix"
    CLOCK_SKEW = "clock_skew"
    FUTURE_FIX = "future_fix"
    TRAIL_CONTRADICTS = "trail_contradicts"
    SHORT_DWELL = "short_dwell"
    PLAYBACK = "playback"


class Verdict(Response):
    """The server's judgment of a location claim. `confidence`: share of the accuracy disc inside the fence."""

    status: VerdictStatus
    confidence: float
    distance_m: float
    reasons: list[VerdictReason]
