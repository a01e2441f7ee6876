"""HTTP routes of jobs: create, read, dispatch (auto, manual, grab), lifecycle steps, the customer's code.

Coordinates cross the edge here: every route that takes or returns them takes `crs` (wgs84, gcj02, bd09) and
the service sees WGS-84 only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment import service as assignment
from backend.assignment.service import POOL_AREA_DECIMALS
from backend.auth.tokens import Principal
from backend.coordinates import answer_in, point_out, point_to_wgs84, request_in_wgs84
from backend.errors import DomainError, problems
from backend.jobs import service
from backend.jobs.codelocks import KnownCodeLocks
from backend.jobs.service import JobStep
from backend.limits import Call, UserConcurrency
from backend.openapi import replayed
from backend.settings import Settings
from mobile_contract import jobs as wire
from mobile_contract.base import SINGLE_LINE, AwareDatetime
from mobile_contract.errors import ErrorCode
from mobile_contract.location import CrsName, Point

Crs = Annotated[CrsName, Parameter(description="Coordinate system of the coordinates sent and answered")]


@asynccontextmanager
async def keeping_effects(session: AsyncSession) -> AsyncIterator[None]:
    """Commit what a refused request wrote when the refusal says so (`keep_effects`: a wrong code's attempt),
    then answer the problem."""
    try:
        yield
    except DomainError as exc:
        if exc.keep_effects:
            await session.commit()
        raise


def _area_out(area: Point, crs: CrsName) -> Point:
    """A pooled job's neighbourhood in the caller's system, rounded again: converting must not add precision."""
    moved = point_out(area.lat, area.lon, crs)
    return Point(lat=round(moved.lat, POOL_AREA_DECIMALS), lon=round(moved.lon, POOL_AREA_DECIMALS))


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post(
        "/",
        operation_id="createJob",
        responses={
            **replayed(wire.JobDetail, "A retry of the same id: the job as stored, nothing changed"),
            **problems(401, 403, 409),
        },
        summary="Create a job (dispatchers)",
    )
    async def create(
        self,
        data: JSONBody[wire.JobCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: Crs = CrsName.WGS84,
    ) -> Response[wire.JobDetail]:
        data = request_in_wgs84(data, crs)
        job, created = await service.create_job(session, principal, data)
        await session.commit()
        return Response(answer_in(job, crs), status_code=201 if created else 200)

    @get(
        "/",
        operation_id="listJobs",
        responses=problems(400, 401),
        summary="My jobs, or the jobs in my dispatch scope: most urgent first, paged",
    )
    async def list_jobs(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        status: FromQuery[wire.JobStatus | None] = None,
        assignee_id: FromQuery[UUID | None] = None,
        window_from: Annotated[AwareDatetime | None, QueryParameter(name="from")] = None,
        window_to: Annotated[AwareDatetime | None, QueryParameter(name="to")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
        crs: Crs = CrsName.WGS84,
    ) -> wire.JobPage:
        page = await service.list_jobs(
            session,
            principal,
            status=status,
            assignee_id=assignee_id,
            window_from=window_from,
            window_to=window_to,
            limit=limit,
            cursor=cursor,
        )
        return answer_in(page, crs)

    @get(
        "/pool",
        operation_id="poolJobsNearby",
        responses=problems(401, 403),
        summary="Open jobs nearest first, to grab (technicians): area, type, window, skills; no customer identity",
    )
    async def pool(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        lat: Annotated[float, Parameter(ge=-90.0, le=90.0)],
        lon: Annotated[float, Parameter(ge=-180.0, le=180.0)],
        radius_m: Annotated[float, Parameter(gt=0.0, le=100_000.0)] = 20_000.0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        crs: Crs = CrsName.WGS84,
    ) -> list[wire.PoolJob]:
        lat, lon = point_to_wgs84(lat, lon, crs)
        jobs = await assignment.pool_nearby(session, principal, lat, lon, radius_m, limit)
        if crs is CrsName.WGS84:
            return jobs
        return [msgspec.structs.replace(j, area=_area_out(j.area, crs)) for j in jobs]

    @get("/{job_id:uuid}", operation_id="getJob", responses=problems(401, 404), summary="A job with its audit trail")
    async def get_job(
        self,
        job_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: Crs = CrsName.WGS84,
    ) -> wire.JobDetail:
        return answer_in(await service.get_job(session, principal, job_id), crs)

    @post(
        "/{job_id:uuid}/dispatch",
        operation_id="dispatchJob",
        status_code=200,
        responses=problems(401, 403, 404, 409, 429),
        summary="Automatic dispatch within the dispatcher's scope: hard filters, then a score; dry_run only explains",
    )
    async def dispatch(
        self,
        job_id: FromPath[UUID],
        data: JSONBody[wire.DispatchRequest],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limits: NamedDependency[UserConcurrency],
    ) -> wire.DispatchDecision:
        with limits.hold(Call.DISPATCH, principal.user_id):
            decision = await service.dispatch_auto(session, principal, job_id, dry_run=data.dry_run)
            await session.commit()
        return decision

    @post(
        "/{job_id:uuid}/assign",
        operation_id="assignJob",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="Manual dispatch by a supervisor, to a technician in their scope (hard filters still apply)",
    )
    async def assign(
        self,
        job_id: FromPath[UUID],
        data: JSONBody[wire.Assign],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: Crs = CrsName.WGS84,
    ) -> wire.JobDetail:
        job = await service.assign_manually(session, principal, job_id, data.technician_id)
        await session.commit()
        return answer_in(job, crs)

    @post(
        "/{job_id:uuid}/grab",
        operation_id="grabJob",
        status_code=200,
        responses=problems(401, 404, 409),
        summary="A technician takes an open job; of two grabs exactly one wins",
    )
    async def grab(
        self,
        job_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: Crs = CrsName.WGS84,
    ) -> wire.JobDetail:
        job = await service.grab(session, principal, job_id)
        await session.commit()
        return answer_in(job, crs)

    @post(
        "/{job_id:uuid}/steps/{step:str}",
        operation_id="jobStep",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="One lifecycle step: accept, refuse, schedule, arrive, complete, approve, send_back, hold, ...",
        description="`arrive` takes `fix` in the query's `crs`; it is allowed from accepted (a walk-in) or scheduled.",
    )
    async def step(
        self,
        job_id: FromPath[UUID],
        step: FromPath[JobStep],
        data: JSONBody[wire.Transition],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        crs: Crs = CrsName.WGS84,
    ) -> wire.JobDetail:
        if data.fix is not None:
            data = request_in_wgs84(data, crs)
        job = await service.transition(
            session, principal, job_id, step, data, received_at=datetime.now(UTC), code_key=settings.code_key
        )
        await session.commit()
        return answer_in(job, crs)

    @post(
        "/{job_id:uuid}/code",
        operation_id="enterJobCode",
        status_code=200,
        responses=problems(401, 403, 404, 409, 410, 423, 429),
        summary="The customer's one-time code, as the technician typed it (every attempt counts)",
    )
    async def enter_code(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[UUID],
        data: JSONBody[wire.CodeEntry],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        limits: NamedDependency[UserConcurrency],
        crs: Crs = CrsName.WGS84,
    ) -> wire.JobDetail:
        # A code this technician just met locked is refused from memory: no connection, no transaction, the 423
        # held in the tarpit (jobs/codelocks.py, backend/tarpit.py). Nothing is compared, so nothing is counted.
        code_locks: KnownCodeLocks = request.app.state.code_locks
        if code_locks.locked(principal.tenant_id, job_id, principal.user_id):
            raise service.code_locked()
        # One at a time per job, waiting without a connection: forty parallel entries use one connection and are
        # each counted in order (backend/limits.py); then the per-user cap across a technician's jobs.
        async with limits.in_turn(Call.JOB_CODE, (principal.tenant_id, job_id)):
            if code_locks.locked(principal.tenant_id, job_id, principal.user_id):
                raise service.code_locked()  # an entry that waited behind the one that met the lock
            with limits.hold(Call.JOB_CODE, principal.user_id):
                try:
                    async with keeping_effects(session):
                        job = await service.enter_code(
                            session, principal, job_id, data, code_key=settings.code_key, received_at=datetime.now(UTC)
                        )
                    await session.commit()
                except DomainError as exc:
                    if exc.code is ErrorCode.CODE_ATTEMPTS_EXCEEDED:
                        code_locks.remember(principal.tenant_id, job_id, principal.user_id)
                    raise
                finally:
                    # Within the turn: the row locks and the connection are given back before the next entry
                    # starts (a no-op after the commit; a refusal that keeps nothing rolls back here).
                    await session.rollback()
        return answer_in(job, crs)

    @post(
        "/{job_id:uuid}/code/resend",
        operation_id="resendJobCode",
        status_code=204,
        responses=problems(401, 403, 404, 409, 429),
        summary="Dispatch sends the customer a new code (unlocks a locked one); rate-limited per job",
    )
    async def resend_code(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> None:
        await service.resend_code(session, principal, job_id, code_key=settings.code_key)
        await session.commit()
        code_locks: KnownCodeLocks = request.app.state.code_locks
        code_locks.forget(principal.tenant_id, job_id)  # the new code is unlocked: judged by the table again


class JobTypeController(Controller):
    path = "/v1/job-types"
    tags = ["jobs"]

    @get("/", operation_id="listJobTypes", responses=problems(401), summary="The tenant's job types")
    async def job_types(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> list[wire.JobTypeView]:
        return await service.list_job_types(session, principal)

    @post(
        "/",
        operation_id="createJobType",
        responses={
            **replayed(wire.JobTypeView, "A retry of the same key and body: the job type as stored"),
            **problems(401, 403, 409, 422),
        },
        summary="Add a job type and what proves it done (ops, admins)",
    )
    async def create_job_type(
        self,
        data: JSONBody[wire.JobTypeCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Response[wire.JobTypeView]:
        job_type, created = await service.create_job_type(session, principal, data)
        await session.commit()
        return Response(job_type, status_code=201 if created else 200)

    @patch(
        "/{key:str}",
        operation_id="updateJobType",
        responses=problems(401, 403, 404, 422),
        summary="Rename a job type or change its proof (new jobs take it; a job keeps the policy it was made with)",
    )
    async def update_job_type(
        self,
        key: Annotated[str, Parameter(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")],
        data: JSONBody[wire.JobTypeUpdate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.JobTypeView:
        job_type = await service.update_job_type(session, principal, key, data)
        await session.commit()
        return job_type


class TechnicianController(Controller):
    path = "/v1/technicians"
    tags = ["jobs"]

    @get(
        "/",
        operation_id="listTechnicians",
        responses=problems(400, 401, 403),
        summary="Technicians in the caller's data scope, with their dispatch profiles (dispatchers)",
    )
    async def list_technicians(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
        crs: Crs = CrsName.WGS84,
    ) -> wire.TechnicianPage:
        return answer_in(await assignment.list_technicians(session, principal, limit=limit, cursor=cursor), crs)

    @put(
        "/{user_id:uuid}/profile",
        operation_id="setTechnicianProfile",
        status_code=204,
        responses=problems(401, 403, 404),
        summary="Skills, regions, daily cap, availability and place of a technician (dispatchers)",
    )
    async def set_profile(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[wire.TechnicianProfileIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: Crs = CrsName.WGS84,
    ) -> None:
        if data.location is not None:
            data = request_in_wgs84(data, crs)
        await assignment.set_profile(session, principal, user_id, data)
        await session.commit()
