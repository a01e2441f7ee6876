"""Coordinate systems phones report in: WGS-84 (GPS), GCJ-02 (AMap, Tencent) and BD-09 (Baidu).

Storage and all maths are WGS-84; the API converts at the edge with `to_wgs84` / `from_wgs84`. Every function
takes and returns `(lat, lon)` in degrees (note: most published GCJ-02 code uses `(lon, lat)`).

GCJ-02 is the Chinese state obfuscation of WGS-84 on the Krasovsky ellipsoid; BD-09 is Baidu's further
obfuscation of GCJ-02. Neither has a closed-form inverse, so the inverses here are solved by fixed-point
iteration to 1e-9 degrees (about 0.1 mm) instead of the usual one-step approximations, which are off by up to
3.5 m (GCJ-02) and 0.2 m (BD-09) over China: enough to move a check-in across a shop's door.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

__all__ = [
    "Crs",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_gcj02_region",
    "on_the_globe",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]


class Crs(enum.StrEnum):
    """The `crs` query parameter: which system a request's coordinates (and its answer's) are in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm (not WGS-84's ellipsoid: the offsets depend on it).
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323

# Baidu's constant: pi * 3000 / 180.
_X_PI = math.pi * 3000.0 / 180.0

# The rough mainland-China box that the map SDKs use: outside it they apply no GCJ-02 offset, so neither do we.
# It includes Taiwan, Hong Kong, Korea and parts of Japan; matching the SDKs matters more than political accuracy,
# because what we must undo is what the phone's SDK actually did.
_CHINA_MIN_LON = 72.004
_CHINA_MAX_LON = 137.8347
_CHINA_MIN_LAT = 0.8293
_CHINA_MAX_LAT = 55.8271

_Transform = Callable[[float, float], tuple[float, float]]

# Inverses iterate until the forward transform of the estimate lands within this many degrees of the input.
_INVERSE_TOLERANCE_DEG = 1e-9
# Both offsets vary slowly with position, so the iteration converges in at most 5 steps over the whole box (measured
# on a 100 x 100 grid); the cap only guards against a point on the box edge, where the forward transform jumps.
_INVERSE_MAX_STEPS = 30


def in_gcj02_region(lat: float, lon: float) -> bool:
    """True if the map SDKs apply the GCJ-02 offset at this point (the rough mainland-China box)."""
    return _CHINA_MIN_LON <= lon <= _CHINA_MAX_LON and _CHINA_MIN_LAT <= lat <= _CHINA_MAX_LAT


# The two offset functions are the widely circulated GCJ-02 algorithm's terms, kept exactly as SDK-compatible ports
# have them (including the 320 * sin(y * pi / 30) term): bit-for-bit agreement with the published vectors is the point.
def _gcj_delta_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_delta_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02. Identity outside the mainland-China box, as in the SDKs."""
    if not in_gcj02_region(lat, lon):
        return lat, lon
    x = lon - 105.0
    y = lat - 35.0
    dlat = _gcj_delta_lat(x, y)
    dlon = _gcj_delta_lon(x, y)
    rad_lat = math.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    # Turn the metre-like offsets into degrees on the Krasovsky ellipsoid (meridional and parallel radii).
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + dlat, lon + dlon


def _solve_inverse(
    forward: _Transform, target_lat: float, target_lon: float, seed_lat: float, seed_lon: float
) -> tuple[float, float]:
    """Find (lat, lon) with forward(lat, lon) == target by fixed-point iteration from a seed.

    The forward transforms are the identity plus a small, slowly varying offset, so subtracting the residual
    is a contraction: each step shrinks the error by orders of magnitude.
    """
    lat, lon = seed_lat, seed_lon
    for _ in range(_INVERSE_MAX_STEPS):
        got_lat, got_lon = forward(lat, lon)
        err_lat = got_lat - target_lat
        err_lon = got_lon - target_lon
        lat -= err_lat
        lon -= err_lon
        if abs(err_lat) < _INVERSE_TOLERANCE_DEG and abs(err_lon) < _INVERSE_TOLERANCE_DEG:
            break
    return lat, lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84, the exact inverse of `wgs84_to_gcj02` (to 1e-9 degrees). Identity outside the box."""
    if not in_gcj02_region(lat, lon):
        return lat, lon
    return _solve_inverse(wgs84_to_gcj02, lat, lon, lat, lon)


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 (Baidu). Applied everywhere, like the published formula: it has no China box of its own."""
    x, y = lon, lat
    z = math.sqrt(x * x + y * y) + 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _bd09_to_gcj02_one_step(lat: float, lon: float) -> tuple[float, float]:
    # The widely published approximate inverse (off by up to ~0.2 m), used here only as the seed.
    x = lon - 0.0065
    y = lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02, the exact inverse of `gcj02_to_bd09` (to 1e-9 degrees)."""
    seed_lat, seed_lon = _bd09_to_gcj02_one_step(lat, lon)
    return _solve_inverse(gcj02_to_bd09, lat, lon, seed_lat, seed_lon)


def wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 -> BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 -> WGS-84, through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def on_the_globe(lat: float, lon: float) -> tuple[float, float]:
    """A point brought back to latitudes -90..90 and longitudes -180..180.

    BD-09's offsets apply everywhere (it has no China box), so near a pole or the antimeridian a converted point
    lands a few thousandths of a degree off the globe (lat -90.0055 from bd09 at -90), which PostGIS refuses and
    which no phone can show. Latitude is clamped at the pole; longitude wraps around the antimeridian."""
    lat = min(90.0, max(-90.0, lat))
    if not -180.0 <= lon <= 180.0:
        lon = (lon + 180.0) % 360.0 - 180.0
    return lat, lon


def to_wgs84(lat: float, lon: float, crs: Crs) -> tuple[float, float]:
    """Convert a point a phone sent in `crs` to WGS-84 (on the way in)."""
    match crs:
        case Crs.WGS84:
            return lat, lon
        case Crs.GCJ02:
            return on_the_globe(*gcj02_to_wgs84(lat, lon))
        case Crs.BD09:
            return on_the_globe(*bd09_to_wgs84(lat, lon))
    # Reachable only when a caller passes a plain string that is not a member (StrEnum compares by value).
    raise ValueError(f"unknown coordinate system: {crs!r}")


def from_wgs84(lat: float, lon: float, crs: Crs) -> tuple[float, float]:
    """Convert a stored WGS-84 point to `crs` (on the way out)."""
    match crs:
        case Crs.WGS84:
            return lat, lon
        case Crs.GCJ02:
            return on_the_globe(*wgs84_to_gcj02(lat, lon))
        case Crs.BD09:
            return on_the_globe(*wgs84_to_bd09(lat, lon))
    raise ValueError(f"unknown coordinate system: {crs!r}")
