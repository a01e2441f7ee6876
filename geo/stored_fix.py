"""A stored position of a person's trail, as the derivations (stops, trips, geofence events, gaps) read it.

Defined here, not in backend/, so that geo/'s pure functions take exactly what backend/tracking/queries.py's
`fixes_between` returns without importing the backend. Plain data, in WGS-84 degrees and SI units.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

__all__ = ["StoredFix"]


@dataclass(frozen=True, slots=True)
class StoredFix:
    """One fix of a trail.

    `recorded_at` is the trusted capture time (UTC): `received_at - age_ms` when the phone sent a monotonic age,
    else the phone's own capture time (see geo.verdict.trusted_capture_time). Trails are ordered by it, never by
    arrival. `accuracy_m` is the 68% radius. `battery` is a percentage (0..100), `charging` whether the phone was
    plugged in, `activity` what the phone's motion classifier said (`still`, `walking`, `in_vehicle`, ...), `event`
    what the phone says happened (`motionchange`, `heartbeat`, `geofence`, `providerchange`, `location_off`, ...,
    the cause of a gap when it has one). `mock` is the OS flag; `source` is `app` (POST /v1/tracking/positions)
    or `osmand` (a stock tracker app). `reasons` are the doubts the server has about the fix without refusing it
    (`clock_skew`: the phone's clock disagrees with the monotonic age, so the trusted time is the derived one;
    `impossible_speed`: a jump that neither its previous nor its next fix could reach, judged at read time over
    the whole trail so that arrival order never changes it).
    """

    fix_id: UUID
    recorded_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    speed_mps: float | None = None
    bearing_deg: float | None = None
    altitude_m: float | None = None
    battery: float | None = None
    charging: bool | None = None
    activity: str | None = None
    event: str | None = None
    mock: bool = False
    source: str = "app"
    reasons: tuple[str, ...] = ()
