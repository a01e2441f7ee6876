"""SQL fragments for PostGIS that hot paths (nearby, position ingest) paste into prebuilt statements.

Hot paths run hand-written SQL with bound parameters rather than GeoAlchemy2 expressions (ARCHITECTURE.md,
"Speed"), so the spelling of a point lives here once: longitude first (ST_MakePoint is x, y; swapping them is
the classic bug, and it still yields a valid point, in the wrong place), SRID 4326, cast to geography so that
`<->` ranks by distance on the sphere and uses the geography GiST index.
"""

from __future__ import annotations

import re

__all__ = ["KNN_WITHOUT_INDEX_ORDER", "geography_point_sql", "is_knn_order_error"]

# PostGIS's geography KNN (`<->` through the GiST index) can fail with "index returned tuples in wrong order" when
# the query point and a stored point are (nearly) the same place: its index-side lower bound then exceeds the
# exact distance by a rounding error (reproduced on PostGIS 3 / PostgreSQL 15 at (1e-15, 0) against (0, 0), and at
# (45, -180) against (45, 179.9999999)). Points are stored and queried in one spelling at 7 decimals, which avoids
# most cases; what remains is rerun with the index ordering off (the planner then filters through the index and
# sorts by the exact distance: the same answer, a little slower, only on these rare queries).
KNN_WITHOUT_INDEX_ORDER = "SET LOCAL enable_indexscan = off"


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
