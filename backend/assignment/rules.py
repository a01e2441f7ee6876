"""Rule-based assignment: the tenant's rules, tried in order, pick a group and a way of choosing in it.

One engine for three uses: new leads (backend/intake/routing.py puts them in a BD's private pool, or leaves them in
the team's queue when nobody can take it: assignment and the lead pool are siblings that never import each other),
campaign targets (`assign: rule`) and a job's group before dispatch. `evaluate` decides for a batch of records; a
dry run (`persist=False`) reads the round-robin positions without moving them and counts its own choices in memory, so a
proposed rule set answers as it would run. A real decision locks the group's cursor row (INSERT ... ON CONFLICT DO
UPDATE ... RETURNING), so concurrent assignments in one group take turns, and stores its explanation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment.models import AssignmentDecision, AssignmentRuleVersion
from backend.assignment.territories import READERS
from backend.auth.permissions import require
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from mobile_contract import assignment as wire
from mobile_contract.admin import Feature
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from mobile_contract.jobs import JobStatus

ACTIVE_FOR_LOAD = tuple(
    s.value
    for s in (
        JobStatus.ASSIGNED,
        JobStatus.ACCEPTED,
        JobStatus.SCHEDULED,
        JobStatus.ARRIVED,
        JobStatus.VERIFICATION,
        JobStatus.ON_HOLD,
    )
)  # a job in these statuses is open: it counts towards its technician's load

# -- the records' attributes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    id: UUID
    category: str | None = None
    source: str | None = None
    territory: UUID | None = None
    job_type: str | None = None
    region: str | None = None
    skills: tuple[str, ...] = ()
    holder_id: UUID | None = None


_LEADS_SQL = """
    SELECT p.id, p.category, p.source, p.holder_id, territory_of(p.tenant_id, p.location) AS territory
    FROM pois p WHERE p.tenant_id = :tenant_id
"""
_LEADS_BY_ID = text(_LEADS_SQL + " AND p.id = ANY(:ids)")
_LEADS_SAMPLE = text(_LEADS_SQL + " ORDER BY p.created_at DESC, p.id LIMIT :n")
_JOBS_SQL = """
    SELECT j.id, j.job_type, j.region, j.required_skills, j.assignee_id AS holder_id,
           territory_of(j.tenant_id, j.location) AS territory
    FROM jobs j WHERE j.tenant_id = :tenant_id
"""
_JOBS_BY_ID = text(_JOBS_SQL + " AND j.id = ANY(:ids)")
_JOBS_SAMPLE = text(_JOBS_SQL + " ORDER BY j.created_at DESC, j.id LIMIT :n")


async def load_records(
    session: AsyncSession, tenant_id: UUID, kind: wire.RecordKind, ids: list[UUID] | None, sample: int = 20
) -> list[Record]:
    """The records in the order asked (ids of another tenant, or unknown: not_found)."""
    lead = kind is wire.RecordKind.LEAD
    if ids:
        statement = _LEADS_BY_ID if lead else _JOBS_BY_ID
        rows = (await session.execute(statement, {"tenant_id": tenant_id, "ids": list(ids)})).all()
    else:
        statement = _LEADS_SAMPLE if lead else _JOBS_SAMPLE
        rows = (await session.execute(statement, {"tenant_id": tenant_id, "n": sample})).all()
    records = {
        r.id: (
            Record(id=r.id, category=r.category, source=r.source, territory=r.territory, holder_id=r.holder_id)
            if lead
            else Record(
                id=r.id,
                job_type=r.job_type,
                region=r.region,
                skills=tuple(r.required_skills or ()),
                territory=r.territory,
                holder_id=r.holder_id,
            )
        )
        for r in rows
    }
    if ids:
        missing = [i for i in ids if i not in records]
        if missing:
            raise not_found("merchant" if lead else "job")
        return [records[i] for i in dict.fromkeys(ids)]
    return list(records.values())


def matches(conditions: wire.Conditions, record: Record) -> bool:
    """Every given condition holds (a list: any of its values)."""
    checks: list[tuple[list[Any], Any]] = [
        (conditions.categories, record.category),
        (conditions.sources, record.source),
        (conditions.territories, record.territory),
        (conditions.job_types, record.job_type),
        (conditions.regions, record.region),
    ]
    if any(wanted and value not in wanted for wanted, value in checks):
        return False
    return not conditions.skills or bool(set(conditions.skills) & set(record.skills))


# -- the people of a group -----------------------------------------------------------------------------------------


@dataclass
class Member:
    id: UUID
    name: str
    role: str
    active: bool
    on_leave_until: datetime | None
    load: int


_MEMBERS_SQL = """
    SELECT u.id, u.display_name, u.role, u.is_active, u.on_leave_until,
           (SELECT count(*) FROM {load_table} o
            WHERE o.tenant_id = u.tenant_id AND o.{load_column} = u.id{open}) AS load
    FROM users u
    WHERE u.tenant_id = :tenant_id AND {who}
    ORDER BY u.id
