"""Coordinate systems at the edge: requests in the caller's `crs` become WGS-84, answers go back in it.

One way for every route: `request_in_wgs84(body, crs)` on what arrives and `answer_in(answer, crs)` on what leaves.
Both walk the wire shapes and convert every point in them (`Point`, `PointIn`, `Fix`), so a new field holding a
point is converted without anyone remembering to; services only ever see and return WGS-84.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from geo.crs import Crs, from_wgs84, to_wgs84
from geo.postgis import stored_point
from mobile_contract.location import CrsName, Fix, Point, PointIn

_DECIMALS = 7  # ~1 cm; more digits are noise
_LOCATED = (Point, PointIn, Fix)  # the wire shapes whose `lat`/`lon` are a place
T = TypeVar("T")


def answer_in(answer: T, crs: CrsName) -> T:
    """The answer with every point in the caller's system (WGS-84: the answer itself, untouched)."""
    if crs is CrsName.WGS84:
        return answer
    target = Crs(crs.value)

    def convert(lat: float, lon: float) -> tuple[float, float]:
        lat, lon = from_wgs84(lat, lon, target)
        return round(lat, _DECIMALS), round(lon, _DECIMALS)

    converted: T = _walk(answer, convert)
    return converted


def request_in_wgs84(body: T, crs: CrsName) -> T:
    """The request with every point it carries in WGS-84, as the services take them."""
    if crs is CrsName.WGS84:
        return body
    source = Crs(crs.value)
    converted: T = _walk(body, lambda lat, lon: to_wgs84(lat, lon, source))
    return converted


def _walk(value: Any, convert: Callable[[float, float], tuple[float, float]]) -> Any:
    if isinstance(value, _LOCATED):
        lat, lon = convert(value.lat, value.lon)
        return msgspec.structs.replace(value, lat=lat, lon=lon)
    if isinstance(value, msgspec.Struct):
        changed = {}
        for name in value.__struct_fields__:
            field = getattr(value, name)
            new = _walk(field, convert)
            if new is not field:
                changed[name] = new
        return msgspec.structs.replace(value, **changed) if changed else value
    if isinstance(value, list):
        items = [_walk(item, convert) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value  # free-form JSON (answers, args) is not ours to reinterpret


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
