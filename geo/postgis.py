"""SQL fragments for PostGIS that hot paths (nearby, position ingest) paste into prebuilt statements.

Hot paths run hand-written SQL with bound parameters rather than GeoAlchemy2 expressions (ARCHITECTURE.md,
"Speed"), so the spelling of a point lives here once: longitude first (ST_MakePoint is x, y; swapping them is
the classic bug, and it still yields a valid point, in the wrong place), SRID 4326, cast to geography so that
`<->` ranks by distance on the sphere and uses the geography GiST index.
"""

from __future__ import annotations

import re

__all__ = ["geography_point_sql", "point_ewkt"]

DECIMALS = 7  # ~1 cm: points are stored at this precision; more digits are GPS noise

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


def point_ewkt(lat: float, lon: float) -> str:
    """A point as a value for a geography column (extended WKT, longitude first), at the stored precision.

    >>> point_ewkt(31.2304, 121.4737)
    'SRID=4326;POINT(121.4737 31.2304)'
    """
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"not a WGS-84 point: lat {lat!r}, lon {lon!r}")
    return f"SRID=4326;POINT({round(lon, DECIMALS)!r} {round(lat, DECIMALS)!r})"
