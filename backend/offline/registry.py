"""The registry the sync engine runs on: every collection a phone mirrors and every command it may queue.

Mutations call the very service functions the online routes call: one implementation of each command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import DomainError
from backend.jobs import service as jobs_service
from backend.pois import service as pois_service
from backend.tasks import service as tasks_service
from backend.visits import service as visits_service
from mobile_contract.base import AwareDatetime, LongText, Request
from mobile_contract.jobs import CodeEntry, JobCommandArgs, JobVerifyArgs, Transition
from mobile_contract.location import Fix
from mobile_contract.pois import PoiCreate
from mobile_contract.tasks import TaskUpdateArgs, WorkItemUpdate
from mobile_contract.visits import CheckIn, CheckOut
from sync.registry import CollectionSpec, MutationMeta, MutationSpec, Refusal, Registry, touching


class CheckOutArgs(Request, kw_only=True):
    visit_id: UUID
    fix: Fix
    checked_out_at: AwareDatetime | None = None
    note: LongText | None = None


def _refusal(exc: BaseException) -> Refusal | None:
    if isinstance(exc, DomainError):
        return Refusal(code=exc.code.value, detail=exc.detail, keep_effects=bool(getattr(exc, "keep_effects", False)))
    return None


async def _check_in(session: AsyncSession, principal: Principal, args: CheckIn, meta: MutationMeta) -> Any:
    # Queued offline: the action happened when the phone queued it, not when it finally reached us.
    if args.checked_in_at is None:
        args = msgspec.structs.replace(args, checked_in_at=meta.created_at)
    visit, _ = await visits_service.check_in(session, principal, args, received_at=meta.received_at)
    return visit


async def _check_out(session: AsyncSession, principal: Principal, args: CheckOutArgs, meta: MutationMeta) -> Any:
    checked_out_at: datetime = args.checked_out_at or meta.created_at
    data = CheckOut(fix=args.fix, checked_out_at=checked_out_at, note=args.note)
    return await visits_service.check_out(session, principal, args.visit_id, data, received_at=meta.received_at)


async def _create_poi(session: AsyncSession, principal: Principal, args: PoiCreate, meta: MutationMeta) -> Any:
    detail, _ = await pois_service.create(session, principal, args)
    return detail


async def _update_task(session: AsyncSession, principal: Principal, args: TaskUpdateArgs, meta: MutationMeta) -> Any:
    fields = {f: getattr(args, f) for f in args.__struct_fields__ if f != "id"}
    patch = msgspec.convert(
        {k: msgspec.to_builtins(v) for k, v in fields.items() if v is not msgspec.UNSET},
        WorkItemUpdate,
    )
    return await tasks_service.update_work_item(session, principal, args.id, patch, base_xid=meta.base_xid)


async def _fetch_pois(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await pois_service.fetch_for_sync(session, principal, ids)


async def _fetch_work_items(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await tasks_service.fetch_for_sync(session, principal.tenant_id, principal.user_id, ids)


async def _fetch_visits(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await visits_service.fetch_for_sync(session, principal.tenant_id, principal.user_id, ids)


JOB_STEPS = ("accept", "refuse", "schedule", "arrive", "complete", "hold", "resume", "cannot_complete")


def _job_step(step: str) -> Any:
    async def handler(session: AsyncSession, principal: Principal, args: JobCommandArgs, meta: MutationMeta) -> Any:
        # Queued offline: when it happened is the phone's `at`, else when it queued the step.
        data = Transition(
            reason=args.reason, appointment_at=args.appointment_at, fix=args.fix, at=args.at or meta.created_at
        )
        return await jobs_service.transition(session, principal, args.job_id, step, data, received_at=meta.received_at)

    return handler


async def _job_verify(session: AsyncSession, principal: Principal, args: JobVerifyArgs, meta: MutationMeta) -> Any:
    entry = CodeEntry(code=args.code, at=args.at or meta.created_at)
    return await jobs_service.enter_code(session, principal, args.job_id, entry, received_at=meta.received_at)


async def _job_grab(session: AsyncSession, principal: Principal, args: JobCommandArgs, meta: MutationMeta) -> Any:
    return await jobs_service.grab(session, principal, args.job_id)


async def _fetch_jobs(session: AsyncSession, principal: Principal, ids: list[UUID]) -> dict[UUID, Any]:
    return await jobs_service.fetch_for_sync(session, principal, ids)


def build_registry() -> Registry[Principal]:
    registry: Registry[Principal] = Registry(refusal=_refusal)
    registry.collection(CollectionSpec("pois", _fetch_pois))
    registry.collection(CollectionSpec("work_items", _fetch_work_items))
    registry.collection(CollectionSpec("visits", _fetch_visits))
    registry.collection(CollectionSpec("jobs", _fetch_jobs))
    registry.mutation(MutationSpec("visit.check_in", CheckIn, _check_in, touches=touching(("visits", "id"))))
    registry.mutation(
        MutationSpec("visit.check_out", CheckOutArgs, _check_out, touches=touching(("visits", "visit_id")))
    )
    registry.mutation(MutationSpec("poi.create", PoiCreate, _create_poi, touches=touching(("pois", "id"))))
    registry.mutation(MutationSpec("task.update", TaskUpdateArgs, _update_task, touches=touching(("work_items", "id"))))
    for step in JOB_STEPS:
        registry.mutation(
            MutationSpec(f"job.{step}", JobCommandArgs, _job_step(step), touches=touching(("jobs", "job_id")))
        )
    registry.mutation(MutationSpec("job.verify", JobVerifyArgs, _job_verify, touches=touching(("jobs", "job_id"))))
    registry.mutation(MutationSpec("job.grab", JobCommandArgs, _job_grab, touches=touching(("jobs", "job_id"))))
    return registry


REGISTRY = build_registry()
