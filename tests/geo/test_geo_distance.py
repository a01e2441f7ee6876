"""Great-circle distances on the PostGIS sphere, destination points and coordinate validation."""

from __future__ import annotations

import math

import pytest

from geo.distance import EARTH_RADIUS_M, destination, haversine_m, validate_lat_lon

ONE_DEGREE_M = EARTH_RADIUS_M * math.pi / 180.0  # 111195.08 m on this sphere


def test_one_degree_of_latitude() -> None:
    assert round(ONE_DEGREE_M, 2) == 111195.08
    assert haversine_m(30.0, 120.0, 31.0, 120.0) == pytest.approx(ONE_DEGREE_M, rel=1e-12)


def test_one_degree_of_longitude_shrinks_with_latitude() -> None:
    assert haversine_m(0.0, 10.0, 0.0, 11.0) == pytest.approx(ONE_DEGREE_M, rel=1e-12)
    # Along a parallel the great circle is slightly shorter than the parallel's arc (cos 60 = 0.5).
    at_60 = haversine_m(60.0, 10.0, 60.0, 11.0)
    assert at_60 == pytest.approx(ONE_DEGREE_M * 0.5, rel=1e-4)
    assert at_60 < ONE_DEGREE_M * 0.5


def test_beijing_to_shanghai() -> None:
    # Tiananmen to People's Square: about 1067 km as the crow flies.
    assert haversine_m(39.9087, 116.3975, 31.2304, 121.4737) == pytest.approx(1_067_000, rel=0.005)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((31.2304, 121.4737), (31.2310, 121.4750)),
        ((-33.8568, 151.2153), (51.5007, -0.1246)),
        ((0.0, 179.9), (0.0, -179.9)),
    ],
)
def test_symmetric(a: tuple[float, float], b: tuple[float, float]) -> None:
    assert haversine_m(*a, *b) == haversine_m(*b, *a)


def test_zero_for_the_same_point() -> None:
    assert haversine_m(31.2304, 121.4737, 31.2304, 121.4737) == 0.0


def test_across_the_antimeridian_is_short() -> None:
    assert haversine_m(0.0, 179.5, 0.0, -179.5) == pytest.approx(ONE_DEGREE_M, rel=1e-9)


@pytest.mark.parametrize("lat", [10.0, -88.37668834417208])
def test_antipodes_are_half_the_circumference(lat: float) -> None:
    # Haversine is ill-conditioned near the antipodes (asin near 1): ~0.2 m in 20,000 km, irrelevant here. The
    # second latitude rounds the haversine term to just above 1, where an unclamped asin would raise.
    assert haversine_m(lat, 20.0, -lat, -160.0) == pytest.approx(math.pi * EARTH_RADIUS_M, abs=1.0)


def test_destination_north_moves_only_latitude() -> None:
    lat, lon = destination(31.0, 121.0, 0.0, ONE_DEGREE_M)
    assert (lat, lon) == pytest.approx((32.0, 121.0), abs=1e-9)


@pytest.mark.parametrize("bearing", [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0])
@pytest.mark.parametrize("distance_m", [1.0, 50.0, 1_000.0, 200_000.0])
def test_destination_lands_at_the_requested_distance(bearing: float, distance_m: float) -> None:
    lat, lon = destination(31.2304, 121.4737, bearing, distance_m)
    # Nanometre slack: degrees near 121 carry ~1e-14 degrees of rounding.
    assert haversine_m(31.2304, 121.4737, lat, lon) == pytest.approx(distance_m, rel=1e-9, abs=1e-6)


def test_destination_wraps_longitude() -> None:
    lat, lon = destination(0.0, 179.9, 90.0, 0.2 * ONE_DEGREE_M)
    assert (lat, lon) == pytest.approx((0.0, -179.9), abs=1e-9)


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (90.0, 180.0), (-90.0, -180.0), (31.2304, 121.4737)])
def test_validate_lat_lon_accepts_the_globe(lat: float, lon: float) -> None:
    validate_lat_lon(lat, lon)  # raising would fail the test


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        (90.0001, 0.0, "lat"),
        (-91.0, 0.0, "lat"),
        (math.nan, 0.0, "lat"),
        (math.inf, 0.0, "lat"),
        (0.0, 180.0001, "lon"),
        (0.0, -181.0, "lon"),
        (0.0, math.nan, "lon"),
        (0.0, -math.inf, "lon"),
    ],
)
def test_validate_lat_lon_refuses_impossible_points(lat: float, lon: float, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} must be"):
        validate_lat_lon(lat, lon)
