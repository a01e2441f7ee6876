"""What jobs put on a technician's phone and take from its queue: their own jobs, and every lifecycle step a
technician takes (accept, arrive, complete, the customer's code...) queued offline, through the same service
functions as the online routes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.coordinates import request_in_wgs84
from backend.jobs import service
from backend.offline.registry import SyncRegistry
from backend.settings import Settings
from mobile_contract.jobs import CodeEntry, Job, JobAction, JobCommandArgs, JobVerifyArgs, Transition
from sync.registry import MutationMeta, MutationSpec, touching

JOBS = service.JOBS
# The steps a technician's phone may queue: every step its assignee takes, from the jobs domain's table of rules
# (the code, `job.verify`, is no plain step: it has its own args).
JOB_STEPS = service.ASSIGNEE_STEPS


def _code_key(meta: MutationMeta) -> bytes:
    """The customer-code key from the settings the caller of the sync engine passed in with the mutation (the
    routes get the key through the `settings` dependency); neither this edge nor the jobs service fetches them."""
    settings = meta.context
    if not isinstance(settings, Settings):
        raise TypeError("job mutations need the app's settings as the sync engine's context")
    return settings.code_key


def _step(step: str) -> Any:
    async def handler(session: AsyncSession, principal: Principal, args: JobCommandArgs, meta: MutationMeta) -> Any:
        # Queued offline: when it happened is the phone's `at`, else when it queued the step. The fix comes in the
        # phone's `crs`, converted at this edge as the routes convert theirs.
        fix = request_in_wgs84(args.fix, args.crs) if args.fix is not None else None
        data = Transition(
            reason=args.reason, appointment_at=args.appointment_at, fix=fix, at=args.at or meta.created_at
        )
        return await service.transition(
            session, principal, args.job_id, step, data, received_at=meta.received_at, code_key=_code_key(meta)
        )

    return handler


async def _verify(session: AsyncSession, principal: Principal, args: JobVerifyArgs, meta: MutationMeta) -> Any:
    entry = CodeEntry(code=args.code, at=args.at or meta.created_at)
    return await service.enter_code(
        session, principal, args.job_id, entry, code_key=_code_key(meta), received_at=meta.received_at
    )


async def _grab(session: AsyncSession, principal: Principal, args: JobCommandArgs, meta: MutationMeta) -> Any:
    return await service.grab(session, principal, args.job_id)


async def _fetch(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await service.fetch_for_sync(session, principal, ids)


_touches = touching((JOBS, "job_id"))


def register(registry: SyncRegistry) -> None:
    registry.collection_of(JOBS, Job, _fetch)
    for step in JOB_STEPS:
        registry.mutation(MutationSpec(f"job.{step}", JobCommandArgs, _step(step), touches=_touches))
    registry.mutation(MutationSpec(f"job.{JobAction.VERIFY.value}", JobVerifyArgs, _verify, touches=_touches))
    registry.mutation(MutationSpec(f"job.{JobAction.GRAB.value}", JobCommandArgs, _grab, touches=_touches))
