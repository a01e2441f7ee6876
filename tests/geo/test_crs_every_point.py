"""Coordinate conversions at every latitude and longitude, poles and antimeridian included, for every system."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from geo.crs import Crs, from_wgs84, to_wgs84

latitudes = st.one_of(
    st.floats(min_value=-90.0, max_value=90.0, allow_nan=False),
    st.sampled_from([-90.0, 90.0, 0.0, -0.0, 1e-15, -1e-15, 89.9999999, -89.9999999, 0.8293, 55.8271]),
)
longitudes = st.one_of(
    st.floats(min_value=-180.0, max_value=180.0, allow_nan=False),
    st.sampled_from([-180.0, 180.0, 0.0, -0.0, 1e-15, 179.9999999, -179.9999999, 72.004, 137.8347]),
)


@settings(max_examples=600, deadline=None)
@given(lat=latitudes, lon=longitudes, crs=st.sampled_from(list(Crs)))
def test_conversions_stay_on_the_globe(lat: float, lon: float, crs: Crs) -> None:
    for convert in (to_wgs84, from_wgs84):
        out_lat, out_lon = convert(lat, lon, crs)
        assert math.isfinite(out_lat)
        assert math.isfinite(out_lon)
        assert -90.0 <= out_lat <= 90.0, (convert.__name__, crs, lat, lon, out_lat)
        assert -180.0 <= out_lon <= 180.0, (convert.__name__, crs, lat, lon, out_lon)


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(min_value=1.0, max_value=55.0),
    lon=st.floats(min_value=73.0, max_value=137.0),
    crs=st.sampled_from(list(Crs)),
)
def test_round_trips_inside_the_region_the_systems_are_for(lat: float, lon: float, crs: Crs) -> None:
    back_lat, back_lon = to_wgs84(*from_wgs84(lat, lon, crs), crs)
    assert abs(back_lat - lat) < 1e-7
    assert abs(back_lon - lon) < 1e-7
