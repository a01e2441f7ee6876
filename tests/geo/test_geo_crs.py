"""WGS-84 / GCJ-02 / BD-09 conversions: published reference values, exact inverses, the outside-China rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from geo.crs import (
    Crs,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_gcj02_region,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.distance import haversine_m

# Reference vectors published in the README of wandergis/coordtransform (the implementation most Chinese apps and
# ports copy), for the point 116.404 E, 39.915 N near Tiananmen. Their functions take (lon, lat) and return
# [lon, lat]; ours are (lat, lon), so the pairs below are swapped relative to that README.
BEIJING = (39.915, 116.404)
REF_WGS84_TO_GCJ02 = (39.91640428150164, 116.41024449916938)
REF_GCJ02_TO_BD09 = (39.92133699351021, 116.41036949371029)
REF_WGS84_TO_BD09 = (39.922699552216216, 116.41662724378733)
# The README's inverses are the one-step approximations; ours are exact, so these are only "nearby".
REF_GCJ02_TO_WGS84_ONE_STEP = (39.91359571849836, 116.39775550083061)
REF_BD09_TO_GCJ02_ONE_STEP = (39.90865673957631, 116.39762729119315)


def _grid_over_china() -> list[tuple[float, float]]:
    """A deterministic 41 x 41 grid over mainland China (hypothesis is not installed in this venv)."""
    return [(18.0 + 35.0 * i / 40, 74.0 + 60.0 * j / 40) for i in range(41) for j in range(41)]


def test_wgs84_to_gcj02_matches_published_reference() -> None:
    assert wgs84_to_gcj02(*BEIJING) == pytest.approx(REF_WGS84_TO_GCJ02, abs=1e-12)


def test_gcj02_to_bd09_matches_published_reference() -> None:
    assert gcj02_to_bd09(*BEIJING) == pytest.approx(REF_GCJ02_TO_BD09, abs=1e-12)


def test_wgs84_to_bd09_matches_published_reference() -> None:
    assert wgs84_to_bd09(*BEIJING) == pytest.approx(REF_WGS84_TO_BD09, abs=1e-12)


def test_shanghai_offset() -> None:
    # People's Square, Shanghai. The value comes from the formula itself (pinned against regressions; the Beijing
    # vector above is the independent check): GCJ-02 moves this point about 220 m south and 430 m east, which is
    # the well-known size of the offset there. (The often-quoted "31.22842, 121.47818" is a rounded value about
    # 5 m away.)
    lat, lon = wgs84_to_gcj02(31.2304, 121.4737)
    assert (lat, lon) == pytest.approx((31.228457737577, 121.478223059277), abs=1e-9)
    assert 400.0 < haversine_m(31.2304, 121.4737, lat, lon) < 550.0


def test_gcj02_to_wgs84_is_exact_where_the_one_step_inverse_is_not() -> None:
    wgs = gcj02_to_wgs84(*BEIJING)
    assert wgs84_to_gcj02(*wgs) == pytest.approx(BEIJING, abs=1e-9)
    # The published one-step value is a few centimetres off here (and up to metres elsewhere in China).
    assert 0.01 < haversine_m(*wgs, *REF_GCJ02_TO_WGS84_ONE_STEP) < 1.0
    one_step_back = wgs84_to_gcj02(*REF_GCJ02_TO_WGS84_ONE_STEP)
    assert haversine_m(*one_step_back, *BEIJING) > 0.01


def test_bd09_to_gcj02_is_exact_where_the_one_step_inverse_is_not() -> None:
    gcj = bd09_to_gcj02(*BEIJING)
    assert gcj02_to_bd09(*gcj) == pytest.approx(BEIJING, abs=1e-9)
    assert 0.01 < haversine_m(*gcj, *REF_BD09_TO_GCJ02_ONE_STEP) < 1.0


ROUND_TRIPS: dict[str, Callable[[float, float], tuple[float, float]]] = {
    "wgs84->gcj02->wgs84": lambda lat, lon: gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon)),
    "wgs84->bd09->wgs84": lambda lat, lon: bd09_to_wgs84(*wgs84_to_bd09(lat, lon)),
    "gcj02->bd09->gcj02": lambda lat, lon: bd09_to_gcj02(*gcj02_to_bd09(lat, lon)),
    # The other way round: a point from an AMap or Baidu SDK survives the trip through WGS-84 storage.
    "gcj02->wgs84->gcj02": lambda lat, lon: wgs84_to_gcj02(*gcj02_to_wgs84(lat, lon)),
    "bd09->wgs84->bd09": lambda lat, lon: wgs84_to_bd09(*bd09_to_wgs84(lat, lon)),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trips_across_china(name: str) -> None:
    trip = ROUND_TRIPS[name]
    worst_error, worst_at = 0.0, (0.0, 0.0)
    for lat, lon in _grid_over_china():
        back_lat, back_lon = trip(lat, lon)
        error = max(abs(back_lat - lat), abs(back_lon - lon))
        if error > worst_error:
            worst_error, worst_at = error, (lat, lon)
    assert worst_error < 1e-7, f"{name}: error {worst_error:.2e} degrees at {worst_at}"


def test_offsets_inside_china_are_hundreds_of_metres() -> None:
    # Guards against a transform that silently does nothing (which would pass every round trip).
    for lat, lon in _grid_over_china():
        assert 1.0 < haversine_m(lat, lon, *wgs84_to_gcj02(lat, lon)) < 1000.0


OUTSIDE_CHINA = [
    (51.5007, -0.1246),  # London
    (-33.8568, 151.2153),  # Sydney
    (21.3069, -157.8583),  # Honolulu
    (0.5, 100.0),  # just south of the box
    (40.0, 140.0),  # just east of the box
]


@pytest.mark.parametrize(("lat", "lon"), OUTSIDE_CHINA)
def test_gcj02_is_identity_outside_china(lat: float, lon: float) -> None:
    assert not in_gcj02_region(lat, lon)
    assert wgs84_to_gcj02(lat, lon) == (lat, lon)
    assert gcj02_to_wgs84(lat, lon) == (lat, lon)
    assert to_wgs84(lat, lon, Crs.GCJ02) == (lat, lon)
    assert from_wgs84(lat, lon, Crs.GCJ02) == (lat, lon)


def test_bd09_offset_applies_everywhere_like_the_published_formula() -> None:
    london = OUTSIDE_CHINA[0]
    assert wgs84_to_bd09(*london) == gcj02_to_bd09(*london)
    assert wgs84_to_bd09(*london) != london
    assert bd09_to_wgs84(*wgs84_to_bd09(*london)) == pytest.approx(london, abs=1e-9)


def test_in_gcj02_region_box_edges() -> None:
    assert in_gcj02_region(39.915, 116.404)
    assert in_gcj02_region(0.8293, 72.004)
    assert in_gcj02_region(55.8271, 137.8347)
    assert not in_gcj02_region(0.8292, 100.0)
    assert not in_gcj02_region(55.8272, 100.0)
    assert not in_gcj02_region(30.0, 72.003)
    assert not in_gcj02_region(30.0, 137.8348)


def test_wgs84_is_the_identity() -> None:
    assert to_wgs84(*BEIJING, Crs.WGS84) == BEIJING
    assert from_wgs84(*BEIJING, Crs.WGS84) == BEIJING


def test_crs_dispatch_uses_the_matching_transform() -> None:
    assert from_wgs84(*BEIJING, Crs.GCJ02) == wgs84_to_gcj02(*BEIJING)
    assert from_wgs84(*BEIJING, Crs.BD09) == wgs84_to_bd09(*BEIJING)
    assert to_wgs84(*BEIJING, Crs.GCJ02) == gcj02_to_wgs84(*BEIJING)
    assert to_wgs84(*BEIJING, Crs.BD09) == bd09_to_wgs84(*BEIJING)


@pytest.mark.parametrize("crs", list(Crs))
def test_to_wgs84_undoes_from_wgs84(crs: Crs) -> None:
    assert to_wgs84(*from_wgs84(*BEIJING, crs), crs) == pytest.approx(BEIJING, abs=1e-9)


def test_crs_accepts_its_query_parameter_strings() -> None:
    assert Crs("gcj02") is Crs.GCJ02
    assert [member.value for member in Crs] == ["wgs84", "gcj02", "bd09"]
    # A StrEnum compares equal to its value, so a plain string from a query parameter dispatches too.
    assert to_wgs84(*BEIJING, "bd09") == to_wgs84(*BEIJING, Crs.BD09)  # type: ignore[arg-type]


def test_unknown_crs_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        to_wgs84(*BEIJING, "epsg3857")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown coordinate system"):
        from_wgs84(*BEIJING, "epsg3857")  # type: ignore[arg-type]