"""


# Who may take what: a team group takes its members of TEAM_ROLE; a list of users, those of TAKES_ROLES.
TEAM_ROLE = {wire.RecordKind.LEAD: Role.BD.value, wire.RecordKind.JOB: Role.TECHNICIAN.value}
TAKES_ROLES = {
    wire.RecordKind.LEAD: frozenset({Role.BD.value, Role.SUPERVISOR.value}),
    wire.RecordKind.JOB: frozenset({Role.TECHNICIAN.value}),
}


def _members_statement(kind: wire.RecordKind, by_team: bool) -> Any:
    if kind is wire.RecordKind.LEAD:  # open leads: held, not won (as the lead policy's caps count them)
        won = "SELECT 1 FROM leads w WHERE w.tenant_id = o.tenant_id AND w.poi_id = o.id AND w.state = 'won'"
        load = {"load_table": "pois", "load_column": "holder_id", "open": f" AND NOT EXISTS ({won})"}
    else:
        load = {"load_table": "jobs", "load_column": "assignee_id", "open": " AND o.status = ANY(:active)"}
    # A team's members of the kind's role (its BDs, its technicians); a list of users as given (`choose` skips
    # those of another role).
    who = (
        "u.team_id IN (SELECT t.id FROM teams t WHERE t.tenant_id = :tenant_id AND t.path LIKE :path || '%')"
        " AND u.role = :role"
        if by_team
        else "u.id = ANY(:ids)"
    )
    return text(_MEMBERS_SQL.format(who=who, **load))


_STATEMENTS = {
    (kind, by_team): _members_statement(kind, by_team) for kind in wire.RecordKind for by_team in (True, False)
}


async def members(session: AsyncSession, tenant_id: UUID, kind: wire.RecordKind, group: wire.Group) -> list[Member]:
    params: dict[str, Any] = {"tenant_id": tenant_id, "active": list(ACTIVE_FOR_LOAD)}
    if group.team_id is not None:
        path = await session.scalar(
            text("SELECT path FROM teams WHERE tenant_id = :tenant_id AND id = :id"),
            {"tenant_id": tenant_id, "id": group.team_id},
        )
        if path is None:
            return []
        params["path"] = path
        params["role"] = TEAM_ROLE[kind]
    else:
        params["ids"] = list(group.user_ids)
    if kind is wire.RecordKind.LEAD:
        params.pop("active")
    rows = (await session.execute(_STATEMENTS[(kind, group.team_id is not None)], params)).all()
    return [Member(r.id, r.display_name, r.role, r.is_active, r.on_leave_until, int(r.load)) for r in rows]


def group_key(kind: wire.RecordKind, group: wire.Group) -> str:
    """The round-robin cursor's name: a team, or a list of users (by a digest of its sorted ids)."""
    if group.team_id is not None:
        return f"{kind.value}:team:{group.team_id}"
    digest = hashlib.sha256(",".join(sorted(str(u) for u in group.user_ids)).encode()).hexdigest()[:32]
    return f"{kind.value}:users:{digest}"


