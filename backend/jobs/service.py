"""Job rules: a guarded lifecycle with an audit trail, dispatch three ways, and proof of work.

The lifecycle is the table `RULES`: for each action, the statuses it may start from, where it leads, who may
take it and whether it needs a reason. Every transition, whether it comes from a route, a sync mutation or the
dispatcher, goes through `transition` and leaves a `job_events` row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID

import msgspec
from sqlalchemy import Float, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User
from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.jobs.models import Job, JobCode, JobEvent, JobType, TechnicianProfile
from backend.media.service import count_proof_photos, count_proof_photos_of_jobs
from backend.push.service import notify_users
from backend.settings import get_settings
from backend.visits.service import action_time, judge_claim
from geo.fence import CircleFence
from geo.postgis import KNN_WITHOUT_INDEX_ORDER, is_knn_order_error, point_ewkt
from mobile_contract import jobs as wire
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from mobile_contract.location import Point, Verdict, VerdictReason, VerdictStatus
from sync.feed import Change, record_changes

log = logging.getLogger("groundwork.jobs")

JOBS = "jobs"
DISPATCHERS = (Role.SUPERVISOR, Role.OPS, Role.ADMIN)
CODE_TTL = timedelta(hours=4)
CODE_ATTEMPTS = 5
ACTIVE_FOR_LOAD = ("assigned", "accepted", "scheduled", "arrived", "verification", "on_hold")

# Job types every tenant starts with; a tenant may change their policies.
DEFAULT_JOB_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "install": ("Installation", {"code": True, "location": True, "photos": 2}),
    "repair": ("Repair", {"code": False, "location": True, "photos": 1}),
    "measure": ("Site measurement", {"code": False, "location": True, "photos": 0}),
    "return_visit": ("Return visit", {"code": True, "location": False, "photos": 0}),
}

Actor = Literal["assignee", "dispatcher", "technician"]


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[str, ...]
    target: str  # "held_from": back to where on_hold came from
    actors: tuple[Actor, ...]
    needs_reason: bool = False


RULES: dict[str, Rule] = {
    "pool": Rule(("new",), "pooled", ("dispatcher",)),
    "assign": Rule(("new", "pooled", "assigned", "accepted", "scheduled"), "assigned", ("dispatcher",)),
    "grab": Rule(("pooled",), "accepted", ("technician",)),
    "accept": Rule(("assigned",), "accepted", ("assignee",)),
    "refuse": Rule(("assigned", "accepted"), "new", ("assignee",), needs_reason=True),
    "schedule": Rule(("accepted", "scheduled"), "scheduled", ("assignee",)),
    "arrive": Rule(("scheduled",), "arrived", ("assignee",)),
    "verify": Rule(("arrived", "verification"), "verification", ("assignee",)),
    "complete": Rule(("arrived", "verification"), "completed", ("assignee",)),
    "approve": Rule(("completed",), "approved", ("dispatcher",)),
    "send_back": Rule(("completed",), "verification", ("dispatcher",), needs_reason=True),
    "hold": Rule(("accepted", "scheduled", "arrived", "verification"), "on_hold", ("assignee", "dispatcher"), True),
    "resume": Rule(("on_hold",), "held_from", ("assignee", "dispatcher")),
    "cannot_complete": Rule(
        ("accepted", "scheduled", "arrived", "verification"), "cannot_complete", ("assignee",), needs_reason=True
    ),
    "cancel": Rule(
        ("new", "pooled", "assigned", "accepted", "scheduled", "on_hold"), "cancelled", ("dispatcher",), True
    ),
}
# "No unassigning once work has started": assign (reassign) is not allowed from arrived onward, by RULES above.


def allowed_actions(status: str) -> list[str]:
    return [action for action, rule in RULES.items() if status in rule.sources]


# -- notifications and sms -------------------------------------------------------------------------------------


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class LogSms:
    """The default SMS gateway: writes the message to the log (a real gateway implements `SmsSender`)."""

    async def send(self, phone: str, text: str) -> None:
        log.info("SMS to %s: %s", phone, text)


SMS: SmsSender = LogSms()


async def _notify(
    session: AsyncSession, tenant_id: UUID, users: Sequence[UUID | None], job_id: UUID, reason: str
) -> None:
    """Wake the phones concerned so they sync now (push), and put the job in their change feed."""
    targets = [u for u in dict.fromkeys(users) if u is not None]
    if targets:
        await notify_users(session, tenant_id, targets, reason=reason, collection=JOBS, record_id=job_id)


# -- creating ----------------------------------------------------------------------------------------------------


async def ensure_job_types(session: AsyncSession, tenant_id: UUID) -> None:
    existing = set(await session.scalars(select(JobType.key).where(JobType.tenant_id == tenant_id)))
    for key, (name, policy) in DEFAULT_JOB_TYPES.items():
        if key not in existing:
            session.add(JobType(tenant_id=tenant_id, key=key, name=name, policy=policy))
    await session.flush()


def _request_hash(data: wire.JobCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(data, dispatch="none"))).hexdigest()


async def create_job(session: AsyncSession, principal: Principal, data: wire.JobCreate) -> tuple[wire.JobDetail, bool]:
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatchers create jobs.")
    if data.window_end <= data.window_start:
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "window_end must be after window_start.", errors=[])
    existing = await session.get(Job, data.id)
    request_hash = _request_hash(data)
    if existing is not None:
        if existing.tenant_id == principal.tenant_id and existing.request_hash == request_hash:
            return await get_job(session, principal, data.id), False
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, 409, "This job id was already used with other content.")
    await ensure_job_types(session, principal.tenant_id)
    job_type = await session.get(JobType, (principal.tenant_id, data.job_type))
    if job_type is None:
        known = ", ".join(sorted(DEFAULT_JOB_TYPES))
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, f"Unknown job type; this tenant has {known}.", errors=[])
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
        await transition(session, principal, data.id, "pool", wire.Transition())
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
) -> None:
    session.add(
        JobEvent(
            tenant_id=tenant_id,
            job_id=job_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor_id=actor_id,
            reason=reason,
            data=data,
        )
    )
    await session.flush()


# -- reading -----------------------------------------------------------------------------------------------------

# The site as plain degrees, for the wire and for the arrival's geofence.
_LAT = literal_column("ST_Y(jobs.location::geometry)", Float).label("lat")
_LON = literal_column("ST_X(jobs.location::geometry)", Float).label("lon")


def _arrival_verdict(job: Job) -> Verdict | None:
    if not job.arrival_visit:
        return None
    verdict = job.arrival_visit["verdict"]
    return Verdict(
        status=VerdictStatus(verdict["status"]),
        confidence=verdict["confidence"],
        distance_m=verdict["distance_m"],
        reasons=[VerdictReason(r) for r in verdict["reasons"]],
    )


async def load_wire(session: AsyncSession, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, wire.Job]:
    if not ids:
        return {}
    rows = (await session.execute(select(Job, _LAT, _LON).where(Job.tenant_id == tenant_id, Job.id.in_(ids)))).all()
    photos = await count_proof_photos_of_jobs(session, tenant_id, [row[0].id for row in rows])
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
            proof_photos=photos.get(job.id, 0),
            completed_at=job.completed_at,
            updated_at=job.updated_at,
        )
    return result


async def _visible_job(session: AsyncSession, principal: Principal, job_id: UUID, *, lock: bool = False) -> Job:
    """A job the caller may see: their own as assignee, in their data scope as dispatcher, or in the open pool."""
    statement = select(Job).where(Job.id == job_id, Job.tenant_id == principal.tenant_id)
    if lock:
        statement = statement.with_for_update()
    job = await session.scalar(statement)
    if job is None:
        raise not_found("job")
    if job.assignee_id == principal.user_id or job.status == "pooled":
        return job
    if principal.has_role(*DISPATCHERS):
        if principal.role in (Role.OPS, Role.ADMIN) or job.assignee_id is None:
            return job
        in_scope = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.id == job.assignee_id, visible_to(effective_scope(principal), User.id)),
            scope_params(principal),
        )
        if in_scope:
            return job
    raise not_found("job")


async def get_job(session: AsyncSession, principal: Principal, job_id: UUID) -> wire.JobDetail:
    job = await _visible_job(session, principal, job_id)
    return await _detail(session, principal.tenant_id, job.id)


async def _detail(session: AsyncSession, tenant_id: UUID, job_id: UUID) -> wire.JobDetail:
    """The job and its trail, without a visibility check: for the answer to whoever just acted on it (a
    technician who refused a job may no longer see it, but is told what they did)."""
    base = (await load_wire(session, tenant_id, [job_id]))[job_id]
    events = await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
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
    session: AsyncSession, principal: Principal, *, status: wire.JobStatus | None, limit: int
) -> list[wire.Job]:
    """A technician's own jobs; a dispatcher's jobs assigned within their scope (and unassigned ones)."""
    statement = select(Job.id).where(Job.tenant_id == principal.tenant_id)
    if principal.has_role(*DISPATCHERS):
        statement = statement.where(Job.assignee_id.is_(None) | visible_to(effective_scope(principal), Job.assignee_id))
    else:
        statement = statement.where(Job.assignee_id == principal.user_id)
    if status is not None:
        statement = statement.where(Job.status == status.value)
    ids = list(
        await session.scalars(
            statement.order_by(Job.priority, Job.window_start, Job.id).limit(limit), scope_params(principal)
        )
    )
    loaded = await load_wire(session, principal.tenant_id, ids)
    return [loaded[i] for i in ids]


async def pool_nearby(
    session: AsyncSession, principal: Principal, lat: float, lon: float, radius_m: float, limit: int
) -> list[wire.PoolJob]:
    """Open jobs nearest the technician (KNN on the pooled jobs' partial GiST index)."""
    statement = text(
        """
        WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g)
        SELECT jobs.id, jobs.location <-> here.g AS distance_m FROM jobs, here
        WHERE jobs.tenant_id = :tenant_id AND jobs.status = 'pooled'
          AND ST_DWithin(jobs.location, here.g, :radius, false)
        ORDER BY jobs.location <-> here.g, jobs.id LIMIT :limit
        """
    )
    params = {"lon": lon, "lat": lat, "tenant_id": principal.tenant_id, "radius": radius_m, "limit": limit}
    try:
        async with session.begin_nested():
            rows = (await session.execute(statement, params)).all()
    except DBAPIError as exc:
        if not is_knn_order_error(exc):
            raise
        # PostGIS's KNN on a point that (nearly) coincides with a job's: see geo.postgis.KNN_WITHOUT_INDEX_ORDER.
        async with session.begin_nested():
            await session.execute(text(KNN_WITHOUT_INDEX_ORDER))
            rows = (await session.execute(statement, params)).all()
            await session.execute(text("RESET enable_indexscan"))  # the rest of the request keeps its indexes
    loaded = await load_wire(session, principal.tenant_id, [r.id for r in rows])
    return [wire.PoolJob(job=loaded[r.id], distance_m=round(r.distance_m, 1)) for r in rows]


# -- the lifecycle -----------------------------------------------------------------------------------------------


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
        409,
        f"A job that is {job.status} cannot {action.replace('_', ' ')}.",
        job_status=job.status,
        allowed_actions=allowed,
    )


