"""Job rules: a guarded lifecycle with an audit trail, dispatch three ways (whom to assign is
backend.assignment's), and proof of work.

The lifecycle is the table `RULES`, keyed by the wire's `JobAction` (the one list of step names): for each
action, the statuses it may start from, where it leads, who may take it, whether it needs a reason, whether it is
a `/steps/{step}` of the API and a queued `job.<step>` of the phone, and its side effects (what it writes
besides the status, and what follows it). Every transition, whether it comes from a route, a sync mutation or
the dispatcher, goes through `transition` and leaves a `job_events` row.

Who may see a job is `reads.job_visible_to`, checked before anything else: a caller who cannot see a job is
answered 404 whatever they ask of it, and learns nothing about it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import exists, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment import service as assignment
from backend.assignment.service import DISPATCHERS
from backend.auth import permissions
from backend.auth.scopes import scope_params
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.evidence.service import action_time, evidence_record, judge_claim, record_verdict
from backend.jobs.models import Job, JobCode, JobEvent, JobType
from backend.jobs.reads import SITE_LAT, SITE_LON, job_visible_to
from backend.jobs.tasks import enqueue_sms
from backend.paging import decode_cursor, encode_cursor
from backend.push.service import notify_users
from geo.fence import CircleFence
from geo.postgis import point_ewkt
from mobile_contract import jobs as wire
from mobile_contract.admin import Feature
from mobile_contract.auth import Role
from mobile_contract.base import AwareDatetime
from mobile_contract.errors import ErrorCode
from mobile_contract.jobs import JobAction, JobStatus
from mobile_contract.location import Point, Verdict
from sync.feed import Change, record_changes

JOBS = "jobs"
CODE_TTL = timedelta(hours=4)
CODE_ATTEMPTS = 5
# Resending a code: dispatch only, at most once a minute and five times a day per job. A new code unlocks a
# locked one, so without these limits resending would be a way around the five-attempt lock.
CODE_RESEND_INTERVAL = timedelta(minutes=1)
CODE_RESENDS_PER_DAY = 5
CLOCK_DRIFT = timedelta(minutes=5)  # a phone's clock may be this far behind ours and still be believed

# Job types every tenant starts with; a tenant may change their policies.
DEFAULT_JOB_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "install": ("Installation", {"code": True, "location": True, "photos": 2}),
    "repair": ("Repair", {"code": False, "location": True, "photos": 1}),
    "measure": ("Site measurement", {"code": False, "location": True, "photos": 0}),
    "return_visit": ("Return visit", {"code": True, "location": False, "photos": 0}),
}

Actor = Literal["assignee", "dispatcher", "technician"]
S = JobStatus


@dataclass(slots=True)
class StepContext:
    """What a side effect of a step sees: the locked job, the step's body and who takes it."""

    session: AsyncSession
    principal: Principal
    job: Job
    action: JobAction
    data: wire.Transition
    received: datetime
    assignee_id: UUID | None
    code_key: bytes | None
    details: dict[str, Any] = field(default_factory=dict)  # goes into the audit trail


Prepare = Callable[[StepContext], Awaitable[dict[str, Any]]]  # the columns the step writes besides `status`
After = Callable[[StepContext], Awaitable[None]]  # what follows the written step (in the same transaction)


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[JobStatus, ...]
    target: JobStatus | None  # None: back to where on_hold came from
    actors: tuple[Actor, ...]
    needs_reason: bool = False
    step: bool = True  # a `/steps/{step}` of the API; assign, grab and verify have routes of their own
    prepare: Prepare | None = None
    notify: bool = False  # wake whoever gains, loses or must act on the job (push), not at their next poll
    after: After | None = None


# -- creating ----------------------------------------------------------------------------------------------------


async def ensure_job_types(session: AsyncSession, tenant_id: UUID) -> None:
    existing = set(await session.scalars(select(JobType.key).where(JobType.tenant_id == tenant_id)))
    for key, (name, policy) in DEFAULT_JOB_TYPES.items():
        if key not in existing:
            session.add(JobType(tenant_id=tenant_id, key=key, name=name, policy=policy))
    await session.flush()


def _request_hash(data: wire.JobCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(data, dispatch="none"))).hexdigest()