# -- choosing --------------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """What one evaluation has already decided: choices count towards load and move round-robins, in memory
    for a dry run, in PostgreSQL for a real one."""

    persist: bool
    cursors: dict[str, UUID | None] = field(default_factory=dict)
    extra_load: dict[UUID, int] = field(default_factory=dict)
    members: dict[tuple[str, str], list[Member]] = field(default_factory=dict)


_LOCK_CURSOR = text(
    """
    INSERT INTO assignment_cursors AS c (tenant_id, group_key) VALUES (:tenant_id, :key)
    ON CONFLICT (tenant_id, group_key) DO UPDATE SET turns = c.turns
    RETURNING c.last_user_id
    """
)
_READ_CURSOR = text("SELECT last_user_id FROM assignment_cursors WHERE tenant_id = :tenant_id AND group_key = :key")
_MOVE_CURSOR = text(
    "UPDATE assignment_cursors SET last_user_id = :user_id, turns = turns + 1"
    " WHERE tenant_id = :tenant_id AND group_key = :key"
)


def skip_reason(
    member: Member, load: int, cap: int | None, now: datetime, kind: wire.RecordKind = wire.RecordKind.LEAD
) -> str | None:
    if member.role not in TAKES_ROLES[kind]:
        return "role"
    if not member.active:
        return "inactive"
    if member.on_leave_until is not None and member.on_leave_until > now:
        return "on_leave"
    if cap is not None and load >= cap:
        return "at_cap"
    return None


def next_in_turn(eligible: list[UUID], last: UUID | None) -> UUID:
    """The first eligible person after the last one chosen, in id order, wrapping around."""
    ordered = sorted(eligible)
    if last is None:
        return ordered[0]
    return next((u for u in ordered if u > last), ordered[0])


async def choose(
    session: AsyncSession,
    tenant_id: UUID,
    kind: wire.RecordKind,
    group: wire.Group,
    strategy: wire.Strategy,
    cap: int | None,
    now: datetime,
    batch: Batch,
) -> tuple[Member | None, list[wire.Skipped], str]:
    """Whom the group's strategy picks, whom it passed over and why, and a sentence saying so."""
    key = group_key(kind, group)
    cache_key = (kind.value, key)
    if cache_key not in batch.members:
        batch.members[cache_key] = await members(session, tenant_id, kind, group)
    people = batch.members[cache_key]
    known = {m.id for m in people}
    skipped = [wire.Skipped(user_id=u, reason="not_in_tenant") for u in group.user_ids if u not in known]
    eligible: list[Member] = []
    loads: dict[UUID, int] = {}
    for m in people:
        loads[m.id] = m.load + batch.extra_load.get(m.id, 0)
        reason = skip_reason(m, loads[m.id], cap, now, kind)
        if reason is None:
            eligible.append(m)
        else:
            skipped.append(wire.Skipped(user_id=m.id, reason=reason))
    if not eligible:
        return None, skipped, f"nobody in the group can take it ({len(people)} members, {len(skipped)} skipped)"
    by_id = {m.id: m for m in eligible}
    if strategy is wire.Strategy.ROUND_ROBIN:
        if key in batch.cursors:
            last = batch.cursors[key]
        elif batch.persist:
            last = await session.scalar(_LOCK_CURSOR, {"tenant_id": tenant_id, "key": key})
        else:
            last = await session.scalar(_READ_CURSOR, {"tenant_id": tenant_id, "key": key})
        chosen = by_id[next_in_turn(list(by_id), last)]
        batch.cursors[key] = chosen.id
        if batch.persist:
            await session.execute(_MOVE_CURSOR, {"tenant_id": tenant_id, "key": key, "user_id": chosen.id})
        why = f"{chosen.name}: next in turn among {len(eligible)} eligible"
    elif strategy is wire.Strategy.LEAST_LOADED:
        chosen = min(eligible, key=lambda m: (loads[m.id], m.id))
        why = f"{chosen.name}: fewest open {kind.value}s ({loads[chosen.id]}) among {len(eligible)} eligible"
    else:
        room = cap if cap is not None else max(loads.values()) + 1
        chosen = min(eligible, key=lambda m: (loads[m.id] / room, m.id))
        why = f"{chosen.name}: most room under the cap ({loads[chosen.id]} of {room}) among {len(eligible)} eligible"
    batch.extra_load[chosen.id] = batch.extra_load.get(chosen.id, 0) + 1
    return chosen, skipped, why