async def transition(
    session: AsyncSession,
    principal: Principal,
    job_id: UUID,
    action: str,
    data: wire.Transition,
    *,
    received_at: datetime | None = None,
    assignee_id: UUID | None = None,
    event_data: dict[str, Any] | None = None,
) -> wire.JobDetail:
    """Take one step of the lifecycle, guarded by `RULES`, and record it."""
    rule = RULES.get(action)
    if rule is None:
        raise DomainError(ErrorCode.INVALID_TRANSITION, 409, f"Unknown action {action!r}.")
    job = await _visible_job(session, principal, job_id, lock=True)
    if not _actor_kinds(principal, job) & set(rule.actors):
        raise forbidden(f"You may not {action.replace('_', ' ')} this job.")
    if job.status not in rule.sources:
        raise _refuse_transition(job, action)
    if rule.needs_reason and not data.reason:
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, f"To {action} a job, give a reason.", errors=[])
    received = received_at or datetime.now(UTC)
    previous_status, previous_assignee, policy = job.status, job.assignee_id, dict(job.policy)
    target = (job.held_from or "accepted") if rule.target == "held_from" else rule.target
    details = dict(event_data or {})
    values: dict[str, Any] = {"status": target}

    if action in ("assign", "grab"):
        if assignee_id is None:
            raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "Assign to whom?", errors=[])
        values.update(assignee_id=assignee_id, assigned_at=received, appointment_at=None)
    elif action == "refuse":
        values.update(assignee_id=None, assigned_at=None, appointment_at=None)
    elif action == "schedule":
        if data.appointment_at is None:
            raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "Give the appointment time.", errors=[])
        if not job.window_start - timedelta(days=1) <= data.appointment_at <= job.window_end:
            raise DomainError(
                ErrorCode.OUTSIDE_SERVICE_WINDOW, 422, "The appointment must fall within the service window."
            )
        values["appointment_at"] = data.appointment_at
    elif action == "arrive":
        values.update(await _arrival(session, principal, job, data, received))
        details["verdict"] = values["arrival_visit"]["verdict"]
    elif action == "hold":
        values["held_from"] = job.status
    elif action == "resume":
        values["held_from"] = None
    elif action == "complete":
        missing = await missing_proof(session, job)
        if missing:
            raise DomainError(
                ErrorCode.VERIFICATION_INCOMPLETE,
                409,
                "The job type's proof is not complete: " + "; ".join(missing) + ".",
                missing=missing,
            )
        values["completed_at"] = received
    elif action in ("approve", "send_back"):
        values.update(reviewed_at=received, reviewed_by=principal.user_id)

    await session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(**values, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    session.expire(job)
    await _event(
        session, principal.tenant_id, job_id, action, previous_status, target, principal.user_id, data.reason, details
    )
    new_assignee = values.get("assignee_id", previous_assignee) if "assignee_id" in values else previous_assignee
    changes = []
    if previous_assignee is not None and previous_assignee != new_assignee:
        changes.append(Change(previous_assignee, JOBS, job_id, "remove"))
    if new_assignee is not None:
        changes.append(Change(new_assignee, JOBS, job_id))
    await record_changes(session, principal.tenant_id, changes)
    if action in ("assign", "refuse", "cancel", "send_back", "resume", "hold"):
        # Whoever gains, loses or must act on the job hears about it now, not at their next poll.
        await _notify(session, principal.tenant_id, [previous_assignee, new_assignee], job_id, action)
    if action == "arrive" and policy.get("code"):
        await issue_code(session, principal.tenant_id, job_id)
    return await _detail(session, principal.tenant_id, job_id)


async def _arrival(
    session: AsyncSession, principal: Principal, job: Job, data: wire.Transition, received_at: datetime
) -> dict[str, Any]:
    if data.fix is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "Arriving needs a location fix.", errors=[])
    lat, lon = (await session.execute(select(_LAT, _LON).where(Job.id == job.id))).one()
    fence = CircleFence(lat=lat, lon=lon, radius_m=job.geofence_radius_m)
    acted = action_time(data.at, received_at, data.fix)
    verdict = await judge_claim(session, principal, fence, data.fix, received_at=received_at, action_at=acted)
    evidence = {
        "fix": msgspec.to_builtins(data.fix),
        "received_at": received_at.isoformat(),
        "trusted_at": verdict.trusted_captured_at.isoformat(),
        "verdict": {
            "status": verdict.status.value,
            "confidence": verdict.confidence,
            "distance_m": verdict.distance_m,
            "reasons": [r.value for r in verdict.reasons],
        },
    }
    # A rejected arrival is still an arrival on record: evidence for the reviewer, never thrown away; the job's
    # location proof simply stays unmet.
    return {"arrival_visit": evidence, "arrival_status": verdict.status.value}


