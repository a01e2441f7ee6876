"""Geofences: validation, distance to a fence, and the share of an accuracy disc inside it."""

from __future__ import annotations

import itertools
import math

import pytest

from geo.distance import EARTH_RADIUS_M, destination, haversine_m
from geo.fence import CircleFence, PolygonFence, distance_to_fence_m, inside_share

SHOP = (31.2304, 121.4737)  # People's Square, Shanghai


def _circle(radius_m: float) -> CircleFence:
    return CircleFence(lat=SHOP[0], lon=SHOP[1], radius_m=radius_m)


def _at(bearing_deg: float, distance_m: float, origin: tuple[float, float] = SHOP) -> tuple[float, float]:
    return destination(*origin, bearing_deg, distance_m)


def _square(half_side_m: float, centre: tuple[float, float] = SHOP) -> PolygonFence:
    """An axis-aligned square (edges along meridians and parallels) of side 2 * half_side_m around centre."""
    dlat = math.degrees(half_side_m / EARTH_RADIUS_M)
    dlon = math.degrees(half_side_m / (EARTH_RADIUS_M * math.cos(math.radians(centre[0]))))
    lat, lon = centre

    def wrap(lon: float) -> float:
        return (lon + 180.0) % 360.0 - 180.0

    west, east = wrap(lon - dlon), wrap(lon + dlon)
    return PolygonFence(exterior=((lat - dlat, west), (lat - dlat, east), (lat + dlat, east), (lat + dlat, west)))


def _polygon_circle(radius_m: float, sides: int = 64) -> PolygonFence:
    """A regular polygon inscribed in the circle fence of the same radius around SHOP."""
    return PolygonFence(exterior=tuple(_at(360.0 * k / sides, radius_m) for k in range(sides)))


# --- fence validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius_m", [0.0, -5.0, math.nan, math.inf])
def test_circle_fence_needs_a_positive_radius(radius_m: float) -> None:
    with pytest.raises(ValueError, match="radius_m"):
        CircleFence(lat=SHOP[0], lon=SHOP[1], radius_m=radius_m)


def test_circle_fence_needs_a_real_centre() -> None:
    with pytest.raises(ValueError, match="lat must be"):
        CircleFence(lat=95.0, lon=0.0, radius_m=10.0)


def test_polygon_fence_needs_three_distinct_vertices() -> None:
    with pytest.raises(ValueError, match="at least 3 distinct vertices"):
        PolygonFence(exterior=((31.0, 121.0), (31.001, 121.0)))
    with pytest.raises(ValueError, match="at least 3 distinct vertices"):
        PolygonFence(exterior=((31.0, 121.0), (31.001, 121.0), (31.0, 121.0)))


def test_polygon_fence_refuses_self_intersection() -> None:
    bow_tie = ((31.0, 121.0), (31.001, 121.001), (31.0, 121.001), (31.001, 121.0))
    with pytest.raises(ValueError, match="not a simple polygon"):
        PolygonFence(exterior=bow_tie)


def test_polygon_fence_refuses_a_line() -> None:
    with pytest.raises(ValueError, match="polygon fence"):
        PolygonFence(exterior=((31.0, 121.0), (31.001, 121.0), (31.002, 121.0)))


def test_polygon_fence_refuses_impossible_vertices() -> None:
    with pytest.raises(ValueError, match="lon must be"):
        PolygonFence(exterior=((31.0, 121.0), (31.001, 181.0), (31.0, 121.001)))


def test_polygon_fence_accepts_closed_rings_and_lists() -> None:
    open_ring = _square(50.0).exterior
    closed = PolygonFence(exterior=(*open_ring, open_ring[0]))
    from_json = PolygonFence(exterior=[list(vertex) for vertex in open_ring])  # type: ignore[arg-type]
    assert from_json.exterior == open_ring
    assert hash(from_json) == hash(PolygonFence(exterior=open_ring))
    assert inside_share(*SHOP, 10.0, closed) == 1.0


# --- distance ---------------------------------------------------------------------------------------------------------


def test_circle_distance_is_to_the_centre() -> None:
    fence = _circle(50.0)
    assert distance_to_fence_m(*SHOP, fence) == 0.0
    # Inside the fence it is still "how far from the shop", not 0.
    assert distance_to_fence_m(*_at(90.0, 30.0), fence) == pytest.approx(30.0, abs=1e-6)
    assert distance_to_fence_m(*_at(200.0, 480.0), fence) == pytest.approx(480.0, abs=1e-6)


