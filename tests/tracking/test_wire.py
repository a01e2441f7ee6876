"""The trail's wire shapes skip Request.__post_init__'s walk over every field (the hot ingest decodes 1,000
fixes a batch); this keeps their own checks complete: a datetime or free-form JSON field added later must be
checked by them too."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from mobile_contract import tracking as wire


def _leaves(kind: msgspec.inspect.Type) -> list[msgspec.inspect.Type]:
    if isinstance(kind, msgspec.inspect.Metadata):
        return _leaves(kind.type)
    if isinstance(kind, msgspec.inspect.UnionType):
        return [leaf for member in kind.types for leaf in _leaves(member)]
    return [kind]


def _checked_kinds(shape: type[msgspec.Struct]) -> dict[str, str]:
    """The fields Request.__post_init__ would check: datetimes, and free-form JSON (dicts, Any, lists of other
    than structs)."""
    kinds = {}
    info = msgspec.inspect.type_info(shape)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        for kind in _leaves(field.type):
            if isinstance(kind, msgspec.inspect.DateTimeType):
                kinds[field.name] = "datetime"
            elif isinstance(kind, msgspec.inspect.DictType | msgspec.inspect.AnyType) or (
                isinstance(kind, msgspec.inspect.ListType)
                and not isinstance(_leaves(kind.item_type)[0], msgspec.inspect.StructType)
            ):
                kinds[field.name] = "json"
    return kinds


def test_the_fix_and_the_batch_check_every_field_the_walk_would() -> None:
    assert _checked_kinds(wire.TrackedFix) == {"captured_at": "datetime"}
    assert _checked_kinds(wire.PositionBatch) == {}


def test_a_fix_outside_the_calendar_is_refused() -> None:
    body = {"id": "6f1f0b8e-2f3a-4c55-9a61-1b7a0d3e5c21", "lat": 1, "lon": 1, "accuracy_m": 5}
    ok = msgspec.json.encode({**body, "captured_at": "2026-12-02T09:00:00+08:00"})
    assert isinstance(msgspec.json.decode(ok, type=wire.TrackedFix).captured_at, datetime)
    bad = msgspec.json.encode({**body, "captured_at": "2201-01-01T00:00:00Z"})
    with pytest.raises(msgspec.ValidationError, match="captured_at"):
        msgspec.json.decode(bad, type=wire.TrackedFix)
