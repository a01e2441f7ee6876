"""Field-service jobs: creation, dispatch (automatic, grab, manual), the lifecycle, and proof of work."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from mobile_contract.base import NO_CONTROL, SINGLE_LINE, AwareDatetime, LongText, Phone, Request, Response, ShortText
from mobile_contract.location import CrsName, Fix, Point, PointIn, Verdict

Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=1000, pattern=NO_CONTROL)]
Skill = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Region = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SINGLE_LINE)]


class JobStatus(enum.StrEnum):
    NEW = "new"
    POOLED = "pooled"  # open for technicians to grab
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"  # appointment set with the customer
    ARRIVED = "arrived"  # checked in at the site, with a verdict
    VERIFICATION = "verification"  # proof being gathered (code, photos)
    COMPLETED = "completed"  # the technician's word: awaiting review
    APPROVED = "approved"  # reviewed and approved
    ON_HOLD = "on_hold"
    CANNOT_COMPLETE = "cannot_complete"
    CANCELLED = "cancelled"


class JobAction(enum.StrEnum):
    """Every step of a job's lifecycle: the one list of their names. The server's table of rules is keyed by it,
    and the lifecycle route's `{step}`, the sync mutations `job.<step>` and the audit trail derive from it."""

    POOL = "pool"  # open the job for technicians to grab
    ASSIGN = "assign"
    GRAB = "grab"
    ACCEPT = "accept"
    REFUSE = "refuse"
    SCHEDULE = "schedule"
    ARRIVE = "arrive"
    VERIFY = "verify"  # the customer's code
    COMPLETE = "complete"
    APPROVE = "approve"
    SEND_BACK = "send_back"
    HOLD = "hold"
    RESUME = "resume"
    CANNOT_COMPLETE = "cannot_complete"
    CANCEL = "cancel"


class VerificationPolicy(Response):
    """What proves a job of this type done."""

    code: bool  # the customer's one-time code
    location: bool  # a verified arrival at the site
    photos: int  # at least this many photos that are not reused from earlier jobs


class JobCreate(Request, kw_only=True):
    id: UUID  # client-generated: a retried create is the same job
    job_type: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
    customer_name: ShortText
    customer_phone: Phone
    address: LongText
    location: PointIn
    geofence_radius_m: Annotated[float, msgspec.Meta(ge=10, le=2_000)] = 150.0
    region: Region
    required_skills: Annotated[list[Skill], msgspec.Meta(max_length=20)] = []
    window_start: AwareDatetime
    window_end: AwareDatetime
    priority: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    notes: LongText = ""
    dispatch: Literal["none", "pool", "auto"] = "none"  # what to do right after creating it


class JobEventView(Response):
    action: str
    from_status: JobStatus | None
    to_status: JobStatus
    actor_id: UUID | None
    reason: str | None
    data: dict[str, Any]
    at: datetime


class Job(Response):
    id: UUID
    job_type: str
    customer_name: str
    customer_phone: str
    address: str
    location: Point
    geofence_radius_m: float
    region: str
    required_skills: list[str]
    window_start: datetime
    window_end: datetime
    priority: int
    notes: str
    status: JobStatus
    assignee_id: UUID | None
    appointment_at: datetime | None
    arrival: Verdict | None
    code_verified: bool
    policy: VerificationPolicy
    proof_photos: int
    completed_at: datetime | None
    updated_at: datetime


class JobDetail(Job):
    """A job with its audit trail, for dispatchers and reviewers."""

    events: list[JobEventView]


class JobPage(Response):
    items: list[Job]
    next_cursor: str | None


class JobTypeView(Response):
    key: str
    name: str
    policy: VerificationPolicy


class VerificationPolicyIn(Request):
    """What proves a job of this type done (a job keeps the policy of its type at the time it was created)."""

    code: bool
    location: bool
    photos: Annotated[int, msgspec.Meta(ge=0, le=20)]


JobTypeKey = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]


class JobTypeCreate(Request):
    """A new kind of job. `key` is chosen by the caller, so a retried create is the same type."""

    key: JobTypeKey
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=SINGLE_LINE)]
    policy: VerificationPolicyIn


class JobTypeUpdate(Request):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=SINGLE_LINE)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    policy: VerificationPolicyIn | msgspec.UnsetType = msgspec.UNSET


class TechnicianView(Response):
    """A technician with their dispatch profile (`profile` null until a dispatcher sets one)."""

    id: UUID
    display_name: str
    team_id: UUID | None
    is_active: bool
    profile: TechnicianProfileView | None


class TechnicianProfileView(Response):
    skills: list[str]
    regions: list[str]
    daily_cap: int
    available: bool
    location: Point | None
    location_at: datetime | None


class TechnicianPage(Response):
    items: list[TechnicianView]
    next_cursor: str | None


class PoolJob(Response):
    """An open job as a technician sees it before taking it: what it takes and where, roughly, but not who the
    customer is (name, phone, address and exact site come with the job once taken)."""

    id: UUID
    job_type: str
    region: str
    area: Point  # the site rounded to 0.01 degree (about a kilometre): the neighbourhood, not the door
    distance_m: float  # from the point asked about to the exact site
    required_skills: list[str]
    window_start: datetime
    window_end: datetime
    priority: int
    policy: VerificationPolicy


class Transition(Request, kw_only=True):
    """One lifecycle step. Which fields matter depends on the action (see the operation)."""

    reason: Reason | None = None
    appointment_at: AwareDatetime | None = None  # schedule
    fix: Fix | None = None  # arrive
    at: AwareDatetime | None = None  # when it happened by the phone's clock (queued offline); default: arrival


class CodeEntry(Request, kw_only=True):
    code: Annotated[str, msgspec.Meta(max_length=6, pattern=r"^[0-9]{6}$")]
    at: AwareDatetime | None = None


class Assign(Request):
    technician_id: UUID


class CandidateView(Response):
    technician_id: UUID
    name: str
    eligible: bool
    reasons: list[str]  # why not, for those filtered out: region, skills, unavailable, daily_cap
    distance_m: float | None
    load: int | None  # jobs already on the job's day
    recent: int | None  # jobs assigned in the last 7 days (fairness)
    score: float | None  # lower is better


class DispatchDecision(Response):
    job_id: UUID
    chosen: UUID | None
    dry_run: bool
    explanation: str
    candidates: list[CandidateView]  # the chosen first, then the eligible by score, then the filtered out


class DispatchRequest(Request):
    dry_run: bool = False


class TechnicianProfileIn(Request, kw_only=True):
    skills: Annotated[list[Skill], msgspec.Meta(max_length=50)] = []
    regions: Annotated[list[Region], msgspec.Meta(max_length=20)] = []
    daily_cap: Annotated[int, msgspec.Meta(ge=0, le=50)] = 6
    available: bool = True
    location: PointIn | None = None


class JobCommandArgs(Transition, kw_only=True):
    """A queued job transition (`job.accept`, `job.refuse`, `job.schedule`, `job.arrive`, `job.complete`...)."""

    job_id: UUID
    crs: CrsName = CrsName.WGS84  # the system of `fix` (a phone on GCJ-02 maps sends GCJ-02)


class JobVerifyArgs(CodeEntry, kw_only=True):
    """The queued `job.verify` mutation: a customer code typed in offline, judged when it syncs."""

    job_id: UUID
