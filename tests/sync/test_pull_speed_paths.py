"""The shortcuts of the no-change pull (bench/: issue 7) answer exactly what the full path answers.

- The empty page is a precomputed byte string around the cursor (backend/offline/routes.py, PullPages.encode).
- The cursor codec remembers what it encoded and verified (sync/cursor.py); a remembered cursor is still refused for
  another user, and a tampered one is still refused.
- Request ids come from a store filled 512 at a time (backend/observability.py): still distinct.
"""

from __future__ import annotations

import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.app import PULL_PAGES
from backend.observability import new_request_id
from mobile_contract.errors import ErrorCode
from sync.cursor import CursorCodec, CursorRefused, SyncCursor
from sync.engine import CollectionDelta, PullPage

xids = st.integers(0, 2**63 - 1)
afters = st.none() | st.tuples(
    xids, st.sampled_from(["pois", "visits", "work_items", "jobs"]), st.uuids().map(lambda u: u.hex)
)
cursors = st.builds(SyncCursor, st.uuids(), xids, xids, afters)


@given(cursor=cursors, key=st.binary(min_size=1, max_size=64))
def test_an_empty_page_is_byte_for_byte_the_encoded_response(cursor: SyncCursor, key: bytes) -> None:
    text = CursorCodec(key).encode(cursor)
    page = PullPage(
        changes={name: CollectionDelta() for name in PULL_PAGES.registry.collections},
        cursor=text,
        has_more=False,
        snapshot=cursor.snapshot,
    )
    assert PULL_PAGES.encode(page) == msgspec.json.encode(PULL_PAGES.response(page))


@given(cursor=cursors, removed=st.lists(st.uuids(), max_size=3), has_more=st.booleans())
def test_a_page_with_changes_or_more_to_come_is_encoded_in_full(
    cursor: SyncCursor, removed: list[uuid.UUID], has_more: bool
) -> None:
    changes = {name: CollectionDelta() for name in PULL_PAGES.registry.collections}
    changes["pois"].removed.extend(removed)
    page = PullPage(changes=changes, cursor=CursorCodec(b"k").encode(cursor), has_more=has_more, snapshot=0)
    encoded = PULL_PAGES.encode(page)
    assert encoded == msgspec.json.encode(PULL_PAGES.response(page))
    assert msgspec.json.decode(encoded)["has_more"] is has_more


@given(cursor=cursors, other=st.uuids(), times=st.integers(1, 3))
def test_remembered_cursors_decode_as_the_full_path_and_stay_tied_to_their_user(
    cursor: SyncCursor, other: uuid.UUID, times: int
) -> None:
    codec = CursorCodec(b"secret")
    fresh = CursorCodec(b"secret")  # remembers nothing
    for _ in range(times):
        text = codec.encode(cursor)
        assert text == fresh.encode(cursor)
        assert codec.decode(text, cursor.user_id) == fresh.decode(text, cursor.user_id) == cursor
    if other != cursor.user_id:
        with pytest.raises(CursorRefused) as refused:
            codec.decode(text, other)
        assert refused.value.code is ErrorCode.RESYNC_REQUIRED
    tampered = text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1]
    with pytest.raises(CursorRefused) as refused:
        codec.decode(tampered, cursor.user_id)
    assert refused.value.code is ErrorCode.INVALID_CURSOR
    with pytest.raises(CursorRefused):
        CursorCodec(b"another key").decode(text, cursor.user_id)


def test_request_ids_stay_distinct_across_refills() -> None:
    ids = [new_request_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(value) == 16 and int(value, 16) >= 0 for value in ids)
