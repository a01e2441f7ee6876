"""What jobs put on a technician's phone and take from its queue: their own jobs, and every lifecycle step a
technician takes (accept, arrive, complete, the customer's code...) queued offline, through the same service
functions as the online routes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.jobs import service
from backend.offline.registry import SyncRegistry
from mobile_contract.jobs import CodeEntry, Job, JobCommandArgs, JobVerifyArgs, Transition
from sync.registry import MutationMeta, MutationSpec, ids_in

JOBS = service.JOBS
# The steps a technician's phone may queue: every step its assignee takes, but the code (`job.verify`, with its
# own args), derived from the lifecycle table so the two never drift.
JOB_STEPS = tuple(step for step, rule in service.RULES.items() if "assignee" in rule.actors and step != "verify")


def _step(step: str) -> Any:
    async def handler(session: AsyncSession, principal: Principal, args: JobCommandArgs, meta: MutationMeta) -> Any:
        # Queued offline: when it happened is the phone's `at`, else when it queued the step.
        data = Transition(
            reason=args.reason, appointment_at=args.appointment_at, fix=args.fix, at=args.at or meta.created_at
        )
        return await service.transition(session, principal, args.job_id, step, data, received_at=meta.received_at)

    return handler


async def _verify(session: AsyncSession, principal: Principal, args: JobVerifyArgs, meta: MutationMeta) -> Any:
    entry = CodeEntry(code=args.code, at=args.at or meta.created_at)
    return await service.enter_code(session, principal, args.job_id, entry, received_at=meta.received_at)


async def _grab(session: AsyncSession, principal: Principal, args: JobCommandArgs, meta: MutationMeta) -> Any:
    return await service.grab(session, principal, args.job_id)


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await service.fetch_for_sync(session, principal, ids)


def _touches(args: Any) -> list[tuple[str, UUID]]:
    return ids_in(args, JOBS, "job_id")


def register(registry: SyncRegistry) -> None:
    registry.collection_of(JOBS, Job, _fetch)
    for step in JOB_STEPS:
        registry.mutation(MutationSpec(f"job.{step}", JobCommandArgs, _step(step), touches=_touches))
    registry.mutation(MutationSpec("job.verify", JobVerifyArgs, _verify, touches=_touches))
    registry.mutation(MutationSpec("job.grab", JobCommandArgs, _grab, touches=_touches))
