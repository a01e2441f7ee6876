"""A tenant's verification policy: geo's verdict thresholds plus the default geofence radius."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import Tenant
from backend.auth.permissions import require
from backend.auth.tokens import Principal
from backend.errors import DomainError, not_found
from geo.verdict import VerdictPolicy
from mobile_contract.admin import Feature
from mobile_contract.errors import ErrorCode
from mobile_contract.tenants import VerificationPolicy, VerificationPolicyPatch

DEFAULT_GEOFENCE_RADIUS_M = 100.0  # a shop front plus the pavement outside it, where a GPS fix usually lands


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    verdict: VerdictPolicy
    default_geofence_radius_m: float = DEFAULT_GEOFENCE_RADIUS_M

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> TenantPolicy:
        values = dict(stored)
        radius = float(values.pop("default_geofence_radius_m", DEFAULT_GEOFENCE_RADIUS_M))
        return cls(verdict=VerdictPolicy.from_mapping(values), default_geofence_radius_m=radius)

    def to_stored(self) -> dict[str, Any]:
        return {**self.verdict.as_dict(), "default_geofence_radius_m": self.default_geofence_radius_m}

    def to_wire(self) -> VerificationPolicy:
        return msgspec.convert(self.to_stored(), VerificationPolicy)


# session.info key of the policies this session has read: a push of 500 check-ins judges them all by one policy,
# so it is read once per transaction, not once per check-in. update_policy() drops it.
_CACHE = "groundwork.tenant_policies"


async def load_policy(session: AsyncSession, tenant_id: UUID) -> TenantPolicy:
    cache: dict[UUID, TenantPolicy] = session.info.setdefault(_CACHE, {})
    policy = cache.get(tenant_id)
    if policy is None:
        stored = await session.scalar(select(Tenant.verification_policy).where(Tenant.id == tenant_id))
        if stored is None:
            raise not_found("tenant")
        policy = cache[tenant_id] = TenantPolicy.from_stored(stored)
    return policy


async def update_policy(
    session: AsyncSession, principal: Principal, patch: VerificationPolicyPatch
) -> VerificationPolicy:
    await require(
        session, principal, Feature.EDIT_VERIFICATION_POLICY, "Your role cannot change the verification policy."
    )
    current = await load_policy(session, principal.tenant_id)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    radius = changes.pop("default_geofence_radius_m", current.default_geofence_radius_m)
    try:
        verdict = dataclasses.replace(current.verdict, **changes)
    except ValueError as exc:  # VerdictPolicy checks relations between fields (e.g. uncertain <= verified)
        raise DomainError(ErrorCode.VALIDATION_FAILED, str(exc), errors=[]) from exc
    policy = TenantPolicy(verdict=verdict, default_geofence_radius_m=radius)
    await session.execute(
        update(Tenant).where(Tenant.id == principal.tenant_id).values(verification_policy=policy.to_stored())
    )
    session.info.pop(_CACHE, None)
    return policy.to_wire()
