"""The user's prior positions: where the user believably was before a fix, for the speed check.

`PriorPositions` is the interface the judge asks; `VISIT_POSITIONS` serves it today from the user's check-ins and
check-outs. Tracking fixes will serve it too (a source of their own, or one that asks both): `judge_claim` takes
any source, and nothing else here knows where positions come from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from geo.verdict import PriorFix

# Fixes that say nothing true about where the user was: never the "previous position" of a speed check.
UNTRUSTWORTHY_REASONS = ["mock_location", "impossible_speed", "future_fix"]

# The user's latest believable position before :before, from their check-ins and check-outs (binds :tenant_id,
# :user_id, :before, :bad): the prior fix of the speed check, read alone (arrivals) or inside the check-in's lookup.
PRIOR_FIX_SQL = """
SELECT lat, lon, accuracy_m, at FROM (
  (SELECT ST_Y(check_in_location::geometry) AS lat, ST_X(check_in_location::geometry) AS lon,
          check_in_accuracy_m AS accuracy_m, check_in_trusted_at AS at
   FROM visits
   WHERE tenant_id = :tenant_id AND user_id = :user_id AND check_in_trusted_at < :before
     AND NOT check_in_reasons && CAST(:bad AS varchar[])
   ORDER BY check_in_trusted_at DESC LIMIT 1)
  UNION ALL
  (SELECT ST_Y(check_out_location::geometry), ST_X(check_out_location::geometry),
          check_out_accuracy_m, check_out_trusted_at
   FROM visits
   WHERE tenant_id = :tenant_id AND user_id = :user_id AND check_out_trusted_at < :before
     AND NOT check_out_reasons && CAST(:bad AS varchar[])
   ORDER BY check_out_trusted_at DESC LIMIT 1)
) AS fixes ORDER BY at DESC LIMIT 1
"""


class PriorPositions(Protocol):
    """Where the user believably was last before `before` (a trusted time), or None when nothing is known."""

    async def latest_before(
        self, session: AsyncSession, tenant_id: UUID, user_id: UUID, before: datetime
    ) -> PriorFix | None: ...


class VisitPositions:
    """Prior positions from the user's check-ins and check-outs (the untrustworthy ones left out)."""

    async def latest_before(
        self, session: AsyncSession, tenant_id: UUID, user_id: UUID, before: datetime
    ) -> PriorFix | None:
        row = (
            await session.execute(
                text(PRIOR_FIX_SQL),
                {"tenant_id": tenant_id, "user_id": user_id, "before": before, "bad": UNTRUSTWORTHY_REASONS},
            )
        ).one_or_none()
        if row is None:
            return None
        return PriorFix(lat=row.lat, lon=row.lon, accuracy_m=row.accuracy_m, at=row.at)


VISIT_POSITIONS: PriorPositions = VisitPositions()
