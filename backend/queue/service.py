"""Putting jobs on the queue, and what a job and its handler look like.

Why not Celery, RQ or Redis: the embedded default runs nothing but PostgreSQL, and a job written in the same
transaction as the change that caused it is dropped with that change when it rolls back, so a background side
effect (a push) happens only after a commit. Workers claim jobs with `FOR UPDATE SKIP LOCKED`, so any number of
them, on any number of machines, share one table without handing the same job to two of them.

Delivery is at least once: a worker that dies mid-job leaves it to be run again when its lease ends, so a handler
must be safe to repeat (a second "sync now" push is harmless).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.queue.models import BackgroundJob

if TYPE_CHECKING:
    from backend.db.engine import Database

# With the worker's backoff (10 s doubling, capped at an hour) a job keeps trying for about 2 to 3.5 hours.
DEFAULT_MAX_ATTEMPTS = 12


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    *,
    tenant_id: UUID | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """Queue one job in the caller's transaction and return its id. It becomes visible to workers when the caller
    commits, and vanishes if the caller rolls back. `payload` holds JSON values only (ids as strings)."""
    _check(kind, max_attempts)
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "kind": kind,
        "payload": dict(payload),
        "max_attempts": max_attempts,
    }
    if run_at is not None:
        values["run_at"] = run_at
    job_id: int = (
        await session.execute(insert(BackgroundJob).values(**values).returning(BackgroundJob.id))
    ).scalar_one()
    return job_id


async def enqueue_many(
    session: AsyncSession,
    kind: str,
    payloads: Iterable[Mapping[str, Any]],
    *,
    tenant_id: UUID | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """Queue a job per payload in one statement, like `enqueue`. Returns how many were queued."""
    _check(kind, max_attempts)
    extra: dict[str, Any] = {} if run_at is None else {"run_at": run_at}
    rows = [
        {"tenant_id": tenant_id, "kind": kind, "payload": dict(payload), "max_attempts": max_attempts, **extra}
        for payload in payloads
    ]
    if rows:
        await session.execute(insert(BackgroundJob), rows)
    return len(rows)


def _check(kind: str, max_attempts: int) -> None:
    if not kind:
        raise ValueError("a job needs a kind")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as its handler sees it."""

    id: int
    kind: str
    payload: dict[str, Any]
    tenant_id: UUID | None
    attempt: int  # 1 on the first run
    max_attempts: int


# A handler opens its own short sessions on `database`: the worker holds no transaction open while it runs.
Handler = Callable[["Database", Job], Awaitable[None]]


class RetryLater(Exception):
    """A known, passing failure (a service is down or busy): the job is retried with backoff, and the log gets one
    line instead of a traceback."""


class PermanentFailure(Exception):
    """The job can never succeed (the remote side refused it for good): it fails now, without further attempts."""


class Registry:
    """Which handler runs which kind of job. A worker only claims the kinds it knows, so a job of a kind that no
    running worker handles yet (during a rolling deploy) waits instead of failing."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> Handler:
        return self._handlers[kind]

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)
