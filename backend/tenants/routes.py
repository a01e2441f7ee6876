"""HTTP routes of tenant settings."""

from __future__ import annotations

from litestar import Controller, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import problems
from backend.tenants import service
from mobile_contract.tenants import VerificationPolicy, VerificationPolicyPatch


class TenantController(Controller):
    path = "/v1/tenant"
    tags = ["tenant"]

    @get(
        "/verification-policy",
        operation_id="getVerificationPolicy",
        responses=problems(401),
        summary="Thresholds of location verdicts",
    )
    async def get_policy(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> VerificationPolicy:
        return (await service.load_policy(session, principal.tenant_id)).to_wire()

    @patch(
        "/verification-policy",
        operation_id="updateVerificationPolicy",
        responses=problems(401, 403),
        summary="Tune verdict thresholds",
    )
    async def update_policy(
        self,
        data: JSONBody[VerificationPolicyPatch],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> VerificationPolicy:
        policy = await service.update_policy(session, principal, data)
        await session.commit()
        return policy
