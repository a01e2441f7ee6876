"""Geofences (circles and polygons) and how much of a fix's accuracy disc lies inside one.

A phone never knows exactly where it is: it reports a position and an accuracy radius. So "is the person inside
the shop's fence?" has no yes/no answer; `inside_share` gives the share of the accuracy disc that lies inside the
fence, which the contract exposes as a verdict's `confidence`. `distance_to_fence_m` is the "how far away" number
shown to people.

Circles are handled analytically (exact lens area). Polygons go through shapely in a local tangent plane centred on
the fix: x = R * dlon * cos(lat0), y = R * dlat. Why not pyproj: it is not a dependency, and a proper projection
would change nothing that matters. The plane's scale error at distance s from the fix is about s^2 * tan(lat) / R,
i.e. 2 mm at 100 m and 16 cm at 1 km at 45 degrees, and what decides the share is the part of the fence within the
accuracy disc (tens to a few hundred metres from the fix), where the error is millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shapely.geometry import Point, Polygon
from shapely.ops import nearest_points
from shapely.validation import explain_validity

from geo.distance import EARTH_RADIUS_M, haversine_m, validate_lat_lon

__all__ = ["CircleFence", "Fence", "PolygonFence", "distance_to_fence_m", "inside_share"]

# Segments per quarter circle when shapely draws the accuracy disc: a 128-gon, whose area is 99.96% of the circle's.
# Both numerator and denominator of the share use the same polygon, so the share itself is far closer than that.
_DISC_QUAD_SEGS = 32

# Below this argument, x - sin(x) is computed from its Taylor series: the direct difference cancels catastrophically
# (for a huge fence around a small disc, the fence's segment angle is ~1e-5 rad and x - sin(x) ~ 1e-15).
_SERIES_BELOW = 0.1


@dataclass(frozen=True, slots=True)
class CircleFence:
    """A circular geofence: centre (WGS-84 degrees) and radius in metres."""

    lat: float
    lon: float
    radius_m: float

    def __post_init__(self) -> None:
        validate_lat_lon(self.lat, self.lon)
        if not (math.isfinite(self.radius_m) and self.radius_m > 0.0):
            raise ValueError(f"radius_m must be a finite number > 0, got {self.radius_m!r}")


@dataclass(frozen=True, slots=True)
class PolygonFence:
    """A polygonal geofence: the exterior ring as (lat, lon) WGS-84 vertices, closed or not.

    It must have at least three distinct vertices, enclose an area and not cross itself. Edges are straight in
    the local plane; PostGIS draws great-circle edges, which differ by about 2 cm over a 1 km edge.
    """

    exterior: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        # Callers build fences from JSON and database rows: accept any sequence of pairs, store hashable tuples.
        vertices = tuple((float(lat), float(lon)) for lat, lon in self.exterior)
        object.__setattr__(self, "exterior", vertices)
        for lat, lon in vertices:
            validate_lat_lon(lat, lon)
        ring = vertices[:-1] if len(vertices) > 1 and vertices[0] == vertices[-1] else vertices
        if len(set(ring)) < 3:
            raise ValueError(f"a polygon fence needs at least 3 distinct vertices, got {len(set(ring))}")
        # Check the shape in a plane around its first vertex, which also handles fences across the antimeridian.
        shape = _project_polygon(self, *vertices[0])
        if not shape.is_valid:
            raise ValueError(f"polygon fence is not a simple polygon: {explain_validity(shape)}")
        if shape.area <= 0.0:
            raise ValueError("polygon fence encloses no area")


Fence = CircleFence | PolygonFence


def _project(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """(lat, lon) -> metres (x east, y north) in the equirectangular plane tangent at (lat0, lon0)."""
    # Wrap the longitude difference so that a fix at 179.9 E and a vertex at 179.9 W are 0.2 degrees apart.
    dlon = (lon - lon0 + 180.0) % 360.0 - 180.0
    x = EARTH_RADIUS_M * math.radians(dlon) * math.cos(math.radians(lat0))
    y = EARTH_RADIUS_M * math.radians(lat - lat0)
    return x, y


def _unproject(lat0: float, lon0: float, x: float, y: float) -> tuple[float, float]:
    """Inverse of `_project` (undefined at the poles, where no field team checks in)."""
    lat = lat0 + math.degrees(y / EARTH_RADIUS_M)
    lon = lon0 + math.degrees(x / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
    return lat, (lon + 180.0) % 360.0 - 180.0


def _project_polygon(fence: PolygonFence, lat0: float, lon0: float) -> Polygon:
    return Polygon([_project(lat0, lon0, lat, lon) for lat, lon in fence.exterior])


def _check_accuracy(accuracy_m: float) -> None:
    if not (math.isfinite(accuracy_m) and accuracy_m >= 0.0):
        raise ValueError(f"accuracy_m must be a finite number >= 0, got {accuracy_m!r}")


def distance_to_fence_m(lat: float, lon: float, fence: Fence) -> float:
    """How far the point is from the fence, in metres.

    Circle: the distance to the centre (what users read as "how far from the shop"), even when inside.
    Polygon: 0 inside or on the boundary, else the great-circle distance to the nearest boundary point.
    """
    validate_lat_lon(lat, lon)
    if isinstance(fence, CircleFence):
        return haversine_m(lat, lon, fence.lat, fence.lon)
    shape = _project_polygon(fence, lat, lon)
    origin = Point(0.0, 0.0)
    if shape.covers(origin):
        return 0.0
    # The nearest point is found in the plane, but the distance is measured on the sphere: far from the fence
    # the plane's scale error grows with the square of the distance, the haversine's does not.
    nearest = nearest_points(shape.exterior, origin)[0]
    near_lat, near_lon = _unproject(lat, lon, float(nearest.x), float(nearest.y))
    return haversine_m(lat, lon, near_lat, near_lon)


def inside_share(lat: float, lon: float, accuracy_m: float, fence: Fence) -> float:
    """The share (0..1) of the accuracy disc (centre = the fix, radius = accuracy_m) that lies inside the fence.

    With accuracy_m == 0 the disc is a point: 1.0 inside the fence (boundary included), else 0.0.
    """
    validate_lat_lon(lat, lon)
    _check_accuracy(accuracy_m)
    if isinstance(fence, CircleFence):
        d = haversine_m(lat, lon, fence.lat, fence.lon)
        if accuracy_m == 0.0:
            return 1.0 if d <= fence.radius_m else 0.0
        return _disc_share_in_circle(d, accuracy_m, fence.radius_m)
    shape = _project_polygon(fence, lat, lon)
    origin = Point(0.0, 0.0)
    if accuracy_m == 0.0:
        return 1.0 if shape.covers(origin) else 0.0
    disc = origin.buffer(accuracy_m, quad_segs=_DISC_QUAD_SEGS)
    share = float(disc.intersection(shape).area) / float(disc.area)
    return min(1.0, max(0.0, share))


def _disc_share_in_circle(d: float, r: float, big_r: float) -> float:
    """Share of a disc of radius r > 0 lying inside a circle of radius big_r whose centre is d metres away.

    The overlap (a lens) is the sum of two circular segments cut by the common chord. Computing the segments from
    atan2 angles and a series for small angles keeps it exact when one circle is tiny against the other (a 10 m
    fix against a 1000 km fence), where the textbook acos formula loses every digit to cancellation.
    """
    if d + r <= big_r:
        return 1.0  # the disc lies wholly inside the fence
    if d >= r + big_r:
        return 0.0  # disjoint
    if d + big_r <= r:
        return (big_r / r) ** 2  # the fence lies wholly inside the disc
    # Here |r - big_r| < d < r + big_r, so d > 0 and the circles cross at two points.
    # a: signed distance from the disc's centre to the chord, towards the fence's centre; written as
    # (d - R)(d + R) + r^2 rather than d^2 - R^2 + r^2 so that a fix on a huge fence's edge loses no precision.
    a = ((d - big_r) * (d + big_r) + r * r) / (2.0 * d)
    b = d - a  # the same for the fence's centre, towards the disc's centre
    half_chord = math.sqrt(max(0.0, (r - a) * (r + a)))
    disc_segment = r * r * _unit_segment(math.atan2(half_chord, a))
    fence_segment = big_r * big_r * _unit_segment(math.atan2(half_chord, b))
    return min(1.0, max(0.0, (disc_segment + fence_segment) / (math.pi * r * r)))


def _unit_segment(half_angle: float) -> float:
    """Area of the circular segment of a unit circle cut by a chord that subtends 2 * half_angle at the centre."""
    x = 2.0 * half_angle
    if x < _SERIES_BELOW:
        x2 = x * x
        x_minus_sin = x * x2 * (1.0 / 6.0 - x2 * (1.0 / 120.0 - x2 * (1.0 / 5040.0 - x2 / 362880.0)))
    else:
        x_minus_sin = x - math.sin(x)
    return x_minus_sin / 2.0
