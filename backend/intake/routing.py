"""New leads through the assignment rules: the glue between the rule engine (backend/assignment) and the lead pool
(backend/leads), which are siblings and never import each other. The lead intake calls it for imported rows that
name no holder; `POST /v1/intake/leads/{poi_id}/route` routes one merchant on request."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment import rules
from backend.auth.tokens import Principal
from backend.errors import forbidden
from backend.leads.pool import MANAGERS, assign_by_rule
from mobile_contract import assignment as wire


async def assign_lead(session: AsyncSession, tenant_id: UUID, poi_id: UUID, now: datetime) -> wire.Outcome:
    """A new merchant through the rules: into the chosen BD's private pool (backend/leads), or, when nobody in a
    team can take it, left in the pool as the team's queue. The decision and its explanation are stored."""
    [record] = await rules.load_records(session, tenant_id, wire.RecordKind.LEAD, [poi_id])
    if record.holder_id is not None:
        return wire.Outcome(
            record_id=poi_id,
            rule=None,
            rule_index=None,
            strategy=None,
            chosen=None,
            team_id=None,
            skipped=[],
            explanation="The lead is already held: the rules leave it with its holder.",
        )
    [outcome] = await _assign_leads(session, tenant_id, [record], now)
    return outcome


async def assign_new_leads(session: AsyncSession, tenant_id: UUID, poi_ids: list[UUID], now: datetime) -> int:
    """Merchants just imported with no holder, through the rules in force, as one batch (round-robin turns,
    least-loaded counting the batch's own choices). Nothing at all (one query) when the tenant has no rules.
    Returns how many went to a BD."""
    if not poi_ids:
        return 0
    _, rule_set = await rules.current(session, tenant_id)
    if rule_set is None or not (rule_set.fallback or any(r.kind == "lead" for r in rule_set.rules)):
        return 0
    records = await rules.load_records(session, tenant_id, wire.RecordKind.LEAD, poi_ids)
    outcomes = await _assign_leads(session, tenant_id, [r for r in records if r.holder_id is None], now)
    return sum(o.chosen is not None for o in outcomes)


async def _assign_leads(
    session: AsyncSession, tenant_id: UUID, records: list[rules.Record], now: datetime
) -> list[wire.Outcome]:
    version, rule_set = await rules.current(session, tenant_id)
    rule_set = rule_set or wire.RuleSetIn(rules=[])
    outcomes = await rules.evaluate(session, tenant_id, rule_set, wire.RecordKind.LEAD, records, now, persist=True)
    done = []
    for outcome in outcomes:
        explanation = None
        if outcome.chosen is not None and not await assign_by_rule(
            session, tenant_id, outcome.record_id, outcome.chosen, now, reason=f"rule: {outcome.rule}"
        ):
            explanation = outcome.explanation + " The lead had left the pool meanwhile: nobody was given it."
            outcome = msgspec.structs.replace(outcome, chosen=None, explanation=explanation)
        await rules.record_decision(session, tenant_id, wire.RecordKind.LEAD, version, outcome, now)
        done.append(outcome)
    return done


async def assign_lead_for(session: AsyncSession, principal: Principal, poi_id: UUID, now: datetime) -> wire.Outcome:
    if not principal.has_role(*MANAGERS):
        raise forbidden("Only a supervisor, ops or an admin routes leads by the rules.")
    return await assign_lead(session, principal.tenant_id, poi_id, now)
