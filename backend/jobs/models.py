"""Tables of jobs, job types (with their verification policy), the audit trail and one-time customer codes.
(Technicians' dispatch profiles are assignment's: backend.assignment.models.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from geoalchemy2 import Geography
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column
from mobile_contract.jobs import JobStatus

JOB_STATUSES = tuple(status.value for status in JobStatus)  # the wire enum is the one list


class JobType(Base):
    """A kind of job and what proves it done: `policy` = {code: bool, location: bool, photos: int}."""

    __tablename__ = "job_types"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_assignee_status", "tenant_id", "assignee_id", "status"),
        # Dispatch counts each technician's load on a day and their assignments of the last week: both read
        # from these indexes alone (measured: the candidates query went from ~100 ms to ~18 ms at 127k jobs).
        Index("ix_jobs_tenant_window", "tenant_id", "window_start", postgresql_include=["status", "assignee_id"]),
        Index("ix_jobs_tenant_assigned_at", "tenant_id", "assigned_at", postgresql_include=["assignee_id"]),
        # Grab: open jobs nearest a technician (KNN), per tenant.
        Index(
            "ix_jobs_pool_location",
            "tenant_id",
            "location",
            postgresql_using="gist",
            postgresql_where="status = 'pooled'",
        ),
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in JOB_STATUSES) + ")", name="status"),
        CheckConstraint("window_end > window_start", name="window"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)  # chosen by the client, unique within the tenant
    job_type: Mapped[str] = mapped_column(String(32))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_phone: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(Text)
    location: Mapped[object] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    geofence_radius_m: Mapped[float] = mapped_column(Float)
    region: Mapped[str] = mapped_column(String(64))
    required_skills: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    priority: Mapped[int] = mapped_column(Integer, server_default="3")  # 1 most urgent
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the job type's policy when the job was made
    notes: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[str] = mapped_column(String(16), server_default="new")
    held_from: Mapped[str | None] = mapped_column(String(16))  # the status to resume to after on_hold
    assignee_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    assigned_at: Mapped[datetime | None]
    appointment_at: Mapped[datetime | None]
    arrival_visit: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the arrival fix, as sent, with its verdict
    arrival_status: Mapped[str | None] = mapped_column(String(16))  # the arrival verdict's status
    code_verified_at: Mapped[datetime | None]
    # Photos that prove work on the job, as the media domain counts them (it sets this when a photo is stored):
    # the jobs domain reads its completion policy here without reaching into media's tables.
    proof_photos: Mapped[int] = mapped_column(Integer, server_default="0")
    completed_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class JobEvent(Base):
    """The audit trail: every transition, who made it, why, and from where it came (online, sync, dispatch)."""

    __tablename__ = "job_events"
    __table_args__ = (
        Index("ix_job_events_job", "tenant_id", "job_id", "id"),
        ForeignKeyConstraint(
            ["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.id"], name="fk_job_events_job_id_jobs", ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[UUID]
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    at: Mapped[datetime] = created_at_column()


class JobCode(Base):
    """The customer's one-time code, kept only as a keyed hash bound to the job (another job's code never fits)."""

    __tablename__ = "job_codes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.id"], name="fk_job_codes_job_id_jobs", ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    job_id: Mapped[UUID] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_at: Mapped[datetime | None]
    issued_at: Mapped[datetime] = created_at_column()