async def missing_proof(session: AsyncSession, job: Job) -> list[str]:
    policy = job.policy
    missing = []
    if policy.get("code") and job.code_verified_at is None:
        missing.append("customer code not verified")
    if policy.get("location") and job.arrival_status != "verified":
        missing.append("arrival at the site not verified")
    wanted = int(policy.get("photos", 0))
    if wanted:
        have = await count_proof_photos(session, job.tenant_id, job.id)
        if have < wanted:
            missing.append(f"photos: {have} of {wanted}")
    return missing


# -- the customer's code -----------------------------------------------------------------------------------------


def _code_hash(secret: str, job_id: UUID, code: str) -> str:
    # Keyed and bound to the job: a stolen table reveals no codes, and a code never fits another job.
    return hmac.new(secret.encode(), f"{job_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_code(session: AsyncSession, tenant_id: UUID, job_id: UUID) -> None:
    """A fresh one-time code for the customer (replacing and unlocking any earlier one), sent by SMS."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    job = await session.get_one(Job, job_id)
    values = {
        "tenant_id": tenant_id,
        "code_hash": _code_hash(get_settings().jwt_secret, job_id, code),
        "expires_at": datetime.now(UTC) + CODE_TTL,
        "attempts": 0,
        "locked_at": None,
    }
    statement = insert(JobCode).values(job_id=job_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["job_id"], set_=values))
    await SMS.send(job.customer_phone, f"Your Groundwork code for today's visit is {code}. Give it to the technician.")


async def enter_code(
    session: AsyncSession,
    principal: Principal,
    job_id: UUID,
    entry: wire.CodeEntry,
    *,
    received_at: datetime | None = None,
) -> wire.JobDetail:
    """Check the code the customer gave. Attempts are counted in a transaction of their own, so a refused
    attempt still counts even though the request (or the queued mutation) fails: no brute force by retrying."""
    job = await _visible_job(session, principal, job_id)
    if job.assignee_id != principal.user_id:
        raise forbidden("Only the assigned technician enters the customer's code.")
    if job.status not in RULES["verify"].sources:
        raise _refuse_transition(job, "verify")
    received = received_at or datetime.now(UTC)
    entered_at = min(entry.at or received, received)
    async with AsyncSession(session.bind) as counter:
        code = await counter.scalar(select(JobCode).where(JobCode.job_id == job_id).with_for_update())
        if code is None:
            raise DomainError(ErrorCode.CODE_INVALID, 422, "No code was issued for this job; ask dispatch to send one.")
        if code.locked_at is not None:
            raise DomainError(
                ErrorCode.CODE_ATTEMPTS_EXCEEDED, 423, "Too many wrong codes: ask dispatch to send a new one."
            )
        if not hmac.compare_digest(code.code_hash, _code_hash(get_settings().jwt_secret, job_id, entry.code)):
            code.attempts += 1
            if code.attempts >= CODE_ATTEMPTS:
                code.locked_at = received
            left = CODE_ATTEMPTS - code.attempts
            await counter.commit()
            if left <= 0:
                raise DomainError(
                    ErrorCode.CODE_ATTEMPTS_EXCEEDED, 423, "Too many wrong codes: ask dispatch to send a new one."
                )
            raise DomainError(ErrorCode.CODE_INVALID, 422, f"Wrong code; {left} attempts left.", attempts_left=left)
        if entered_at > code.expires_at:
            raise DomainError(ErrorCode.CODE_EXPIRED, 410, "This code has expired: ask dispatch to send a new one.")
        await counter.rollback()
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(code_verified_at=entered_at)
        .execution_options(synchronize_session=False)
    )
    return await transition(
        session,
        principal,
        job_id,
        "verify",
        wire.Transition(at=entry.at),
        received_at=received,
        event_data={"proof": "code"},
    )


async def resend_code(session: AsyncSession, principal: Principal, job_id: UUID) -> None:
    job = await _visible_job(session, principal, job_id)
    if not principal.has_role(*DISPATCHERS) and job.assignee_id != principal.user_id:
        raise forbidden("Only dispatch or the technician can have the code sent again.")
    if not job.policy.get("code") or job.status not in ("arrived", "verification"):
        raise _refuse_transition(job, "resend_code")
    await issue_code(session, principal.tenant_id, job_id)
    await _event(
        session, principal.tenant_id, job_id, "resend_code", job.status, job.status, principal.user_id, None, {}
    )


# -- dispatch ----------------------------------------------------------------------------------------------------

_CANDIDATES_SQL = """
    WITH job AS (SELECT * FROM jobs WHERE id = :job_id AND tenant_id = :tenant_id),
    load AS (
        -- jobs already on the job's day (UTC), per technician: a range on window_start, so the index serves it
        SELECT j.assignee_id, count(*) AS n FROM jobs j, job
        WHERE j.tenant_id = :tenant_id AND j.status = ANY(:active)
          AND j.window_start >= date_trunc('day', job.window_start)
          AND j.window_start < date_trunc('day', job.window_start) + interval '1 day'
          AND j.id <> job.id
        GROUP BY j.assignee_id
    ),
    recent AS (
        SELECT j.assignee_id, count(*) AS n FROM jobs j
        WHERE j.tenant_id = :tenant_id AND j.assigned_at > now() - interval '7 days'
        GROUP BY j.assignee_id
    )
    SELECT u.id, u.display_name, tp.available, tp.daily_cap,
           job.region = ANY(tp.regions) AS in_region,
           job.required_skills <@ tp.skills AS skilled,
           ST_Distance(tp.location, job.location, false) AS distance_m,
           coalesce(load.n, 0) AS load, coalesce(recent.n, 0) AS recent
    FROM technician_profiles tp
    JOIN users u ON u.id = tp.user_id AND u.is_active AND u.role = 'technician'
    CROSS JOIN job
    LEFT JOIN load ON load.assignee_id = u.id
    LEFT JOIN recent ON recent.assignee_id = u.id
    WHERE tp.tenant_id = :tenant_id
"""
# Two statements rather than one with "(:only IS NULL OR u.id = :only)": a prepared plan for that predicate
# misjudges how many technicians it keeps, and automatic dispatch paid ~25% for it (measured in bench/).
_CANDIDATES = text(_CANDIDATES_SQL)
_CANDIDATE = text(_CANDIDATES_SQL + "  AND u.id = :only\n")

# Score weights (lower is better): 10 km of travel weighs as much as a full day's load, or as much as being
# one week's average number of jobs ahead of the others.
DISTANCE_KM_WEIGHT = 0.1
LOAD_WEIGHT = 1.0
FAIRNESS_WEIGHT = 1.0


async def candidates(
    session: AsyncSession, tenant_id: UUID, job_id: UUID, only: UUID | None = None
) -> list[wire.CandidateView]:
    params: dict[str, Any] = {"job_id": job_id, "tenant_id": tenant_id, "active": list(ACTIVE_FOR_LOAD)}
    if only is not None:
        params["only"] = only
    rows = (await session.execute(_CANDIDATE if only is not None else _CANDIDATES, params)).all()
    eligible_recent = [r.recent for r in rows]
    average_recent = sum(eligible_recent) / len(eligible_recent) if eligible_recent else 0.0
    views = []
    for r in rows:
        reasons = []
        if not r.in_region:
            reasons.append("region")
        if not r.skilled:
            reasons.append("skills")
        if not r.available:
            reasons.append("unavailable")
        if r.load >= r.daily_cap:
            reasons.append("daily_cap")
        score = None
        if not reasons:
            distance_term = (r.distance_m / 1000 if r.distance_m is not None else 50.0) * DISTANCE_KM_WEIGHT
            load_term = r.load / max(r.daily_cap, 1) * LOAD_WEIGHT
            fairness_term = (r.recent - average_recent) / max(average_recent, 1.0) * FAIRNESS_WEIGHT
            score = round(distance_term + load_term + fairness_term, 4)
        views.append(
            wire.CandidateView(
                technician_id=r.id,
                name=r.display_name,
                eligible=not reasons,
                reasons=reasons,
                distance_m=round(r.distance_m, 1) if r.distance_m is not None else None,
                load=r.load,
                recent=r.recent,
                score=score,
            )
        )
    views.sort(key=lambda v: (not v.eligible, v.score if v.score is not None else 0.0, str(v.technician_id)))
    return views


async def dispatch_auto(
    session: AsyncSession, principal: Principal, job_id: UUID, *, dry_run: bool
) -> wire.DispatchDecision:
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatchers dispatch jobs.")
    job = await _visible_job(session, principal, job_id, lock=not dry_run)
    if job.status not in RULES["assign"].sources:
        raise _refuse_transition(job, "assign")
    views = await candidates(session, principal.tenant_id, job_id)
    chosen = views[0] if views and views[0].eligible else None
    if chosen is None:
        explanation = f"No technician passes the hard filters ({len(views)} considered); the job stays {job.status}."
    else:
        explanation = (
            f"{chosen.name}: lowest score {chosen.score} (distance {chosen.distance_m} m, {chosen.load} jobs that day,"
            f" {chosen.recent} in 7 days) among {sum(v.eligible for v in views)} eligible of {len(views)}."
        )
    decision = wire.DispatchDecision(
        job_id=job_id,
        chosen=chosen.technician_id if chosen else None,
        dry_run=dry_run,
        explanation=explanation,
        candidates=views,
    )
    if chosen is not None and not dry_run:
        await transition(
            session,
            principal,
            job_id,
            "assign",
            wire.Transition(),
            assignee_id=chosen.technician_id,
            event_data={"dispatch": "auto", "explanation": explanation, "score": chosen.score},
        )
    return decision


async def assign_manually(
    session: AsyncSession, principal: Principal, job_id: UUID, technician_id: UUID
) -> wire.JobDetail:
    views = await candidates(session, principal.tenant_id, job_id, only=technician_id)
    view = views[0] if views else None
    if view is None:
        raise not_found("technician")
    # A supervisor may override the soft score, but not the hard filters: those are facts about the work.
    if not view.eligible:
        raise DomainError(
            ErrorCode.NOT_ELIGIBLE,
            409,
            f"{view.name} cannot take this job: {', '.join(view.reasons)}.",
            reasons=view.reasons,
        )
    return await transition(
        session,
        principal,
        job_id,
        "assign",
        wire.Transition(),
        assignee_id=technician_id,
        event_data={"dispatch": "manual"},
    )


async def grab(session: AsyncSession, principal: Principal, job_id: UUID) -> wire.JobDetail:
    """A technician takes an open job. Two grabs of one job: the row lock serialises them and the second finds
    it no longer pooled."""
    if principal.role is not Role.TECHNICIAN:
        raise forbidden("Only technicians grab jobs.")
    job = await session.scalar(
        select(Job).where(Job.id == job_id, Job.tenant_id == principal.tenant_id).with_for_update()
    )
    if job is None:
        raise not_found("job")
    if job.status != "pooled":
        raise DomainError(ErrorCode.ALREADY_TAKEN, 409, "Someone else took this job first.")
    views = await candidates(session, principal.tenant_id, job_id, only=principal.user_id)
    view = views[0] if views else None
    if view is None or not view.eligible:
        reasons = view.reasons if view else ["no technician profile"]
        raise DomainError(
            ErrorCode.NOT_ELIGIBLE, 409, f"You cannot take this job: {', '.join(reasons)}.", reasons=reasons
        )
    return await transition(
        session,
        principal,
        job_id,
        "grab",
        wire.Transition(),
        assignee_id=principal.user_id,
        event_data={"dispatch": "grab"},
    )


async def set_profile(
    session: AsyncSession, principal: Principal, user_id: UUID, data: wire.TechnicianProfileIn
) -> None:
    if not principal.has_role(*DISPATCHERS):
        raise forbidden("Only dispatchers edit technician profiles.")
    user = await session.scalar(
        select(User).where(User.id == user_id, User.tenant_id == principal.tenant_id, User.role == "technician")
    )
    if user is None:
        raise not_found("technician")
    values: dict[str, Any] = {
        "tenant_id": principal.tenant_id,
        "skills": sorted(set(data.skills)),
        "regions": sorted(set(data.regions)),
        "daily_cap": data.daily_cap,
        "available": data.available,
    }
    if data.location is not None:
        values["location"] = point_ewkt(data.location.lat, data.location.lon)
        values["location_at"] = datetime.now(UTC)
    statement = insert(TechnicianProfile).values(user_id=user_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))


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
