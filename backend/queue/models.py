"""The queue's tables: background jobs (a job row is never deleted by the queue: done and failed jobs stay for
inspection), and the scheduler's record of each periodic task's latest run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Integer, Interval, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column


class BackgroundJob(Base):
    """One unit of background work. Pending means neither `done_at` nor `failed_at` is set; a pending job runs
    once `run_at` has passed and nobody holds its lease (`locked_until`)."""

    __tablename__ = "background_jobs"
    __table_args__ = (
        # The workers' only question, "what is due?", reads pending rows only; finished rows pile up outside it.
        Index("ix_background_jobs_due", "run_at", postgresql_where=text("done_at IS NULL AND failed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)  # e.g. "push.deliver": picks the handler
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")  # runs started, the current one included
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)  # the latest failure, kept even after a later success
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the running worker's lease
    locked_by: Mapped[str | None] = mapped_column(Text)  # which worker holds (or last held) the lease
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # gave up: kept for inspection
    created_at: Mapped[datetime] = created_at_column()


class ScheduledRun(Base):
    """One row per periodic task (backend/queue/scheduler.py): its latest run, and the claim that makes it run at
    most once per period across every worker. A worker claims the task by moving `last_started_at` to now in one
    atomic statement that only succeeds when the previous start is at least `every` old and no live lease is held
    (`lease_until`), so two workers ticking at the same moment cannot both start it."""

    __tablename__ = "scheduled_runs"

    name: Mapped[str] = mapped_column(Text, primary_key=True)  # e.g. "sync.tombstones"
    every: Mapped[timedelta] = mapped_column(Interval)  # the period the code declared at the latest claim
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # of the latest finished run
    last_status: Mapped[str | None] = mapped_column(Text)  # 'running' | 'ok' | 'failed'
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the task's short summary, {"collected": 12}
    last_error: Mapped[str | None] = mapped_column(Text)  # why the latest finished run failed (None when it did not)
    last_worker: Mapped[str | None] = mapped_column(Text)  # who started the latest run
    # While it is running, no other worker starts it before this.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    runs: Mapped[int] = mapped_column(BigInteger, server_default="0")  # runs started, ever