def test_polygon_distance_is_zero_inside_and_on_the_edge() -> None:
    fence = _square(50.0)
    assert distance_to_fence_m(*SHOP, fence) == 0.0
    assert distance_to_fence_m(*_at(45.0, 60.0), fence) == 0.0  # inside, near a corner
    assert distance_to_fence_m(*fence.exterior[0], fence) == 0.0  # on a vertex


@pytest.mark.parametrize(("bearing", "outside_m"), [(0.0, 25.0), (90.0, 50.0), (180.0, 1.0), (270.0, 120.0)])
def test_polygon_distance_to_the_nearest_edge(bearing: float, outside_m: float) -> None:
    fence = _square(50.0)
    assert distance_to_fence_m(*_at(bearing, 50.0 + outside_m), fence) == pytest.approx(outside_m, abs=0.01)


def test_polygon_distance_to_a_corner() -> None:
    fence = _square(50.0)
    corner = fence.exterior[2]  # north-east
    point = _at(45.0, 100.0, origin=corner)
    assert distance_to_fence_m(*point, fence) == pytest.approx(100.0, abs=0.05)


def test_polygon_distance_far_away_is_measured_on_the_sphere() -> None:
    # 200 km north of the square's north edge: the plane around the fix would be off by about 30 m there; the
    # answer comes from the haversine to the nearest point, so it is off by centimetres.
    fence = _square(50.0)
    assert distance_to_fence_m(*_at(0.0, 50.0 + 200_000.0), fence) == pytest.approx(200_000.0, abs=0.5)


def test_polygon_across_the_antimeridian() -> None:
    fence = _square(100.0, centre=(-17.0, 180.0))  # Fiji: vertices at 179.999 E and 179.999 W
    assert inside_share(-17.0, 180.0, 20.0, fence) == 1.0
    assert inside_share(-17.0, -179.9999, 20.0, fence) == 1.0
    assert distance_to_fence_m(-17.0, 179.9999, fence) == 0.0
    east_of_it = destination(-17.0, 180.0, 90.0, 150.0)
    assert east_of_it[1] < 0.0  # the fix itself is in the western hemisphere
    assert distance_to_fence_m(*east_of_it, fence) == pytest.approx(50.0, abs=0.05)


# --- inside_share: circle fences (analytic) -------------------------------------------------------------------------


def test_concentric_disc_smaller_than_the_fence_is_wholly_inside() -> None:
    assert inside_share(*SHOP, 10.0, _circle(50.0)) == 1.0


def test_concentric_disc_larger_than_the_fence() -> None:
    # Only the fence's own area is inside: (R / r)^2.
    assert inside_share(*SHOP, 100.0, _circle(50.0)) == pytest.approx(0.25, abs=1e-12)


def test_disc_touching_the_fence_from_inside() -> None:
    assert inside_share(*_at(0.0, 40.0), 10.0, _circle(50.0)) == 1.0


def test_disjoint_disc() -> None:
    assert inside_share(*_at(90.0, 200.0), 50.0, _circle(100.0)) == 0.0


def test_equal_circles_a_radius_apart() -> None:
    # Closed form for two unit circles one radius apart: lens = 2*pi/3 - sqrt(3)/2, share = 2/3 - sqrt(3)/(2*pi).
    fix = _at(0.0, 30.0)
    assert inside_share(*fix, 30.0, _circle(30.0)) == pytest.approx(2 / 3 - math.sqrt(3) / (2 * math.pi), abs=1e-6)


@pytest.mark.parametrize("fence_radius_m", [1_000.0, 100_000.0, 1_000_000.0])
def test_fix_on_the_edge_of_a_huge_fence_is_half_inside(fence_radius_m: float) -> None:
    # Half the disc is inside, less the sliver that the fence's curvature cuts off: integrating the sagitta
    # x^2 / 2R across the disc's width gives r^3 / 3R, so share = 1/2 - r / (3 pi R) + O((r/R)^2).
    # This is where the textbook acos lens formula cancels catastrophically (it gives 0.5013 at 1000 km).
    accuracy_m = 10.0
    fix = _at(0.0, fence_radius_m)
    share = inside_share(*fix, accuracy_m, _circle(fence_radius_m))
    ratio = accuracy_m / fence_radius_m
    assert share == pytest.approx(0.5 - ratio / (3 * math.pi), abs=ratio**2 + 1e-9)


def test_share_falls_as_the_fix_moves_out() -> None:
    fence = _circle(50.0)
    shares = [inside_share(*_at(90.0, d), 20.0, fence) for d in range(0, 80, 5)]
    assert shares[0] == 1.0
    assert shares[-1] == 0.0
    assert all(later <= earlier for earlier, later in itertools.pairwise(shares))
    assert any(0.0 < share < 1.0 for share in shares)