def _first_rule(
    rule_set: wire.RuleSetIn, kind: wire.RecordKind, record: Record
) -> tuple[int | None, str, wire.Group, wire.Strategy, int | None] | None:
    """The first rule of this kind whose conditions hold (its index and name), else the fallback (leads only),
    else None."""
    for index, rule in enumerate(rule_set.rules):
        if rule.kind == kind and matches(rule.when, record):
            return index, rule.name, rule.group, wire.Strategy(rule.strategy), rule.cap
    if rule_set.fallback is not None and kind is wire.RecordKind.LEAD:
        fallback = rule_set.fallback
        return None, "fallback", fallback.group, wire.Strategy(fallback.strategy), fallback.cap
    return None


async def evaluate(
    session: AsyncSession,
    tenant_id: UUID,
    rule_set: wire.RuleSetIn,
    kind: wire.RecordKind,
    records: list[Record],
    now: datetime,
    *,
    persist: bool,
) -> list[wire.Outcome]:
    """Per record: the first rule (of this kind) whose conditions hold, else the fallback; whom it picks. In the
    results, `rule_index` counts every rule of the set (both kinds)."""
    batch = Batch(persist=persist)
    matched = [_first_rule(rule_set, kind, record) for record in records]
    if persist:
        # Lock every round-robin cursor the batch will move up front, in one order (by name): two batches that
        # touch the same groups then queue on the first, never deadlock on each other's.
        keys = sorted({group_key(kind, m[2]) for m in matched if m is not None and m[3] is wire.Strategy.ROUND_ROBIN})
        for key in keys:
            batch.cursors[key] = await session.scalar(_LOCK_CURSOR, {"tenant_id": tenant_id, "key": key})
    outcomes = []
    for record, found in zip(records, matched, strict=True):
        if found is not None:
            index, name, group, strategy, cap = found
        else:
            outcomes.append(
                wire.Outcome(
                    record_id=record.id,
                    rule=None,
                    rule_index=None,
                    strategy=None,
                    chosen=None,
                    team_id=None,
                    skipped=[],
                    explanation="No rule matches and there is no fallback group: nobody is chosen.",
                )
            )
            continue
        chosen, skipped, why = await choose(session, tenant_id, kind, group, strategy, cap, now, batch)
        how = f"rule {index + 1} '{name}'" if index is not None else "no rule matches: the fallback group"
        queue = " It waits in the team's queue." if chosen is None and group.team_id is not None else ""
        outcomes.append(
            wire.Outcome(
                record_id=record.id,
                rule=name,
                rule_index=index,
                strategy=strategy,
                chosen=chosen.id if chosen else None,
                team_id=group.team_id,
                skipped=skipped,
                explanation=f"{how}, {strategy.value}: {why}.{queue}",
            )
        )
    return outcomes


# -- the rule set: saved versions, checks --------------------------------------------------------------------------

_LATEST = text(
    "SELECT version, rules, saved_by, saved_at FROM assignment_rule_versions"
    " WHERE tenant_id = :tenant_id ORDER BY version DESC LIMIT 1"
)


async def current(session: AsyncSession, tenant_id: UUID) -> tuple[int, wire.RuleSetIn | None]:
    row = (await session.execute(_LATEST, {"tenant_id": tenant_id})).first()
    if row is None:
        return 0, None
    return row.version, msgspec.convert(row.rules, wire.RuleSetIn)