async def _notify(
    session: AsyncSession, tenant_id: UUID, users: Sequence[UUID | None], job_id: UUID, reason: str
) -> None:
    """Wake the phones concerned so they sync now (push), and put the job in their change feed."""
    targets = [u for u in dict.fromkeys(users) if u is not None]
    if targets:
        await notify_users(session, tenant_id, targets, reason=reason, collection=JOBS, record_id=job_id)


async def create_job(session: AsyncSession, principal: Principal, data: wire.JobCreate) -> tuple[wire.JobDetail, bool]:
    """Create a job (its location in WGS-84: the route converts the caller's `crs`)."""
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatchers create jobs.")
    if data.window_end <= data.window_start:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "window_end must be after window_start.", errors=[])
    existing = await session.get(Job, (principal.tenant_id, data.id))
    request_hash = _request_hash(data)
    if existing is not None:
        if existing.request_hash == request_hash:
            return await get_job(session, principal, data.id), False
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, "This job id was already used with other content.")
    await ensure_job_types(session, principal.tenant_id)
    job_type = await session.get(JobType, (principal.tenant_id, data.job_type))
    if job_type is None:
        known = ", ".join(sorted(DEFAULT_JOB_TYPES))
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"Unknown job type; this tenant has {known}.", errors=[])
    session.add(
        Job(
            id=data.id,
            tenant_id=principal.tenant_id,
            job_type=data.job_type,
            customer_name=data.customer_name,
            customer_phone=data.customer_phone,
            address=data.address,
            location=point_ewkt(data.location.lat, data.location.lon),
            geofence_radius_m=data.geofence_radius_m,
            region=data.region,
            required_skills=sorted(set(data.required_skills)),
            window_start=data.window_start,
            window_end=data.window_end,
            priority=data.priority,
            policy=job_type.policy,
            notes=data.notes,
            status="new",
            created_by=principal.user_id,
            request_hash=request_hash,
        )
    )
    await session.flush()
    await _event(session, principal.tenant_id, data.id, "create", None, "new", principal.user_id, None, {})
    if data.dispatch == "pool":
        await transition(session, principal, data.id, JobAction.POOL, wire.Transition())
    elif data.dispatch == "auto":
        await dispatch_auto(session, principal, data.id, dry_run=False)
    return await get_job(session, principal, data.id), True


async def _event(
    session: AsyncSession,
    tenant_id: UUID,
    job_id: UUID,
    action: str,
    from_status: str | None,
    to_status: str,
    actor_id: UUID | None,
    reason: str | None,
    data: dict[str, Any],
    *,
    at: datetime | None = None,
) -> None:
    event = JobEvent(
        tenant_id=tenant_id,
        job_id=job_id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor_id,
        reason=reason,
        data=data,
    )
    if at is not None:
        event.at = at
    session.add(event)
    await session.flush()


# -- reading -----------------------------------------------------------------------------------------------------


def _arrival_verdict(job: Job) -> Verdict | None:
    return record_verdict(job.arrival_visit) if job.arrival_visit else None


async def load_wire(session: AsyncSession, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, wire.Job]:
    if not ids:
        return {}
    rows = (
        await session.execute(select(Job, SITE_LAT, SITE_LON).where(Job.tenant_id == tenant_id, Job.id.in_(ids)))
    ).all()
    result = {}
    for job, lat, lon in rows:
        result[job.id] = wire.Job(
            id=job.id,
            job_type=job.job_type,
            customer_name=job.customer_name,
            customer_phone=job.customer_phone,
            address=job.address,
            location=Point(lat=round(lat, 7), lon=round(lon, 7)),
            geofence_radius_m=job.geofence_radius_m,
            region=job.region,
            required_skills=job.required_skills,
            window_start=job.window_start,
            window_end=job.window_end,
            priority=job.priority,
            notes=job.notes,
            status=wire.JobStatus(job.status),
            assignee_id=job.assignee_id,
            appointment_at=job.appointment_at,
            arrival=_arrival_verdict(job),
            code_verified=job.code_verified_at is not None,
            policy=msgspec.convert(job.policy, wire.VerificationPolicy),
            proof_photos=job.proof_photos,
            completed_at=job.completed_at,
            updated_at=job.updated_at,
        )
    return result


async def _visible_job(session: AsyncSession, principal: Principal, job_id: UUID, *, lock: bool = False) -> Job:
    """The job, if the caller may see it (`job_visible_to`); else 404, before any other check."""
    statement = select(Job).where(Job.id == job_id, Job.tenant_id == principal.tenant_id, job_visible_to(principal))
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    job = await session.scalar(statement, scope_params(principal))
    if job is None:
        raise not_found("job")
    return job