def test_zero_accuracy_is_point_in_fence() -> None:
    fence = _circle(50.0)
    assert inside_share(*_at(10.0, 49.0), 0.0, fence) == 1.0
    assert inside_share(*_at(10.0, 51.0), 0.0, fence) == 0.0


# --- inside_share: polygon fences (shapely) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_m", "accuracy_m"),
    [(0.0, 30.0), (0.0, 150.0), (40.0, 20.0), (70.0, 40.0), (100.0, 30.0), (100.0, 10.0), (120.0, 60.0), (30.0, 200.0)],
)
@pytest.mark.parametrize("bearing", [0.0, 77.0, 200.0])
def test_polygon_path_agrees_with_the_analytic_circle(offset_m: float, accuracy_m: float, bearing: float) -> None:
    # The inscribed 64-gon's edges sag up to R * (1 - cos(pi / 64)) = 12 cm inside the circle, which moves the share
    # of a 10 m disc on the edge by up to 0.008: hence 1%, and no discs smaller than 10 m here.
    fix = _at(bearing, offset_m)
    analytic = inside_share(*fix, accuracy_m, _circle(100.0))
    polygonal = inside_share(*fix, accuracy_m, _polygon_circle(100.0))
    assert polygonal == pytest.approx(analytic, abs=0.01)


@pytest.mark.parametrize("bearing", [0.0, 77.0, 200.0])
def test_polygon_path_converges_to_the_analytic_circle(bearing: float) -> None:
    # With 1024 sides the sag is 0.5 mm, so a 5 m disc on the edge must agree to 2 parts in 10^4 (measured: 4e-5).
    fix = _at(bearing, 100.0)
    analytic = inside_share(*fix, 5.0, _circle(100.0))
    polygonal = inside_share(*fix, 5.0, _polygon_circle(100.0, sides=1024))
    assert polygonal == pytest.approx(analytic, abs=2e-4)


def test_polygon_fix_deep_inside() -> None:
    assert inside_share(*SHOP, 20.0, _square(100.0)) == 1.0


def test_polygon_fix_far_outside() -> None:
    assert inside_share(*_at(90.0, 500.0), 20.0, _square(100.0)) == 0.0


def test_polygon_fix_on_an_edge_is_half_inside() -> None:
    assert inside_share(*_at(90.0, 100.0), 10.0, _square(100.0)) == pytest.approx(0.5, abs=1e-3)


def test_polygon_fix_on_a_corner_is_a_quarter_inside() -> None:
    fence = _square(100.0)
    assert inside_share(*fence.exterior[2], 10.0, fence) == pytest.approx(0.25, abs=1e-3)


def test_polygon_disc_larger_than_the_fence() -> None:
    # A 20 m square inside a 100 m disc: 400 / (pi * 100^2).
    share = inside_share(*SHOP, 100.0, _square(10.0))
    assert share == pytest.approx(400.0 / (math.pi * 100.0**2), rel=1e-3)


def test_polygon_zero_accuracy_is_point_in_fence() -> None:
    fence = _square(100.0)
    assert inside_share(*_at(90.0, 99.0), 0.0, fence) == 1.0
    assert inside_share(*_at(90.0, 101.0), 0.0, fence) == 0.0


# --- inside_share: input validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("accuracy_m", [-1.0, math.nan, math.inf])
@pytest.mark.parametrize("fence", [_circle(50.0), _square(50.0)], ids=["circle", "polygon"])
def test_accuracy_must_be_finite_and_not_negative(accuracy_m: float, fence: CircleFence | PolygonFence) -> None:
    with pytest.raises(ValueError, match="accuracy_m"):
        inside_share(*SHOP, accuracy_m, fence)


@pytest.mark.parametrize("fence", [_circle(50.0), _square(50.0)], ids=["circle", "polygon"])
def test_fix_must_be_a_real_point(fence: CircleFence | PolygonFence) -> None:
    with pytest.raises(ValueError, match="lat must be"):
        inside_share(math.nan, SHOP[1], 10.0, fence)
    with pytest.raises(ValueError, match="lon must be"):
        distance_to_fence_m(SHOP[0], 200.0, fence)


def test_huge_fence_geometry_is_consistent_with_haversine() -> None:
    # The fixture helpers themselves: a fix placed 1000 km out really is 1000 km from the centre.
    assert haversine_m(*SHOP, *_at(0.0, 1_000_000.0)) == pytest.approx(1_000_000.0, abs=1e-6)
