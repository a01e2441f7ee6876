"""Judging a location claim and keeping its evidence: one implementation for every claim to be somewhere.

A check-in at a merchant (visits) and an arrival at a job's site (jobs) are both a fix claimed inside a fence,
judged by `judge_claim` against the tenant's policy and the user's prior position, at the time `action_time`
believes the action happened. Evidence is kept either as columns (`evidence_columns`, prefixed per claim: a
visit has a check-in and a check-out) or as one JSON record (`evidence_record`, a job's arrival), and read back
as the wire's shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.evidence.positions import VISIT_POSITIONS, PriorPositions
from backend.tenants.service import TenantPolicy, load_policy
from geo.fence import Fence
from geo.postgis import point_ewkt
from geo.verdict import Fix, judge, trusted_capture_time
from geo.verdict import Verdict as GeoVerdict
from mobile_contract import location as wire_location
from mobile_contract.visits import FixEvidence


def to_geo_fix(fix: wire_location.Fix) -> Fix:
    return Fix(
        lat=fix.lat,
        lon=fix.lon,
        accuracy_m=fix.accuracy_m,
        captured_at=fix.captured_at,
        is_mock=fix.is_mock,
        age_ms=fix.age_ms,
        provider=fix.provider,
        speed_mps=fix.speed_mps,
    )


async def judge_claim(
    session: AsyncSession,
    principal: Principal,
    fence: Fence,
    fix: wire_location.Fix,
    *,
    received_at: datetime,
    action_at: datetime,
    policy: TenantPolicy | None = None,
    positions: PriorPositions = VISIT_POSITIONS,
) -> GeoVerdict:
    """The verdict on a claim to be inside `fence`: at a merchant, or at a job's site."""
    policy = policy or await load_policy(session, principal.tenant_id)
    geo_fix = to_geo_fix(fix)
    # The prior position is looked up before this fix's trusted time, so a late-synced fix is compared with
    # what came before it, not with whatever the user did since.
    before = trusted_capture_time(geo_fix, received_at)
    prior = await positions.latest_before(session, principal.tenant_id, principal.user_id, before)
    return judge(geo_fix, fence, received_at=received_at, policy=policy.verdict, prior=prior, action_at=action_at)


def action_time(claimed: datetime | None, received_at: datetime, fix: wire_location.Fix) -> datetime:
    """When the action happened: the phone's claim for queued work, never later than its arrival.

    The claim is by the phone's clock. When the fix carries a monotonic age, the fix tells us how wrong that clock
    is (its wall-clock capture time against the one derived from the age), and the claim is corrected by as much.
    """
    if claimed is None:
        return received_at
    skew = fix.captured_at - trusted_capture_time(to_geo_fix(fix), received_at)
    return min(claimed - skew, received_at)


# -- evidence kept as columns (`<prefix>_fix`, `<prefix>_location`, ...) -------------------------------------------

_COLUMNS = (
    "fix",
    "location",
    "accuracy_m",
    "is_mock",
    "trusted_at",
    "received_at",
    "status",
    "confidence",
    "distance_m",
    "reasons",
)


def evidence_column_names(prefix: str) -> list[str]:
    return [f"{prefix}_{name}" for name in _COLUMNS]


def evidence_columns(prefix: str, fix: wire_location.Fix, verdict: GeoVerdict, received_at: datetime) -> dict[str, Any]:
    return {
        f"{prefix}_fix": msgspec.to_builtins(fix),
        f"{prefix}_location": point_ewkt(fix.lat, fix.lon),
        f"{prefix}_accuracy_m": fix.accuracy_m,
        f"{prefix}_is_mock": fix.is_mock,
        f"{prefix}_trusted_at": verdict.trusted_captured_at,
        f"{prefix}_received_at": received_at,
        f"{prefix}_status": verdict.status.value,
        f"{prefix}_confidence": verdict.confidence,
        f"{prefix}_distance_m": verdict.distance_m,
        f"{prefix}_reasons": [reason.value for reason in verdict.reasons],
    }


def fix_evidence(prefix: str, row: Any) -> FixEvidence:
    """The evidence kept in `row`'s `<prefix>_*` columns (an ORM object or any row with them), as the wire has it."""
    fix = getattr(row, f"{prefix}_fix")
    return FixEvidence(
        location=wire_location.Point(lat=fix["lat"], lon=fix["lon"]),
        accuracy_m=getattr(row, f"{prefix}_accuracy_m"),
        captured_at=msgspec.convert(fix["captured_at"], datetime),
        trusted_at=getattr(row, f"{prefix}_trusted_at"),
        received_at=getattr(row, f"{prefix}_received_at"),
        is_mock=getattr(row, f"{prefix}_is_mock"),
        provider=fix.get("provider"),
        verdict=wire_location.Verdict(
            status=wire_location.VerdictStatus(getattr(row, f"{prefix}_status")),
            confidence=getattr(row, f"{prefix}_confidence"),
            distance_m=getattr(row, f"{prefix}_distance_m"),
            reasons=[wire_location.VerdictReason(r) for r in getattr(row, f"{prefix}_reasons")],
        ),
    )


# -- evidence kept as one JSON record ------------------------------------------------------------------------------


def evidence_record(fix: wire_location.Fix, verdict: GeoVerdict, received_at: datetime) -> dict[str, Any]:
    """The fix as sent, when it arrived, its trusted time and its verdict, as one JSON object."""
    return {
        "fix": msgspec.to_builtins(fix),
        "received_at": received_at.isoformat(),
        "trusted_at": verdict.trusted_captured_at.isoformat(),
        "verdict": {
            "status": verdict.status.value,
            "confidence": verdict.confidence,
            "distance_m": verdict.distance_m,
            "reasons": [r.value for r in verdict.reasons],
        },
    }


def record_verdict(record: dict[str, Any]) -> wire_location.Verdict:
    """The verdict kept in an `evidence_record`, as the wire has it."""
    verdict = record["verdict"]
    return wire_location.Verdict(
        status=wire_location.VerdictStatus(verdict["status"]),
        confidence=verdict["confidence"],
        distance_m=verdict["distance_m"],
        reasons=[wire_location.VerdictReason(r) for r in verdict["reasons"]],
    )