async def get_job(session: AsyncSession, principal: Principal, job_id: UUID) -> wire.JobDetail:
    job = await _visible_job(session, principal, job_id)
    return await _detail(session, principal.tenant_id, job.id)


async def _detail(session: AsyncSession, tenant_id: UUID, job_id: UUID) -> wire.JobDetail:
    """The job and its trail, without a visibility check: for the answer to whoever just acted on it (a
    technician who refused a job may no longer see it, but is told what they did)."""
    base = (await load_wire(session, tenant_id, [job_id]))[job_id]
    events = await session.scalars(
        select(JobEvent).where(JobEvent.tenant_id == tenant_id, JobEvent.job_id == job_id).order_by(JobEvent.id)
    )
    return wire.JobDetail(
        **msgspec.structs.asdict(base),
        events=[
            wire.JobEventView(
                action=e.action,
                from_status=wire.JobStatus(e.from_status) if e.from_status else None,
                to_status=wire.JobStatus(e.to_status),
                actor_id=e.actor_id,
                reason=e.reason,
                data=e.data,
                at=e.at,
            )
            for e in events
        ],
    )


async def list_jobs(
    session: AsyncSession,
    principal: Principal,
    *,
    status: wire.JobStatus | None = None,
    assignee_id: UUID | None = None,
    window_from: datetime | None = None,
    window_to: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> wire.JobPage:
    """The jobs the caller may see (`job_visible_to`): a technician's own, a dispatcher's scope. Most urgent first,
    then by window; `window_from`/`window_to` keep the jobs whose service window overlaps [from, to)."""
    if window_from is not None and window_to is not None and window_to <= window_from:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "to must be after from.", errors=[])
    statement = select(Job.id, Job.priority, Job.window_start).where(
        Job.tenant_id == principal.tenant_id, job_visible_to(principal)
    )
    if status is not None:
        statement = statement.where(Job.status == status.value)
    if assignee_id is not None:
        statement = statement.where(Job.assignee_id == assignee_id)
    if window_from is not None:
        statement = statement.where(Job.window_end > window_from)
    if window_to is not None:
        statement = statement.where(Job.window_start < window_to)
    if cursor:
        priority, start, after = decode_cursor(cursor, tuple[int, AwareDatetime, UUID])
        statement = statement.where(
            tuple_(Job.priority, Job.window_start, Job.id) > tuple_(literal(priority), literal(start), literal(after))
        )
    statement = statement.order_by(Job.priority, Job.window_start, Job.id).limit(limit + 1)
    rows = (await session.execute(statement, scope_params(principal))).all()
    page = rows[:limit]
    loaded = await load_wire(session, principal.tenant_id, [r.id for r in page])
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor(last.priority, last.window_start, last.id) if last is not None and len(rows) > limit else None
    )
    return wire.JobPage(items=[loaded[r.id] for r in page], next_cursor=next_cursor)


async def list_job_types(session: AsyncSession, principal: Principal) -> list[wire.JobTypeView]:
    """The tenant's job types and what proves each done (a short list: not paged)."""
    await ensure_job_types(session, principal.tenant_id)
    rows = await session.scalars(select(JobType).where(JobType.tenant_id == principal.tenant_id).order_by(JobType.key))
    return [
        wire.JobTypeView(key=t.key, name=t.name, policy=msgspec.convert(t.policy, wire.VerificationPolicy))
        for t in rows
    ]


def _job_type_wire(row: JobType) -> wire.JobTypeView:
    return wire.JobTypeView(key=row.key, name=row.name, policy=msgspec.convert(row.policy, wire.VerificationPolicy))


async def create_job_type(
    session: AsyncSession, principal: Principal, data: wire.JobTypeCreate
) -> tuple[wire.JobTypeView, bool]:
    """Add a job type; the same key and body again is a replay (False), the same key with another body a 409."""
    await permissions.require(session, principal, Feature.MANAGE_JOB_TYPES, "Your role cannot manage job types.")
    await ensure_job_types(session, principal.tenant_id)
    policy = msgspec.to_builtins(data.policy)
    existing = await session.get(JobType, (principal.tenant_id, data.key))
    if existing is not None:
        if existing.name == data.name and existing.policy == policy:
            return _job_type_wire(existing), False
        raise DomainError(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            f"A job type {data.key!r} exists with another name or policy;"
            f" change it with PATCH /v1/job-types/{data.key}.",
        )
    row = JobType(tenant_id=principal.tenant_id, key=data.key, name=data.name, policy=policy)
    session.add(row)
    await session.flush()
    return _job_type_wire(row), True