async def _check(session: AsyncSession, tenant_id: UUID, rule_set: wire.RuleSetIn) -> None:
    """Each group names a team or users (one of the two), every id is the tenant's (else not_found)."""
    groups = [r.group for r in rule_set.rules] + ([rule_set.fallback.group] if rule_set.fallback else [])
    teams, users, territories = set(), set(), set()
    for group in groups:
        if (group.team_id is None) == (not group.user_ids):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "A group names a team or a list of users, one of the two.")
        if group.team_id is not None:
            teams.add(group.team_id)
        users.update(group.user_ids)
    for rule in rule_set.rules:
        territories.update(rule.when.territories)
    for table, ids, what in (
        ("teams", teams, "team"),
        ("users", users, "user"),
        ("territories", territories, "territory"),
    ):
        if not ids:
            continue
        found = await session.scalar(
            text(f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant_id AND id = ANY(:ids)"),  # noqa: S608
            {"tenant_id": tenant_id, "ids": list(ids)},
        )
        if found != len(ids):
            raise not_found(what)


def _view(
    version: int, rule_set: wire.RuleSetIn | None, saved_by: UUID | None, saved_at: datetime | None
) -> wire.RuleSetView:
    return wire.RuleSetView(
        version=version,
        rules=rule_set.rules if rule_set else [],
        fallback=rule_set.fallback if rule_set else None,
        saved_by=saved_by,
        saved_at=saved_at,
    )


async def get_rules(session: AsyncSession, principal: Principal) -> wire.RuleSetView:
    if not principal.has_role(*READERS):
        raise forbidden("Only supervisors, ops and admins read the assignment rules.")
    row = (await session.execute(_LATEST, {"tenant_id": principal.tenant_id})).first()
    if row is None:
        return _view(0, None, None, None)
    return _view(row.version, msgspec.convert(row.rules, wire.RuleSetIn), row.saved_by, row.saved_at)


async def rule_versions(session: AsyncSession, principal: Principal) -> list[wire.RuleSetView]:
    """Every saved version, newest first: the audit trail of the rules."""
    if not principal.has_role(*READERS):
        raise forbidden("Only supervisors, ops and admins read the assignment rules.")
    rows = (
        await session.execute(
            text(
                "SELECT version, rules, saved_by, saved_at FROM assignment_rule_versions"
                " WHERE tenant_id = :tenant_id ORDER BY version DESC"
            ),
            {"tenant_id": principal.tenant_id},
        )
    ).all()
    return [_view(r.version, msgspec.convert(r.rules, wire.RuleSetIn), r.saved_by, r.saved_at) for r in rows]


async def save_rules(session: AsyncSession, principal: Principal, rule_set: wire.RuleSetIn) -> wire.RuleSetView:
    """A new version of the tenant's rules (the old ones stay, as the audit trail)."""
    await require(session, principal, Feature.MANAGE_ASSIGNMENT_RULES, "Your role cannot change the assignment rules.")
    await _check(session, principal.tenant_id, rule_set)
    # Serialise savers of one tenant, so two saves never take the same version number.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"rules:{principal.tenant_id}"}
    )
    version, _ = await current(session, principal.tenant_id)
    session.add(
        AssignmentRuleVersion(
            tenant_id=principal.tenant_id,
            version=version + 1,
            rules=msgspec.to_builtins(rule_set),
            saved_by=principal.user_id,
        )
    )
    await session.flush()
    return await get_rules(session, principal)


async def dry_run(session: AsyncSession, principal: Principal, data: wire.DryRunIn, now: datetime) -> wire.DryRunResult:
    """The proposed rules on real records, saving nothing: which rule, who would be chosen, who was skipped."""
    await require(session, principal, Feature.MANAGE_ASSIGNMENT_RULES, "Your role cannot dry-run assignment rules.")
    await _check(session, principal.tenant_id, data.rules)
    kind = wire.RecordKind(data.kind)
    records = await load_records(session, principal.tenant_id, kind, data.record_ids or None, data.sample)
    outcomes = await evaluate(session, principal.tenant_id, data.rules, kind, records, now, persist=False)
    return wire.DryRunResult(outcomes=outcomes)


# -- real decisions --------------------------------------------------------------------------------------------------


async def record_decision(
    session: AsyncSession,
    tenant_id: UUID,
    kind: wire.RecordKind | str,
    version: int,
    outcome: wire.Outcome,
    now: datetime,
    *,
    explanation: str | None = None,
) -> None:
    session.add(
        AssignmentDecision(
            tenant_id=tenant_id,
            id=uuid4(),
            kind=str(kind),
            record_id=outcome.record_id,
            rule_version=version or None,
            rule_name=outcome.rule,
            strategy=outcome.strategy.value if outcome.strategy else None,
            chosen_user_id=outcome.chosen,
            team_id=outcome.team_id,
            skipped=msgspec.to_builtins(outcome.skipped),
            explanation=explanation or outcome.explanation,
            decided_at=now,
        )
    )
    await session.flush()


