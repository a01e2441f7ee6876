"""The shared PostGIS point expression: longitude first, SRID 4326, geography, placeholders only."""

from __future__ import annotations

import pytest

from geo.postgis import geography_point_sql


@pytest.mark.parametrize(
    ("lon_param", "lat_param", "expected"),
    [
        ("$1", "$2", "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography"),
        (":lon", ":lat", "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography"),
        ("%(lon)s", "%(lat)s", "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"),
        ("p.lon", "p.lat", "ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography"),
        ("$3::float8", "$4::float8", "ST_SetSRID(ST_MakePoint($3::float8, $4::float8), 4326)::geography"),
    ],
)
def test_geography_point_sql(lon_param: str, lat_param: str, expected: str) -> None:
    assert geography_point_sql(lon_param, lat_param) == expected


@pytest.mark.parametrize(
    ("lon_param", "lat_param", "field"),
    [
        ("121.4737", "$2", "lon_param"),  # a value, not a placeholder
        ("$1", "31.2304", "lat_param"),
        ("$1); DROP TABLE poi; --", "$2", "lon_param"),
        ("", "$2", "lon_param"),
        ("$1", ":lat ", "lat_param"),
    ],
)
def test_geography_point_sql_refuses_anything_but_placeholders(lon_param: str, lat_param: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} must be a bind placeholder"):
        geography_point_sql(lon_param, lat_param)