async def update_job_type(
    session: AsyncSession, principal: Principal, key: str, data: wire.JobTypeUpdate
) -> wire.JobTypeView:
    """Rename a job type or change what proves it done: jobs created from now on take the new policy; a job keeps
    the policy it was created with."""
    await permissions.require(session, principal, Feature.MANAGE_JOB_TYPES, "Your role cannot manage job types.")
    await ensure_job_types(session, principal.tenant_id)
    row = await session.get(JobType, (principal.tenant_id, key))
    if row is None:
        raise not_found("job type")
    if data.name is not msgspec.UNSET:
        row.name = data.name
    if data.policy is not msgspec.UNSET:
        row.policy = msgspec.to_builtins(data.policy)
    await session.flush()
    return _job_type_wire(row)


# -- the lifecycle: side effects, then the table of rules --------------------------------------------------------


async def _set_assignee(step: StepContext) -> dict[str, Any]:
    if step.assignee_id is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Assign to whom?", errors=[])
    return {"assignee_id": step.assignee_id, "assigned_at": step.received, "appointment_at": None}


async def _clear_assignee(step: StepContext) -> dict[str, Any]:
    return {"assignee_id": None, "assigned_at": None, "appointment_at": None}


async def _set_appointment(step: StepContext) -> dict[str, Any]:
    appointment_at = step.data.appointment_at
    if appointment_at is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Give the appointment time.", errors=[])
    if not step.job.window_start - timedelta(days=1) <= appointment_at <= step.job.window_end:
        raise DomainError(ErrorCode.OUTSIDE_SERVICE_WINDOW, "The appointment must fall within the service window.")
    return {"appointment_at": appointment_at}


async def _arrive(step: StepContext) -> dict[str, Any]:
    values = await _arrival(step.session, step.principal, step.job, step.data, step.received)
    step.details["verdict"] = values["arrival_visit"]["verdict"]
    return values


async def _hold(step: StepContext) -> dict[str, Any]:
    return {"held_from": step.job.status}


async def _resume(step: StepContext) -> dict[str, Any]:
    return {"held_from": None}


async def _complete(step: StepContext) -> dict[str, Any]:
    missing = missing_proof(step.job)
    if missing:
        raise DomainError(
            ErrorCode.VERIFICATION_INCOMPLETE,
            "The job type's proof is not complete: " + "; ".join(missing) + ".",
            missing=missing,
        )
    return {"completed_at": step.received}


async def _review(step: StepContext) -> dict[str, Any]:
    return {"reviewed_at": step.received, "reviewed_by": step.principal.user_id}


async def _code_for_customer(step: StepContext) -> None:
    """Arrived at a job whose proof is the customer's code: the customer gets one now."""
    if step.job.policy.get("code"):
        if step.code_key is None:
            raise ValueError("arriving at a job with a code policy needs the code key")
        await issue_code(step.session, step.job, code_key=step.code_key, now=step.received)


_WORKING = (S.ACCEPTED, S.SCHEDULED, S.ARRIVED, S.VERIFICATION)
_ASSIGNABLE = (S.NEW, S.POOLED, S.ASSIGNED, S.ACCEPTED, S.SCHEDULED)