async def decisions(session: AsyncSession, principal: Principal, record_id: UUID) -> list[wire.DecisionView]:
    if not principal.has_role(*READERS):
        raise forbidden("Only supervisors, ops and admins read assignment decisions.")
    rows = (
        await session.execute(
            text(
                "SELECT id, kind, record_id, rule_version, rule_name, strategy, chosen_user_id, skipped, explanation,"
                " decided_at FROM assignment_decisions WHERE tenant_id = :tenant_id AND record_id = :record_id"
                " ORDER BY decided_at DESC, id"
            ),
            {"tenant_id": principal.tenant_id, "record_id": record_id},
        )
    ).all()
    return [
        wire.DecisionView(
            id=r.id,
            kind=r.kind,
            record_id=r.record_id,
            rule_version=r.rule_version,
            rule=r.rule_name,
            strategy=r.strategy,
            chosen=r.chosen_user_id,
            skipped=msgspec.convert(r.skipped, list[wire.Skipped]),
            explanation=r.explanation,
            decided_at=r.decided_at,
        )
        for r in rows
    ]


async def assign_targets(
    session: AsyncSession, tenant_id: UUID, poi_ids: list[UUID], now: datetime
) -> dict[UUID, wire.Outcome]:
    """Campaign targets (`assign: rule`): the lead rules in force choose each merchant's assignee, as one batch
    (least-loaded counts the batch's own choices; round-robin takes turns across it). Decisions are stored with
    kind `target`."""
    if not poi_ids:
        return {}
    records = await load_records(session, tenant_id, wire.RecordKind.LEAD, list(dict.fromkeys(poi_ids)))
    version, rule_set = await current(session, tenant_id)
    rule_set = rule_set or wire.RuleSetIn(rules=[])
    outcomes = await evaluate(session, tenant_id, rule_set, wire.RecordKind.LEAD, records, now, persist=True)
    for outcome in outcomes:
        await record_decision(session, tenant_id, "target", version, outcome, now)
    return {o.record_id: o for o in outcomes}


@dataclass(frozen=True)
class JobGroup:
    """The group a job rule names for a job: the members free to take it, and the rule's outcome."""

    members: set[UUID]
    version: int
    outcome: wire.Outcome


async def job_group(session: AsyncSession, tenant_id: UUID, job_id: UUID, now: datetime) -> tuple[JobGroup | None, str]:
    """Before dispatch: the first job rule whose conditions hold names the group the candidates come from
    (dispatch's score still chooses within it). None when no job rule matches: every technician is considered.
    The lead fallback does not apply to jobs."""
    version, rule_set = await current(session, tenant_id)
    job_rules = [r for r in rule_set.rules if r.kind == "job"] if rule_set else []
    if not job_rules:
        return None, ""
    [record] = await load_records(session, tenant_id, wire.RecordKind.JOB, [job_id])
    rule = next((r for r in job_rules if matches(r.when, record)), None)
    if rule is None:
        return None, " No job rule matches: every technician is considered."
    people = await members(session, tenant_id, wire.RecordKind.JOB, rule.group)
    free, skipped = set(), []
    for m in people:
        reason = skip_reason(m, m.load, rule.cap, now, wire.RecordKind.JOB)
        if reason is None:
            free.add(m.id)
        else:
            skipped.append(wire.Skipped(user_id=m.id, reason=reason))
    outcome = wire.Outcome(
        record_id=job_id,
        rule=rule.name,
        rule_index=rule_set.rules.index(rule) if rule_set else None,
        strategy=None,
        chosen=None,
        team_id=rule.group.team_id,
        skipped=skipped,
        explanation="",
    )
    note = f" Rule '{rule.name}' limits the candidates to its group ({len(free)} of {len(people)} free)."
    return JobGroup(free, version, outcome), note
