"""Verdicts on location claims: every reason, every status path, trusted capture times and policy validation."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from geo.distance import destination
from geo.fence import CircleFence, PolygonFence, distance_to_fence_m, inside_share
from geo.verdict import (
    Fix,
    PriorFix,
    Reason,
    Verdict,
    VerdictPolicy,
    VerdictStatus,
    judge,
    trusted_capture_time,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # when the server receives the fix, unless a test says otherwise
SHOP = (31.2304, 121.4737)
FENCE = CircleFence(lat=SHOP[0], lon=SHOP[1], radius_m=50.0)
POLICY = VerdictPolicy()


def _at(bearing_deg: float, distance_m: float) -> tuple[float, float]:
    return destination(*SHOP, bearing_deg, distance_m)


def _fix(
    position: tuple[float, float] = SHOP,
    *,
    accuracy_m: float = 10.0,
    captured_at: datetime = T0 - timedelta(seconds=5),
    is_mock: bool = False,
    age_ms: int | None = None,
) -> Fix:
    return Fix(
        lat=position[0],
        lon=position[1],
        accuracy_m=accuracy_m,
        captured_at=captured_at,
        is_mock=is_mock,
        age_ms=age_ms,
        provider="gps",
    )


def _judge(
    fix: Fix,
    fence: CircleFence | PolygonFence = FENCE,
    *,
    received_at: datetime = T0,
    policy: VerdictPolicy = POLICY,
    prior: PriorFix | None = None,
    action_at: datetime | None = None,
) -> Verdict:
    return judge(fix, fence, received_at=received_at, policy=policy, prior=prior, action_at=action_at)


def _offset_for_share(target: float, accuracy_m: float = 10.0) -> float:
    """How far east of the shop a fix must be for inside_share to equal target (bisection; share falls with it)."""
    low, high = 0.0, FENCE.radius_m + accuracy_m
    for _ in range(100):
        mid = (low + high) / 2
        if inside_share(*_at(90.0, mid), accuracy_m, FENCE) > target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# --- status paths -------------------------------------------------------------------------------------------------


def test_verified() -> None:
    fix = _fix()
    verdict = _judge(fix)
    assert verdict == Verdict(
        status=VerdictStatus.VERIFIED,
        confidence=1.0,
        distance_m=0.0,
        reasons=(),
        trusted_captured_at=fix.captured_at,
    )


def test_outside_geofence_but_plausible_is_uncertain() -> None:
    # On the fence's edge: about half of the accuracy disc is inside.
    verdict = _judge(_fix(_at(90.0, 50.0)))
    assert verdict.status is VerdictStatus.UNCERTAIN
    assert verdict.reasons == (Reason.OUTSIDE_GEOFENCE,)
    assert 0.3 <= verdict.confidence < 0.8
    assert verdict.distance_m == 50.0


def test_outside_geofence_far_away_is_rejected() -> None:
    verdict = _judge(_fix(_at(180.0, 500.0)))
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == (Reason.OUTSIDE_GEOFENCE,)
    assert verdict.confidence == 0.0
    assert verdict.distance_m == 500.0


def test_uncertain_min_confidence_decides_rejection() -> None:
    fix = _fix(_at(90.0, 50.0))  # confidence about 0.49
    strict = dataclasses.replace(POLICY, uncertain_min_confidence=0.6)
    verdict = _judge(fix, policy=strict)
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == (Reason.OUTSIDE_GEOFENCE,)


def test_low_accuracy_inside_a_large_fence_is_uncertain() -> None:
    big = CircleFence(lat=SHOP[0], lon=SHOP[1], radius_m=1_000.0)
    verdict = _judge(_fix(accuracy_m=200.0), big)
    assert verdict.status is VerdictStatus.UNCERTAIN
    assert verdict.reasons == (Reason.LOW_ACCURACY,)
    assert verdict.confidence == 1.0


def test_accuracy_at_the_limit_is_not_low() -> None:
    big = CircleFence(lat=SHOP[0], lon=SHOP[1], radius_m=1_000.0)
    assert _judge(_fix(accuracy_m=150.0), big).status is VerdictStatus.VERIFIED


def test_mock_location_is_rejected_even_inside() -> None:
    verdict = _judge(_fix(is_mock=True))
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == (Reason.MOCK_LOCATION,)
    assert verdict.confidence == 1.0


# --- impossible speed ---------------------------------------------------------------------------------------------


def _prior(bearing_deg: float, distance_m: float, before_fix: timedelta, accuracy_m: float = 10.0) -> PriorFix:
    lat, lon = _at(bearing_deg, distance_m)
    return PriorFix(lat=lat, lon=lon, accuracy_m=accuracy_m, at=_fix().captured_at - before_fix)


def test_impossible_speed_is_rejected() -> None:
    # 10 km in a minute: 166 m/s.
    verdict = _judge(_fix(), prior=_prior(0.0, 10_000.0, timedelta(minutes=1)))
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == (Reason.IMPOSSIBLE_SPEED,)


def test_fast_but_possible_travel_is_fine() -> None:
    # 10 km in ten minutes: 16.7 m/s, a car on a ring road.
    assert _judge(_fix(), prior=_prior(0.0, 10_000.0, timedelta(minutes=10))).status is VerdictStatus.VERIFIED


def test_accuracy_radii_are_forgiven_before_judging_speed() -> None:
    # 180 m in one second. With a 120 m prior accuracy only 50 m must really have been covered: 50 m/s, fine.
    # With a 10 m prior accuracy it is 160 m/s.
    loose = _prior(0.0, 180.0, timedelta(seconds=1), accuracy_m=120.0)
    tight = _prior(0.0, 180.0, timedelta(seconds=1), accuracy_m=10.0)
    assert _judge(_fix(), prior=loose).reasons == ()
    assert _judge(_fix(), prior=tight).reasons == (Reason.IMPOSSIBLE_SPEED,)


def test_elapsed_time_is_floored_at_one_second() -> None:
    # 65 m to explain in 1 ms would be 65 km/s; over the one-second floor it is 65 m/s, under the 70 m/s limit.
    prior = _prior(0.0, 80.0, timedelta(milliseconds=1), accuracy_m=5.0)
    assert _judge(_fix(), prior=prior).reasons == ()


def test_prior_after_the_fix_says_nothing_about_speed() -> None:
    # Offline queues replay out of order: a prior taken after this fix is no evidence of travel speed.
    prior = _prior(0.0, 10_000.0, -timedelta(minutes=1))
    assert _judge(_fix(), prior=prior).status is VerdictStatus.VERIFIED


# --- time: stale, skewed and future fixes ------------------------------------------------------------------------


def test_stale_fix_is_uncertain() -> None:
    verdict = _judge(_fix(captured_at=T0 - timedelta(minutes=10)))
    assert verdict.status is VerdictStatus.UNCERTAIN
    assert verdict.reasons == (Reason.STALE_FIX,)


def test_fix_just_inside_the_staleness_window_is_fresh() -> None:
    assert _judge(_fix(captured_at=T0 - timedelta(seconds=119))).status is VerdictStatus.VERIFIED


def test_fix_taken_long_after_the_action_is_stale_too() -> None:
    # A position from ten minutes later says as little about where the action happened as one from before.
    verdict = _judge(_fix(), action_at=T0 - timedelta(minutes=10))
    assert verdict.reasons == (Reason.STALE_FIX,)


def test_offline_check_in_synced_days_later_is_judged_at_the_action() -> None:
    captured = datetime(2026, 2, 27, 9, 0, tzinfo=UTC)
    received = captured + timedelta(days=3, hours=2)
    fix = _fix(captured_at=captured)
    verdict = _judge(fix, received_at=received, action_at=captured + timedelta(seconds=10))
    assert verdict.status is VerdictStatus.VERIFIED
    assert verdict.trusted_captured_at == captured
    # Judged against its arrival instead, the same fix would be days stale.
    assert _judge(fix, received_at=received).reasons == (Reason.STALE_FIX,)


def test_offline_check_in_with_a_monotonic_age_of_days() -> None:
    captured = datetime(2026, 2, 27, 9, 0, tzinfo=UTC)
    received = captured + timedelta(days=3)
    fix = _fix(captured_at=captured, age_ms=3 * 86_400_000)
    verdict = _judge(fix, received_at=received, action_at=captured + timedelta(seconds=10))
    assert verdict.status is VerdictStatus.VERIFIED
    assert verdict.trusted_captured_at == captured


def test_phone_clock_an_hour_ahead_is_clock_skew_not_future() -> None:
    # The phone's wall clock says 10:00 but its monotonic clock says the fix is 2 s old on arrival at 09:00.
    verdict = _judge(_fix(captured_at=T0 + timedelta(hours=1), age_ms=2_000))
    assert verdict.status is VerdictStatus.UNCERTAIN
    assert verdict.reasons == (Reason.CLOCK_SKEW,)
    assert verdict.trusted_captured_at == T0 - timedelta(seconds=2)


def test_phone_clock_an_hour_behind_is_clock_skew_not_stale() -> None:
    verdict = _judge(_fix(captured_at=T0 - timedelta(hours=1), age_ms=2_000))
    assert verdict.status is VerdictStatus.UNCERTAIN
    assert verdict.reasons == (Reason.CLOCK_SKEW,)
    assert verdict.trusted_captured_at == T0 - timedelta(seconds=2)


def test_small_clock_disagreement_is_tolerated() -> None:
    verdict = _judge(_fix(captured_at=T0 + timedelta(seconds=10), age_ms=2_000))
    assert verdict.status is VerdictStatus.VERIFIED


def test_future_fix_is_rejected() -> None:
    # Without age_ms only the wall clock speaks, and it claims a position from a minute after arrival.
    verdict = _judge(_fix(captured_at=T0 + timedelta(minutes=1)))
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == (Reason.FUTURE_FIX,)


def test_future_tolerance_absorbs_small_clock_drift() -> None:
    assert _judge(_fix(captured_at=T0 + timedelta(seconds=20))).status is VerdictStatus.VERIFIED


# --- combinations, order and rounding -----------------------------------------------------------------------------


def test_combined_reasons_come_in_declaration_order() -> None:
    fix = _fix(_at(270.0, 120.0), accuracy_m=400.0, captured_at=T0 - timedelta(minutes=30), is_mock=True)
    verdict = _judge(fix)
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reasons == (
        Reason.OUTSIDE_GEOFENCE,
        Reason.LOW_ACCURACY,
        Reason.MOCK_LOCATION,
        Reason.STALE_FIX,
    )


def test_every_reason_at_once_in_order_without_duplicates() -> None:
    fix = _fix(_at(0.0, 5_000.0), accuracy_m=400.0, captured_at=T0 + timedelta(hours=1), is_mock=True)
    prior = PriorFix(lat=SHOP[0], lon=SHOP[1], accuracy_m=5.0, at=T0 - timedelta(seconds=10))
    # age_ms puts the trusted capture 5 s before arrival (skew of an hour); the future check is on the trusted time,
    # so future_fix comes from a second, age-less fix below.
    verdict = _judge(dataclasses.replace(fix, age_ms=5_000), prior=prior, action_at=T0 - timedelta(minutes=10))
    assert verdict.reasons == (
        Reason.OUTSIDE_GEOFENCE,
        Reason.LOW_ACCURACY,
        Reason.MOCK_LOCATION,
        Reason.IMPOSSIBLE_SPEED,
        Reason.STALE_FIX,
        Reason.CLOCK_SKEW,
    )
    future = _judge(fix, prior=prior)
    assert future.reasons == (
        Reason.OUTSIDE_GEOFENCE,
        Reason.LOW_ACCURACY,
        Reason.MOCK_LOCATION,
        Reason.STALE_FIX,
        Reason.FUTURE_FIX,
    )
    assert len(set(future.reasons)) == len(future.reasons)


def test_confidence_and_distance_are_rounded() -> None:
    fix = _fix(_at(90.0, 47.3456), accuracy_m=13.0)
    raw_confidence = inside_share(fix.lat, fix.lon, fix.accuracy_m, FENCE)
    raw_distance = distance_to_fence_m(fix.lat, fix.lon, FENCE)
    assert raw_confidence != round(raw_confidence, 3)
    verdict = _judge(fix)
    assert verdict.confidence == round(raw_confidence, 3)
    assert verdict.distance_m == round(raw_distance, 1) == 47.3


def test_thresholds_apply_to_the_confidence_the_client_sees() -> None:
    # Raw shares of 0.7996 and 0.2996 are shown as 0.8 and 0.3: the status must agree with the numbers shown.
    just_verified = _judge(_fix(_at(90.0, _offset_for_share(0.7996))))
    assert just_verified.confidence == 0.8
    assert just_verified.status is VerdictStatus.VERIFIED
    just_uncertain = _judge(_fix(_at(90.0, _offset_for_share(0.2996))))
    assert just_uncertain.confidence == 0.3
    assert just_uncertain.status is VerdictStatus.UNCERTAIN
    below = _judge(_fix(_at(90.0, _offset_for_share(0.2994))))
    assert below.confidence == 0.299
    assert below.status is VerdictStatus.REJECTED


def test_polygon_fence() -> None:
    square = PolygonFence(exterior=(_at(225.0, 70.0), _at(135.0, 70.0), _at(45.0, 70.0), _at(315.0, 70.0)))
    assert _judge(_fix(), square).status is VerdictStatus.VERIFIED
    outside = _judge(_fix(_at(90.0, 150.0)), square)
    assert outside.status is VerdictStatus.REJECTED
    assert outside.distance_m == pytest.approx(150.0 - 70.0 / math.sqrt(2), abs=0.2)


# --- trusted capture time -----------------------------------------------------------------------------------------


def test_trusted_capture_time_from_monotonic_age() -> None:
    fix = _fix(captured_at=T0 + timedelta(hours=3), age_ms=1_500)
    assert trusted_capture_time(fix, T0) == T0 - timedelta(milliseconds=1_500)


def test_trusted_capture_time_without_age_is_the_phone_clock() -> None:
    fix = _fix(captured_at=T0 - timedelta(seconds=7))
    assert trusted_capture_time(fix, T0) == T0 - timedelta(seconds=7)


def test_trusted_capture_time_is_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    fix = _fix(captured_at=T0.astimezone(shanghai))
    trusted = trusted_capture_time(fix, T0.astimezone(shanghai))
    assert trusted.utcoffset() == timedelta(0)
    assert trusted == T0
    aged = trusted_capture_time(dataclasses.replace(fix, age_ms=0), T0.astimezone(shanghai))
    assert aged.utcoffset() == timedelta(0)
    assert aged == T0


def test_trusted_capture_time_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        trusted_capture_time(_fix(), T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="captured_at must be a timezone-aware"):
        trusted_capture_time(_fix(captured_at=T0.replace(tzinfo=None)), T0)
    with pytest.raises(ValueError, match="age_ms must be an integer >= 0"):
        trusted_capture_time(_fix(age_ms=-1), T0)


# --- input validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lat": 90.5}, "fix: lat must be"),
        ({"lat": math.nan}, "fix: lat must be"),
        ({"lon": -180.5}, "fix: lon must be"),
        ({"lon": math.inf}, "fix: lon must be"),
        ({"accuracy_m": -1.0}, "fix: accuracy_m must be"),
        ({"accuracy_m": math.nan}, "fix: accuracy_m must be"),
        ({"accuracy_m": math.inf}, "fix: accuracy_m must be"),
        ({"captured_at": T0.replace(tzinfo=None)}, "fix.captured_at must be a timezone-aware"),
        ({"age_ms": -5}, "age_ms must be an integer >= 0"),
    ],
)
def test_judge_refuses_an_impossible_fix(changes: dict[str, object], message: str) -> None:
    fix = dataclasses.replace(_fix(), **changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        _judge(fix)


def test_judge_refuses_naive_times() -> None:
    naive = T0.replace(tzinfo=None)
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        _judge(_fix(), received_at=naive)
    with pytest.raises(ValueError, match="action_at must be a timezone-aware"):
        _judge(_fix(), action_at=naive)
    with pytest.raises(ValueError, match=r"prior\.at must be a timezone-aware"):
        _judge(_fix(), prior=PriorFix(lat=SHOP[0], lon=SHOP[1], accuracy_m=5.0, at=naive))


def test_judge_refuses_an_impossible_prior() -> None:
    with pytest.raises(ValueError, match="prior: lat must be"):
        _judge(_fix(), prior=PriorFix(lat=-91.0, lon=SHOP[1], accuracy_m=5.0, at=T0))
    with pytest.raises(ValueError, match="prior: accuracy_m must be"):
        _judge(_fix(), prior=PriorFix(lat=SHOP[0], lon=SHOP[1], accuracy_m=-5.0, at=T0))


# --- policy -------------------------------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    assert POLICY.as_dict() == {
        "verified_min_confidence": 0.8,
        "uncertain_min_confidence": 0.3,
        "max_accuracy_m": 150.0,
        "max_speed_mps": 70.0,
        "stale_after_s": 120.0,
        "max_clock_skew_s": 300.0,
        "future_tolerance_s": 30.0,
    }


def test_policy_from_mapping_overrides_some_fields() -> None:
    policy = VerdictPolicy.from_mapping({"max_accuracy_m": 80, "stale_after_s": 60.5})
    assert policy.max_accuracy_m == 80.0
    assert isinstance(policy.max_accuracy_m, float)
    assert policy.stale_after_s == 60.5
    assert policy.max_speed_mps == POLICY.max_speed_mps


def test_policy_round_trips_through_as_dict() -> None:
    policy = VerdictPolicy(max_speed_mps=40.0, future_tolerance_s=0.0)
    assert VerdictPolicy.from_mapping(policy.as_dict()) == policy


def test_policy_changes_the_verdict() -> None:
    fix = _fix(captured_at=T0 - timedelta(seconds=90))
    assert _judge(fix).status is VerdictStatus.VERIFIED
    strict = VerdictPolicy.from_mapping({"stale_after_s": 60})
    assert _judge(fix, policy=strict).reasons == (Reason.STALE_FIX,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_speed": 70.0}, "unknown verdict policy field.*max_speed"),
        ({"max_accuracy_m": "150"}, "max_accuracy_m must be a number"),
        ({"max_accuracy_m": True}, "max_accuracy_m must be a number"),
        ({"max_accuracy_m": None}, "max_accuracy_m must be a number"),
        ({"max_accuracy_m": math.nan}, "max_accuracy_m must be a finite number"),
        ({"max_accuracy_m": math.inf}, "max_accuracy_m must be a finite number"),
        ({"max_accuracy_m": 0}, "max_accuracy_m must be > 0"),
        ({"max_speed_mps": -1.0}, "max_speed_mps must be > 0"),
        ({"stale_after_s": 0.0}, "stale_after_s must be > 0"),
        ({"max_clock_skew_s": -1.0}, "max_clock_skew_s must be > 0"),
        ({"future_tolerance_s": -0.5}, "future_tolerance_s must be >= 0"),
        ({"verified_min_confidence": 1.5}, "verified_min_confidence must be in"),
        ({"verified_min_confidence": 0.0}, "verified_min_confidence must be in"),
        ({"uncertain_min_confidence": -0.1}, "uncertain_min_confidence must be in"),
        ({"uncertain_min_confidence": 0.9}, "uncertain_min_confidence must be in .0, verified_min_confidence"),
    ],
)
def test_policy_from_mapping_refuses_bad_values(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VerdictPolicy.from_mapping(data)


def test_policy_constructor_validates_too() -> None:
    with pytest.raises(ValueError, match="max_speed_mps must be > 0"):
        VerdictPolicy(max_speed_mps=0.0)
    with pytest.raises(ValueError, match="uncertain_min_confidence"):
        dataclasses.replace(POLICY, uncertain_min_confidence=0.95)
