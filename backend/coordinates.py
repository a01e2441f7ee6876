"""Coordinate systems at the edge: requests in the caller's `crs` become WGS-84, answers go back in it."""

from __future__ import annotations

import msgspec

from geo.crs import Crs, from_wgs84, to_wgs84
from geo.postgis import stored_point
from mobile_contract.location import CrsName, Fix, Point

_DECIMALS = 7  # ~1 cm; more digits are noise


def fix_to_wgs84(fix: Fix, crs: CrsName) -> Fix:
    if crs is CrsName.WGS84:
        return fix
    lat, lon = to_wgs84(fix.lat, fix.lon, Crs(crs.value))
    return msgspec.structs.replace(fix, lat=lat, lon=lon)


def point_to_wgs84(lat: float, lon: float, crs: CrsName) -> tuple[float, float]:
    """A point a phone sent, in WGS-84 and rounded as we store points. The rounding is also what keeps PostGIS's
    KNN (`<->` on geography) sound: a query point a few 1e-15 degrees from a stored one makes the index answer
    "index returned tuples in wrong order" (reproduced at (1e-15, 0) against a merchant at (0, 0)); at 7 decimals
    a query point is either on the stored one or at least 1e-7 degrees away, which the index orders correctly."""
    if crs is not CrsName.WGS84:
        lat, lon = to_wgs84(lat, lon, Crs(crs.value))
    return stored_point(lat, lon)


def point_out(lat: float, lon: float, crs: CrsName) -> Point:
    """A stored point in the caller's system. Points are stored rounded to 7 decimals (`stored_degrees`), so
    WGS-84 goes out as stored; a converted point is rounded again. (Rounding 40 numbers per nearby answer was
    a tenth of its Python time, measured.)"""
    if crs is CrsName.WGS84:
        return Point(lat=lat, lon=lon)
    lat, lon = from_wgs84(lat, lon, Crs(crs.value))
    return Point(lat=round(lat, _DECIMALS), lon=round(lon, _DECIMALS))


def stored_degrees(value: float) -> float:
    """Degrees as we store them: 7 decimals (~1 cm); more digits are GPS noise."""
    return round(value, _DECIMALS)