RULES: dict[JobAction, Rule] = {
    JobAction.POOL: Rule((S.NEW,), S.POOLED, ("dispatcher",)),
    # "No unassigning once work has started": assign (reassign) is not allowed from arrived onward.
    JobAction.ASSIGN: Rule(_ASSIGNABLE, S.ASSIGNED, ("dispatcher",), step=False, prepare=_set_assignee, notify=True),
    JobAction.GRAB: Rule((S.POOLED,), S.ACCEPTED, ("technician",), step=False, prepare=_set_assignee),
    JobAction.ACCEPT: Rule((S.ASSIGNED,), S.ACCEPTED, ("assignee",)),
    JobAction.REFUSE: Rule(
        (S.ASSIGNED, S.ACCEPTED), S.NEW, ("assignee",), needs_reason=True, prepare=_clear_assignee, notify=True
    ),
    JobAction.SCHEDULE: Rule((S.ACCEPTED, S.SCHEDULED), S.SCHEDULED, ("assignee",), prepare=_set_appointment),
    # A walk-in (the customer is there when the technician accepts) arrives without scheduling first.
    JobAction.ARRIVE: Rule(
        (S.ACCEPTED, S.SCHEDULED), S.ARRIVED, ("assignee",), prepare=_arrive, after=_code_for_customer
    ),
    JobAction.VERIFY: Rule((S.ARRIVED, S.VERIFICATION), S.VERIFICATION, ("assignee",), step=False),
    JobAction.COMPLETE: Rule((S.ARRIVED, S.VERIFICATION), S.COMPLETED, ("assignee",), prepare=_complete),
    JobAction.APPROVE: Rule((S.COMPLETED,), S.APPROVED, ("dispatcher",), prepare=_review),
    JobAction.SEND_BACK: Rule(
        (S.COMPLETED,), S.VERIFICATION, ("dispatcher",), needs_reason=True, prepare=_review, notify=True
    ),
    JobAction.HOLD: Rule(
        _WORKING, S.ON_HOLD, ("assignee", "dispatcher"), needs_reason=True, prepare=_hold, notify=True
    ),
    JobAction.RESUME: Rule((S.ON_HOLD,), None, ("assignee", "dispatcher"), prepare=_resume, notify=True),
    JobAction.CANNOT_COMPLETE: Rule(_WORKING, S.CANNOT_COMPLETE, ("assignee",), needs_reason=True),
    JobAction.CANCEL: Rule((*_ASSIGNABLE, S.ON_HOLD), S.CANCELLED, ("dispatcher",), needs_reason=True, notify=True),
}

# The API's `/steps/{step}` names and the phone's queued `job.<step>` mutations, derived from the table.
STEPS = tuple(action for action, rule in RULES.items() if rule.step)
ASSIGNEE_STEPS = tuple(action.value for action in STEPS if "assignee" in RULES[action].actors)

if TYPE_CHECKING:
    JobStep = JobAction
else:
    import enum

    JobStep = enum.StrEnum("JobStep", {action.name: action.value for action in STEPS})


def allowed_actions(status: str) -> list[str]:
    return [action.value for action, rule in RULES.items() if status in rule.sources]


def _actor_kinds(principal: Principal, job: Job) -> set[Actor]:
    kinds: set[Actor] = set()
    if job.assignee_id == principal.user_id:
        kinds.add("assignee")
    if principal.has_role(*DISPATCHERS):
        kinds.add("dispatcher")
    if principal.role is Role.TECHNICIAN:
        kinds.add("technician")
    return kinds


def _refuse_transition(job: Job, action: str) -> DomainError:
    allowed = allowed_actions(job.status)
    return DomainError(
        ErrorCode.INVALID_TRANSITION,
        f"A job that is {job.status} cannot {action.replace('_', ' ')}.",
        job_status=job.status,
        allowed_actions=allowed,
    )


