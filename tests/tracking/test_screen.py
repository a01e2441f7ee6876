"""The ingest's screen (service.Screen) is exact in one direction: a fix it lets through as plain is one the full
judgment and the refusal rules would take as it is, with no doubts. Generated close to every limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.tracking import service
from geo.verdict import VerdictPolicy

RECEIVED = datetime(2026, 12, 2, 9, 30, 0, 123456, tzinfo=UTC)
POLICY = VerdictPolicy()
RETENTION = timedelta(days=90)
# Offsets near each limit (skew, future, retention), in microseconds, and anywhere.
_LIMITS_US = [
    0,
    int(POLICY.max_clock_skew_s * 1e6),
    int(POLICY.future_tolerance_s * 1e6),
    int(RETENTION / timedelta(microseconds=1)),
]
_offsets = st.one_of(
    st.sampled_from(_LIMITS_US).flatmap(lambda limit: st.integers(-3000, 3000).map(lambda near: limit + near)),
    st.integers(-(10**14), 10**14),
)


@settings(max_examples=400, deadline=None)
@given(
    captured_us=_offsets,
    captured_sign=st.sampled_from([-1, 1]),
    age_ms=st.one_of(st.none(), _offsets.map(lambda us: abs(us) // 1000)),
    mock=st.booleans(),
    offset_h=st.integers(-12, 14),
)
def test_a_plain_fix_is_taken_as_it_is(
    captured_us: int, captured_sign: int, age_ms: int | None, mock: bool, offset_h: int
) -> None:
    from datetime import timezone

    captured = (RECEIVED + captured_sign * timedelta(microseconds=captured_us)).astimezone(
        timezone(timedelta(hours=offset_h))
    )
    if age_ms is not None and age_ms > 30 * 86_400_000:
        age_ms = 30 * 86_400_000
    fix = service.IncomingFix(
        id=uuid.uuid4(), lat=31.2, lon=121.4, accuracy_m=10.0, captured_at=captured, age_ms=age_ms, is_mock=mock
    )
    oldest = RECEIVED - RETENTION
    screen = service.Screen(RECEIVED, oldest, POLICY, windowed=False)
    if not screen.plain(fix):
        return
    trusted, reasons = service._judge(fix, RECEIVED, POLICY)
    assert reasons == ()
    assert trusted >= oldest
    expected = captured if age_ms is None else RECEIVED - timedelta(milliseconds=age_ms)
    assert trusted == expected


def test_a_team_with_windows_has_every_fix_judged() -> None:
    fix = service.IncomingFix(id=uuid.uuid4(), lat=31.2, lon=121.4, accuracy_m=10.0, captured_at=RECEIVED, age_ms=5)
    assert service.Screen(RECEIVED, RECEIVED - RETENTION, POLICY, windowed=False).plain(fix)
    assert not service.Screen(RECEIVED, RECEIVED - RETENTION, POLICY, windowed=True).plain(fix)
