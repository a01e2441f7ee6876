"""The tenant's lead policy, versioned: the highest version in `lead_policies` is in force, and a tenant that never
adopted one runs on the defaults of mobile_contract.leads.LeadPolicy (version 0).

The dates a policy gives a private lead are computed in SQL only (release.py), for one lead or a million, so the
phone's "protected until", the warnings, the simulation and the release itself never disagree."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.permissions import require
from backend.auth.tokens import Principal
from backend.leads.pool_tables import LeadPolicyRecord
from mobile_contract.admin import Feature
from mobile_contract.leads import LeadPolicy, LeadPolicyVersion

DEFAULTS = LeadPolicy()


async def current(session: AsyncSession, tenant_id: UUID) -> LeadPolicyVersion:
    row = (
        await session.execute(
            select(LeadPolicyRecord)
            .where(LeadPolicyRecord.tenant_id == tenant_id)
            .order_by(LeadPolicyRecord.version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        return LeadPolicyVersion(version=0, adopted_at=None, adopted_by=None, policy=DEFAULTS)
    return LeadPolicyVersion(
        version=row.version,
        adopted_at=row.adopted_at,
        adopted_by=row.adopted_by,
        policy=msgspec.convert(row.rules, LeadPolicy),
    )


# session.info key of the policies this session has read: a claim reads the policy for its caps and again for the
# answer's dates, a push of 200 claims once per claim; adopt() drops it.
_CACHE = "groundwork.lead_policies"


async def load(session: AsyncSession, tenant_id: UUID) -> LeadPolicy:
    cache: dict[UUID, LeadPolicy] = session.info.setdefault(_CACHE, {})
    if tenant_id not in cache:
        cache[tenant_id] = (await current(session, tenant_id)).policy
    return cache[tenant_id]


async def adopt(session: AsyncSession, principal: Principal, policy: LeadPolicy, now: datetime) -> LeadPolicyVersion:
    """A new version, in force from now; the old ones stay. Two admins adopting at once: the second insert waits on
    the first and fails on the primary key, never both at one version (answered as a conflict by the DB mapper)."""
    await require(session, principal, Feature.ADOPT_LEAD_POLICY, "Your role cannot adopt a lead policy.")
    latest = await session.scalar(
        select(func.coalesce(func.max(LeadPolicyRecord.version), 0)).where(
            LeadPolicyRecord.tenant_id == principal.tenant_id
        )
    )
    record = LeadPolicyRecord(
        tenant_id=principal.tenant_id,
        version=int(latest or 0) + 1,
        rules=msgspec.to_builtins(policy),
        adopted_at=now,
        adopted_by=principal.user_id,
    )
    session.add(record)
    await session.flush()
    session.info.pop(_CACHE, None)
    return LeadPolicyVersion(version=record.version, adopted_at=now, adopted_by=principal.user_id, policy=policy)


def policy_params(policy: LeadPolicy) -> dict[str, int]:
    """The policy's clocks as the bound parameters of release.py's SQL."""
    return {
        "protection_days": policy.protection_days,
        "no_visit_days": policy.no_visit_days,
        "no_signing_days": policy.no_signing_days,
        "warn_days": policy.warn_days,
    }
