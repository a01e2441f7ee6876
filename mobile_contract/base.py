"""Base classes and constrained scalar types shared by every wire shape."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body. Unknown fields are refused (CONTRACT: 422), so a typo never silently drops data."""


class Response(msgspec.Struct, kw_only=True):
    """A response body. Phones must ignore fields they do not know, so answers may grow."""


Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0, description="WGS-84 latitude, or the `crs` asked for")]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0, description="WGS-84 longitude, or the `crs` asked for")]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=4000)]
Phone = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 \-]{1,30}$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with an offset; stored as UTC")]
