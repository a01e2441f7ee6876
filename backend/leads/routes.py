"""HTTP routes of the lead pool: claim, release, assign, extend, hand over, the expiring leads, the policy."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.permissions import require
from backend.auth.tokens import Principal
from backend.errors import problems
from backend.leads import policy as lead_policy
from backend.leads import pool, simulate
from backend.leads.clock import CLOCK
from mobile_contract.admin import Feature
from mobile_contract.leads import (
    HandoverResult,
    Lead,
    LeadAssign,
    LeadExtend,
    LeadHandover,
    LeadHistory,
    LeadPage,
    LeadPolicy,
    LeadPolicyVersion,
    LeadRelease,
    PolicySimulation,
    SimulationResult,
)


class LeadController(Controller):
    path = "/v1/leads"
    tags = ["leads"]

    @post(
        "/{poi_id:uuid}/claim",
        operation_id="claimLead",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="Claim a lead from the public pool (of concurrent claims exactly one wins)",
    )
    async def claim(
        self, poi_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> Lead:
        lead = await pool.claim(session, principal, poi_id, CLOCK.now())
        await session.commit()
        return lead

    @post(
        "/{poi_id:uuid}/release",
        operation_id="releaseLead",
        status_code=200,
        responses=problems(401, 404, 409, 422),
        summary="Return a lead to the public pool, with a reason",
    )
    async def release(
        self,
        poi_id: FromPath[UUID],
        data: JSONBody[LeadRelease],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Lead:
        lead = await pool.release(session, principal, poi_id, data.reason, CLOCK.now())
        await session.commit()
        return lead

    @post(
        "/{poi_id:uuid}/assign",
        operation_id="assignLead",
        status_code=200,
        responses=problems(401, 403, 404, 409, 422),
        summary="A manager puts a lead in a BD's private pool",
    )
    async def assign(
        self,
        poi_id: FromPath[UUID],
        data: JSONBody[LeadAssign],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Lead:
        lead = await pool.assign(session, principal, poi_id, data.user_id, data.reason, CLOCK.now())
        await session.commit()
        return lead

    @post(
        "/{poi_id:uuid}/extend",
        operation_id="extendLead",
        status_code=200,
        responses=problems(401, 404, 409, 422),
        summary="Push a private lead's release back (the holder: limited; a manager: not)",
    )
    async def extend(
        self,
        poi_id: FromPath[UUID],
        data: JSONBody[LeadExtend],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Lead:
        lead = await pool.extend(session, principal, poi_id, data.days, data.reason, CLOCK.now())
        await session.commit()
        return lead

    @get(
        "/{poi_id:uuid}",
        operation_id="getLead",
        responses=problems(401, 404),
        summary="A merchant as a lead: state, holder, protection dates",
    )
    async def detail(
        self, poi_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> Lead:
        return await pool.get_lead(session, principal, poi_id, CLOCK.now())

    @get(
        "/{poi_id:uuid}/history",
        operation_id="leadHistory",
        responses=problems(401, 404),
        summary="Every transition of a lead: who, when, why",
    )
    async def history(
        self, poi_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> LeadHistory:
        return await pool.history(session, principal, poi_id)

    @get(
        "/expiring",
        operation_id="expiringLeads",
        responses=problems(401),
        summary="Your private leads within their warning window (a manager: their team's), soonest first",
    )
    async def expiring(self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]) -> LeadPage:
        return LeadPage(items=await pool.expiring(session, principal, CLOCK.now()))

    @post(
        "/handover",
        operation_id="handOverLeads",
        status_code=200,
        responses=problems(401, 403, 404, 422),
        summary="A BD leaves: their private leads go back to the pool or to another BD",
    )
    async def handover(
        self,
        data: JSONBody[LeadHandover],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> HandoverResult:
        result = await pool.handover(session, principal, data.from_user_id, data.to_user_id, data.reason, CLOCK.now())
        await session.commit()
        return result

    @get("/policy", operation_id="getLeadPolicy", responses=problems(401), summary="The lead policy in force")
    async def get_policy(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> LeadPolicyVersion:
        return await lead_policy.current(session, principal.tenant_id)

    @put(
        "/policy",
        operation_id="adoptLeadPolicy",
        responses=problems(401, 403, 422),
        summary="Adopt a new version of the lead policy (the old ones are kept)",
    )
    async def adopt_policy(
        self,
        data: JSONBody[LeadPolicy],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> LeadPolicyVersion:
        adopted = await lead_policy.adopt(session, principal, data, CLOCK.now())
        await session.commit()
        return adopted

    @post(
        "/policy/simulate",
        operation_id="simulateLeadPolicy",
        status_code=200,
        responses=problems(401, 403, 422),
        summary="What a proposed policy would release or warn as of a date, by BD, before anyone adopts it",
    )
    async def simulate(
        self,
        data: JSONBody[PolicySimulation],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> SimulationResult:
        await require(session, principal, Feature.SIMULATE_LEAD_POLICY, "Your role cannot simulate a lead policy.")
        return await simulate.simulate(session, principal, data.policy, data.as_of)
