"""SQL fragments for PostGIS that hot paths (nearby, position ingest) paste into prebuilt statements.

Hot paths run hand-written SQL with bound parameters rather than GeoAlchemy2 expressions (ARCHITECTURE.md,
"Speed"), so the spelling of a point lives here once: longitude first (ST_MakePoint is x, y; swapping them is
the classic bug, and it still yields a valid point, in the wrong place), SRID 4326, cast to geography so that
`<->` ranks by distance on the sphere and uses the geography GiST index.
"""

from __future__ import annotations

import re

__all__ = [
    "KNN_WITHOUT_INDEX_ORDER",
    "degrees_sql",
    "geography_point_sql",
    "is_knn_order_error",
    "point_ewkt",
    "stored_point",
]

DECIMALS = 7  # ~1 cm: points are stored at this precision; more digits are GPS noise

# PostGIS's geography KNN (`<->` through the GiST index) can fail with "index returned tuples in wrong order" when
# the query point and a stored point are (nearly) the same place: its index-side lower bound then exceeds the
# exact distance by a rounding error (reproduced on PostGIS 3 / PostgreSQL 15 at (1e-15, 0) against (0, 0), and at
# (45, -180) against (45, 179.9999999)). Points are stored and queried in one spelling at 7 decimals, which avoids
# most cases; what remains is rerun with the index ordering off (the planner then filters through the index and
# sorts by the exact distance: the same answer, a little slower, only on these rare queries).
KNN_WITHOUT_INDEX_ORDER = "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off"


def is_knn_order_error(exc: BaseException) -> bool:
    return "index returned tuples in wrong order" in str(exc)


# A bind placeholder (asyncpg `$1`, SQLAlchemy `:lon`, psycopg `%(lon)s`) or a column reference (`p.lon`), with an
# optional cast. Anything else is refused, so a coordinate value can never be formatted into the SQL text.
_OPERAND = re.compile(r"(?:\$\d+|:[A-Za-z_]\w*|%\([A-Za-z_]\w*\)s|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)(?:::[A-Za-z_]\w*)?")


def geography_point_sql(lon_param: str, lat_param: str) -> str:
    """`ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography` over two placeholders or column references.

    >>> geography_point_sql("$1", "$2")
    'ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography'
    """
    for name, operand in (("lon_param", lon_param), ("lat_param", lat_param)):
        if not _OPERAND.fullmatch(operand):
            raise ValueError(f"{name} must be a bind placeholder or a column reference, got {operand!r}")
    return f"ST_SetSRID(ST_MakePoint({lon_param}, {lat_param}), 4326)::geography"


def stored_point(lat: float, lon: float) -> tuple[float, float]:
    """A point as we store and query it: 7 decimals, and one spelling for places that have several (longitude
    180 is -180; at a pole every longitude is 0; -0.0 is 0.0). PostGIS's geography KNN breaks ("index returned
    tuples in wrong order") when a query point and a stored point are the same place spelled differently or
    1e-15 degrees apart; with one spelling they are equal or at least 1e-7 degrees apart."""
    lat, lon = round(lat, DECIMALS) + 0.0, round(lon, DECIMALS) + 0.0
    if lon == 180.0:
        lon = -180.0
    if abs(lat) == 90.0:
        lon = 0.0
    return lat, lon


def point_ewkt(lat: float, lon: float) -> str:
    """A point as a value for a geography column (extended WKT, longitude first), in its stored spelling.

    >>> point_ewkt(31.2304, 121.4737)
    'SRID=4326;POINT(121.4737 31.2304)'
    """
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"not a WGS-84 point: lat {lat!r}, lon {lon!r}")
    lat, lon = stored_point(lat, lon)
    return f"SRID=4326;POINT({lon!r} {lat!r})"


def degrees_sql(column: str) -> tuple[str, str]:
    """A geography point column as plain degrees: (latitude, longitude) expressions over `column`.

    >>> degrees_sql("jobs.location")
    ('ST_Y(jobs.location::geometry)', 'ST_X(jobs.location::geometry)')
    """
    if not _OPERAND.fullmatch(column) or "::" in column:
        raise ValueError(f"column must be a column reference, got {column!r}")
    return f"ST_Y({column}::geometry)", f"ST_X({column}::geometry)"
