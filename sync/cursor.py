"""Pull cursors: opaque to phones, signed, and tied to the user they were made for.

A cursor holds `base` (send changes with xid >= base), `snapshot` (the first page's pg_snapshot_xmin, the base
of the next pull once every page is read) and `after` (the last change sent, while paging). Because the next
base is the snapshot's xmin, a transaction still running at pull time is never skipped: its xid is >= xmin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from mobile_contract.errors import ErrorCode, status_of


class CursorRefused(Exception):
    """The cursor cannot be served; `code` tells the phone what to do."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status_of(code)  # one status per code (mobile_contract/errors.py): resync_required is 410
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SyncCursor:
    user_id: UUID
    base: int
    snapshot: int
    after: tuple[int, str, str] | None  # (xid, collection, record id hex) of the last change sent

    @property
    def paging(self) -> bool:
        return self.after is not None


class _Wire(msgspec.Struct, array_like=True):
    user: str
    base: int
    snapshot: int
    after: tuple[int, str, str] | None


# Bound of each memo below: full, it is emptied and refills with the cursors in use (as the token cache does).
_MEMO_LIMIT = 20_000


class CursorCodec:
    """Encodes and verifies cursors. Both directions are remembered (bounded): a phone polling a quiet database gets
    back the cursor it sent, and each poll would otherwise pay a signature check, msgpack and base64 both ways
    (~6 us of the no-change pull's Python, bench/). The memos hold only what this codec made or verified, so an
    answer from them is the one the full path gives."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"groundwork-sync-cursor:" + key).digest()
        self._encoded: dict[SyncCursor, str] = {}
        self._decoded: dict[str, SyncCursor] = {}

    def encode(self, cursor: SyncCursor) -> str:
        text = self._encoded.get(cursor)
        if text is None:
            payload = msgspec.msgpack.encode(_Wire(cursor.user_id.hex, cursor.base, cursor.snapshot, cursor.after))
            tag = hmac.digest(self._key, payload, "sha256")[:12]
            text = base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")
            _remember(self._encoded, cursor, text)
        return text

    def decode(self, text: str, user_id: UUID) -> SyncCursor:
        cursor = self._decoded.get(text)
        if cursor is None:
            cursor = self._verify(text)
            _remember(self._decoded, text, cursor)
        if cursor.user_id != user_id:
            raise CursorRefused(
                ErrorCode.RESYNC_REQUIRED, "This cursor belongs to another user: pull again without a cursor."
            )
        return cursor

    def _verify(self, text: str) -> SyncCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise _malformed() from exc
        tag, payload = raw[:12], raw[12:]
        if len(tag) < 12 or not hmac.compare_digest(tag, hmac.digest(self._key, payload, "sha256")[:12]):
            raise _malformed()
        try:
            wire = msgspec.msgpack.decode(payload, type=_Wire)
            owner = UUID(hex=wire.user)
        except (msgspec.DecodeError, ValueError) as exc:
            raise _malformed() from exc
        return SyncCursor(user_id=owner, base=wire.base, snapshot=wire.snapshot, after=wire.after)


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _malformed() -> CursorRefused:
    return CursorRefused(ErrorCode.INVALID_CURSOR, "This cursor is not one we issued: pull again without it.")
