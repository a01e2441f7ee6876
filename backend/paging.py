"""Keyset cursors of cursor-paged lists: opaque to clients, and a clear problem when malformed or tampered with."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import msgspec

from backend.errors import DomainError
from mobile_contract.errors import ErrorCode

T = TypeVar("T")


def encode_cursor(*parts: Any) -> str:
    """The position after the last item of a page (e.g. its sort key and id), as an opaque string."""
    return base64.urlsafe_b64encode(msgspec.json.encode(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, shape: type[T]) -> T:
    """The parts of a cursor, checked against `shape` (e.g. `tuple[datetime, UUID]`)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=shape)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise DomainError(ErrorCode.INVALID_CURSOR, "This cursor is malformed; start again without it.") from exc
