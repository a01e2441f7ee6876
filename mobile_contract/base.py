"""Base classes and constrained scalar types shared by every wire shape.

Every input is bounded here, once (issue 8): PostgreSQL refuses what Python accepts (U+0000 in text, integers past
int64, years past 9999 once an offset is applied, JSON nested until the decoder's stack runs out), and a value it
refuses must be a 422 problem at the edge, never a 500 deep inside a service or a push that wedges a phone's queue.

- Text: every `str` of a request has a `max_length` and a `pattern` that refuses U+0000 (`Line` also refuses the
  other C0 controls; `Text` allows tab, newline and carriage return).
- Integers that reach PostgreSQL stay within int64 (`Int64`, `Id64`); floats are finite and bounded (`ge`/`le`).
- Datetimes are aware (`AwareDatetime`) and, in UTC, within `EARLIEST`..`LATEST`: converting them to UTC can then
  never overflow, in Python or in PostgreSQL.
- Free-form JSON (`JsonObject`: mutation args, answers, ...) is NUL-free, finite, within int64, at most
  `MAX_JSON_DEPTH` deep and `MAX_JSON_NODES` values large.

The datetime and free-form JSON rules cannot be said with msgspec constraints, so `Request.__post_init__` checks
them on every request shape (msgspec turns its ValueError into a validation error: a 422 naming the field).
tests/contract/test_bounds.py walks every request shape and every route parameter and fails when one is unbounded.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Moments a phone may send, in UTC. Far inside PostgreSQL's and Python's ranges, so no offset can push a value out.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)

MAX_JSON_DEPTH: Final = 32  # free-form JSON; deep enough for any form answer, far from any decoder's stack
MAX_JSON_NODES: Final = 20_000  # values in one free-form JSON field
MAX_JSON_STRING: Final = 20_000  # characters of one string inside free-form JSON
MAX_JSON_KEY: Final = 200

# Written with \u escapes, so the same text is a Python and an ECMA (JSON Schema) regular expression.
NO_NUL = r"^[^\u0000]*$"
NO_CONTROL = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$"  # tab, newline and CR allowed
SINGLE_LINE = r"^[^\u0000-\u001f\u007f]*$"


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body. Unknown fields are refused (CONTRACT: 422), so a typo never silently drops data.

    Checks what msgspec constraints cannot express: every datetime within EARLIEST..LATEST in UTC, every free-form
    JSON value NUL-free, finite, within int64 and size limits. Subclasses never need to remember it.
    """

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                problem = moment_problem(value)
            elif isinstance(value, dict | list):
                problem = json_problem(value)
            else:
                continue
            if problem is not None:
                raise ValueError(f"`{name}`: {problem}")


class Response(msgspec.Struct, kw_only=True):
    """A response body. Phones must ignore fields they do not know, so answers may grow."""


def moment_problem(value: datetime) -> str | None:
    """Why this datetime cannot be taken, or None. Safe for any datetime: nothing here converts it to UTC before
    its local year is known to be far from the calendar's edges."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "a datetime needs an offset (RFC 3339), e.g. 2026-12-02T09:30:00+08:00"
    if not (EARLIEST.year - 1 <= value.year <= LATEST.year) or not (EARLIEST <= value <= LATEST):
        return f"a datetime must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
    return None


def check_moment(value: datetime) -> None:
    problem = moment_problem(value)
    if problem is not None:
        raise ValueError(problem)


def json_problem(value: Any) -> str | None:
    """Why this free-form JSON value cannot be stored (JSONB) or served, or None. Iterative: no recursion, so a
    hostile depth costs nothing but the walk up to the limit."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES:
            return f"free-form JSON may hold at most {MAX_JSON_NODES} values"
        if isinstance(item, str):
            if len(item) > MAX_JSON_STRING:
                return f"strings in free-form JSON may be at most {MAX_JSON_STRING} characters"
            if "\x00" in item:
                return "text may not contain U+0000"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                return "integers must fit in 64 bits"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "numbers must be finite"
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"free-form JSON may be nested at most {MAX_JSON_DEPTH} deep"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str) or len(key) > MAX_JSON_KEY or "\x00" in key:
                        return f"keys must be text of at most {MAX_JSON_KEY} characters without U+0000"
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        # anything else (a Struct inside a list of Structs) was checked by its own type
    return None


def check_json(value: Any) -> None:
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)


Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0, description="WGS-84 latitude, or the `crs` asked for")]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0, description="WGS-84 longitude, or the `crs` asked for")]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=SINGLE_LINE)]
LongText = Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_CONTROL)]
Phone = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 \-]{1,30}$")]
AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(tz=True, description="RFC 3339 with an offset; stored as UTC; between 1970 and 2200 in UTC"),
]
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Id64 = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
JsonKey = Annotated[str, msgspec.Meta(max_length=MAX_JSON_KEY, pattern=NO_NUL)]
# Free-form JSON objects: bounded by Request.__post_init__ (depth, size, NUL, finite numbers, int64).
JsonObject = Annotated[
    dict[JsonKey, Any], msgspec.Meta(max_length=1_000, description="free-form JSON, at most 32 deep")
]