async def transition(
    session: AsyncSession,
    principal: Principal,
    job_id: UUID,
    action: JobAction | str,
    data: wire.Transition,
    *,
    received_at: datetime | None = None,
    assignee_id: UUID | None = None,
    event_data: dict[str, Any] | None = None,
    code_key: bytes | None = None,
    job: Job | None = None,
) -> wire.JobDetail:
    """Take one step of the lifecycle, guarded by `RULES`, and record it. `job`: the job, already locked and
    checked visible by the caller (grab); otherwise it is looked up here, visibility first. `code_key` keys the
    customer code an arrival issues."""
    if job is None:
        job = await _visible_job(session, principal, job_id, lock=True)
    try:
        action = JobAction(action)
    except ValueError:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"Unknown action {action!r}.") from None
    rule = RULES[action]
    if not _actor_kinds(principal, job) & set(rule.actors):
        raise forbidden(f"You may not {action.value.replace('_', ' ')} this job.")
    if job.status not in rule.sources:
        raise _refuse_transition(job, action.value)
    if rule.needs_reason and not data.reason:
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"To {action.value} a job, give a reason.", errors=[])
    received = received_at or datetime.now(UTC)
    previous_status, previous_assignee = job.status, job.assignee_id
    target = (job.held_from or S.ACCEPTED.value) if rule.target is None else rule.target.value
    step = StepContext(session, principal, job, action, data, received, assignee_id, code_key, dict(event_data or {}))
    values: dict[str, Any] = {"status": target}
    if rule.prepare is not None:
        values.update(await rule.prepare(step))

    await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.tenant_id == principal.tenant_id)
        .values(**values, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    await _event(
        session,
        principal.tenant_id,
        job_id,
        action.value,
        previous_status,
        target,
        principal.user_id,
        data.reason,
        step.details,
    )
    new_assignee = values.get("assignee_id", previous_assignee)
    changes = []
    if previous_assignee is not None and previous_assignee != new_assignee:
        changes.append(Change(previous_assignee, JOBS, job_id, "remove"))
    if new_assignee is not None:
        changes.append(Change(new_assignee, JOBS, job_id))
    await record_changes(session, principal.tenant_id, changes)
    if rule.notify:
        await _notify(session, principal.tenant_id, [previous_assignee, new_assignee], job_id, action.value)
    if rule.after is not None:
        await rule.after(step)
    session.expire(job)
    return await _detail(session, principal.tenant_id, job_id)


async def _arrival(
    session: AsyncSession, principal: Principal, job: Job, data: wire.Transition, received_at: datetime
) -> dict[str, Any]:
    if data.fix is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Arriving needs a location fix.", errors=[])
    lat, lon = (
        await session.execute(select(SITE_LAT, SITE_LON).where(Job.tenant_id == job.tenant_id, Job.id == job.id))
    ).one()
    fence = CircleFence(lat=lat, lon=lon, radius_m=job.geofence_radius_m)
    acted = action_time(data.at, received_at, data.fix)
    verdict = await judge_claim(session, principal, fence, data.fix, received_at=received_at, action_at=acted)
    evidence = evidence_record(data.fix, verdict, received_at)
    # A rejected arrival is still an arrival on record: evidence for the reviewer, never thrown away; the job's
    # location proof simply stays unmet.
    return {"arrival_visit": evidence, "arrival_status": verdict.status.value}


def missing_proof(job: Job) -> list[str]:
    policy = job.policy
    missing = []
    if policy.get("code") and job.code_verified_at is None:
        missing.append("customer code not verified")
    if policy.get("location") and job.arrival_status != "verified":
        missing.append("arrival at the site not verified")
    wanted = int(policy.get("photos", 0))
    if wanted and job.proof_photos < wanted:
        missing.append(f"photos: {job.proof_photos} of {wanted}")
    return missing


# -- the customer's code -----------------------------------------------------------------------------------------


def _code_hash(key: bytes, job_id: UUID, code: str) -> str:
    # Keyed and bound to the job: a stolen table reveals no codes, and a code never fits another job.
    return hmac.new(key, f"{job_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_code(session: AsyncSession, job: Job, *, code_key: bytes, now: datetime) -> None:
    """A fresh one-time code for the customer (replacing and unlocking any earlier one). The SMS is queued in
    this transaction and leaves after it commits; the code itself is kept only as a keyed hash."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    values = {
        "tenant_id": job.tenant_id,
        "code_hash": _code_hash(code_key, job.id, code),
        "issued_at": now,
        "expires_at": now + CODE_TTL,
        "attempts": 0,
        "locked_at": None,
    }
    statement = insert(JobCode).values(job_id=job.id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["tenant_id", "job_id"], set_=values))
    text_ = f"Your Groundwork code for today's visit is {code}. Give it to the technician."
    await enqueue_sms(session, job.tenant_id, job.customer_phone, text_)


def believed_entry_time(
    claimed: datetime | None, *, issued_at: datetime, arrived_at: datetime | None, received: datetime
) -> datetime:
    """When a code was typed, as far as we believe the phone: never before the code was issued nor before the
    arrival (an `at` from before either, past `CLOCK_DRIFT`, is a false claim and judged as typed on receipt),
    never after we received it."""
    floor = max(issued_at, arrived_at) if arrived_at is not None else issued_at
    at = claimed or received
    if at < floor - CLOCK_DRIFT:
        at = received
    return min(max(at, floor), received)


def code_locked() -> DomainError:
    """423: the code is locked (also answered from the route's memory of locks, jobs/codelocks.py)."""
    return DomainError(
        ErrorCode.CODE_ATTEMPTS_EXCEEDED,
        "Too many wrong codes: ask dispatch to send a new one.",
        keep_effects=True,
        attempts_left=0,
    )


def _arrived_at(job: Job) -> datetime | None:
    trusted = (job.arrival_visit or {}).get("trusted_at")
    return datetime.fromisoformat(trusted) if isinstance(trusted, str) else None


async def enter_code(
    session: AsyncSession,
    principal: Principal,
    job_id: UUID,
    entry: wire.CodeEntry,
    *,
    code_key: bytes,
    received_at: datetime | None = None,
) -> wire.JobDetail:
    """Check the code the customer gave, in the request's own transaction (one connection per request).

    The job's row lock serialises entries for one job (the route also lets them in one at a time, before they
    take a connection), so each compared code is counted, in order. Every wrong attempt (and every attempt on a
    locked code that reaches here: the route answers most from its memory, codelocks.py) is counted, and the
    refusal says `keep_effects`: the route
    commits the count before answering, and the sync engine keeps it for a refused `job.verify`, so retrying is
    no free brute force. An offline entry's `at` is believed only between the code's issue (and the arrival)
    and now: nobody typed a code they did not have, so an `at` from before it (past a few minutes of clock
    drift) is judged as typed on arrival here."""
    job = await _visible_job(session, principal, job_id, lock=True)
    if job.assignee_id != principal.user_id:
        raise forbidden("Only the assigned technician enters the customer's code.")
    if job.status not in RULES[JobAction.VERIFY].sources:
        raise _refuse_transition(job, JobAction.VERIFY.value)
    received = received_at or datetime.now(UTC)
    code = await session.scalar(
        select(JobCode)
        .where(JobCode.job_id == job_id, JobCode.tenant_id == principal.tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if code is None:
        raise DomainError(ErrorCode.CODE_INVALID, "No code was issued for this job; ask dispatch to send one.")
    if code.locked_at is not None:
        code.attempts += 1
        await session.flush()
        raise code_locked()
    if not hmac.compare_digest(code.code_hash, _code_hash(code_key, job_id, entry.code)):
        code.attempts += 1
        if code.attempts >= CODE_ATTEMPTS:
            code.locked_at = received
        await session.flush()
        left = CODE_ATTEMPTS - code.attempts
        if left <= 0:
            raise code_locked()
        raise DomainError(
            ErrorCode.CODE_INVALID, f"Wrong code; {left} attempts left.", keep_effects=True, attempts_left=left
        )
    entered_at = believed_entry_time(entry.at, issued_at=code.issued_at, arrived_at=_arrived_at(job), received=received)
    if entered_at > code.expires_at:
        raise DomainError(ErrorCode.CODE_EXPIRED, "This code has expired: ask dispatch to send a new one.")
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.tenant_id == principal.tenant_id)
        .values(code_verified_at=entered_at)
        .execution_options(synchronize_session=False)
    )
    return await transition(
        session,
        principal,
        job_id,
        JobAction.VERIFY,
        wire.Transition(at=entered_at),
        received_at=received,
        event_data={"proof": "code"},
        job=job,
    )


async def resend_code(
    session: AsyncSession, principal: Principal, job_id: UUID, *, code_key: bytes, now: datetime | None = None
) -> None:
    """Dispatch sends the customer a new code (unlocking a locked one): at most once a `CODE_RESEND_INTERVAL`
    and `CODE_RESENDS_PER_DAY` times in 24 hours per job, answered 429 with `Retry-After` past that. The
    technician cannot: a resend that unlocks would give them five more guesses each time."""
    now = now or datetime.now(UTC)
    job = await _visible_job(session, principal, job_id, lock=True)
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatch sends the customer a new code.")
    if not job.policy.get("code") or job.status not in (S.ARRIVED, S.VERIFICATION):
        raise _refuse_transition(job, "resend_code")
    issued_at = await session.scalar(
        select(JobCode.issued_at).where(JobCode.job_id == job_id, JobCode.tenant_id == principal.tenant_id)
    )
    resent = list(
        await session.scalars(
            select(JobEvent.at).where(
                JobEvent.tenant_id == principal.tenant_id,
                JobEvent.job_id == job_id,
                JobEvent.action == "resend_code",
                JobEvent.at > now - timedelta(days=1),
            )
        )
    )
    wait = resend_wait(issued_at, resent, now)
    if wait is not None:
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise DomainError(
            ErrorCode.CODE_RESEND_LIMITED,
            f"A new code can be sent in {seconds} s (at most one a minute, {CODE_RESENDS_PER_DAY} a day).",
            headers={"Retry-After": str(seconds)},
            retry_after_s=seconds,
        )
    await issue_code(session, job, code_key=code_key, now=now)
    await _event(
        session, principal.tenant_id, job_id, "resend_code", job.status, job.status, principal.user_id, None, {}, at=now
    )


def resend_wait(issued_at: datetime | None, resent: Sequence[datetime], now: datetime) -> timedelta | None:
    """How long until a new code may be sent (None: now). `issued_at`: the current code's issue; `resent`: the
    times of earlier resends (those of the last 24 hours are what count)."""
    waits = []
    if issued_at is not None and now < issued_at + CODE_RESEND_INTERVAL:
        waits.append(issued_at + CODE_RESEND_INTERVAL - now)
    today = sorted(at for at in resent if now - timedelta(days=1) < at <= now)
    if len(today) >= CODE_RESENDS_PER_DAY:
        # The oldest resend that must leave the window for one more to fit.
        waits.append(today[len(today) - CODE_RESENDS_PER_DAY] + timedelta(days=1) - now)
    return max(waits) if waits else None


# -- dispatch ----------------------------------------------------------------------------------------------------


async def dispatch_auto(
    session: AsyncSession, principal: Principal, job_id: UUID, *, dry_run: bool
) -> wire.DispatchDecision:
    """Pick the best eligible technician within the dispatcher's scope, and say why."""
    job = await _visible_job(session, principal, job_id, lock=not dry_run)
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatchers dispatch jobs.")
    if job.status not in RULES[JobAction.ASSIGN].sources:
        raise _refuse_transition(job, JobAction.ASSIGN.value)
    decision = await assignment.choose(session, principal, job_id, status=job.status, dry_run=dry_run)
    chosen = decision.candidates[0] if decision.chosen is not None else None
    if chosen is not None and not dry_run:
        await transition(
            session,
            principal,
            job_id,
            JobAction.ASSIGN,
            wire.Transition(),
            assignee_id=chosen.technician_id,
            event_data={"dispatch": "auto", "explanation": decision.explanation, "score": chosen.score},
            job=job,
        )
    return decision


async def assign_manually(
    session: AsyncSession, principal: Principal, job_id: UUID, technician_id: UUID
) -> wire.JobDetail:
    """A supervisor's choice, among the technicians in their scope (assignment.manual_choice); the hard filters
    still apply."""
    job = await _visible_job(session, principal, job_id, lock=True)
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatchers assign jobs.")
    if job.status not in RULES[JobAction.ASSIGN].sources:
        raise _refuse_transition(job, JobAction.ASSIGN.value)
    await assignment.manual_choice(session, principal, job_id, technician_id)
    return await transition(
        session,
        principal,
        job_id,
        JobAction.ASSIGN,
        wire.Transition(),
        assignee_id=technician_id,
        event_data={"dispatch": "manual"},
        job=job,
    )


async def grab(session: AsyncSession, principal: Principal, job_id: UUID) -> wire.JobDetail:
    """A technician takes an open job. Two grabs of one job: the row lock serialises them and the second finds
    it no longer pooled. A technician sees a job to grab only while it is in the pool (or once it was: the
    loser of a race is told it was taken); anyone else gets 404."""
    job = await session.scalar(
        select(Job)
        .where(Job.id == job_id, Job.tenant_id == principal.tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if job is None or principal.role is not Role.TECHNICIAN:
        raise not_found("job")
    if job.status != S.POOLED:
        was_pooled = await session.scalar(
            select(
                exists().where(
                    JobEvent.tenant_id == principal.tenant_id,
                    JobEvent.job_id == job_id,
                    JobEvent.to_status == S.POOLED.value,
                )
            )
        )
        if not was_pooled:
            raise not_found("job")
        raise DomainError(ErrorCode.ALREADY_TAKEN, "Someone else took this job first.")
    await assignment.may_grab(session, principal, job_id)
    return await transition(
        session,
        principal,
        job_id,
        JobAction.GRAB,
        wire.Transition(),
        assignee_id=principal.user_id,
        event_data={"dispatch": "grab"},
        job=job,
    )


async def fetch_for_sync(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, wire.Job]:
    """The sync collection: the technician's own jobs (one reassigned away reaches them as removed)."""
    mine = list(
        await session.scalars(
            select(Job.id).where(
                Job.tenant_id == principal.tenant_id, Job.assignee_id == principal.user_id, Job.id.in_(ids)
            )
        )
    )
    return await load_wire(session, principal.tenant_id, mine)
