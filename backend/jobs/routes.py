"""HTTP routes of jobs: create, read, dispatch (auto, manual, grab), lifecycle steps, the customer's code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.coordinates import point_to_wgs84
from backend.errors import problems
from backend.jobs import service
from mobile_contract import jobs as wire
from mobile_contract.location import CrsName

StepName = Literal[
    "pool",
    "accept",
    "refuse",
    "schedule",
    "arrive",
    "complete",
    "approve",
    "send_back",
    "hold",
    "resume",
    "cannot_complete",
    "cancel",
]


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post("/", operation_id="createJob", responses=problems(401, 403, 409), summary="Create a job (dispatchers)")
    async def create(
        self,
        data: JSONBody[wire.JobCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Response[wire.JobDetail]:
        job, created = await service.create_job(session, principal, data)
        await session.commit()
        return Response(job, status_code=201 if created else 200)

    @get("/", operation_id="listJobs", responses=problems(401), summary="My jobs, or the jobs in my dispatch scope")
    async def list_jobs(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        status: FromQuery[wire.JobStatus | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> list[wire.Job]:
        return await service.list_jobs(session, principal, status=status, limit=limit)

    @get("/pool", operation_id="poolJobsNearby", responses=problems(401), summary="Open jobs nearest first, to grab")
    async def pool(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        lat: Annotated[float, Parameter(ge=-90.0, le=90.0)],
        lon: Annotated[float, Parameter(ge=-180.0, le=180.0)],
        radius_m: Annotated[float, Parameter(gt=0.0, le=100_000.0)] = 20_000.0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> list[wire.PoolJob]:
        lat, lon = point_to_wgs84(lat, lon, CrsName.WGS84)  # rounded as stored: see point_to_wgs84 (KNN)
        return await service.pool_nearby(session, principal, lat, lon, radius_m, limit)

    @get("/{job_id:uuid}", operation_id="getJob", responses=problems(401, 404), summary="A job with its audit trail")
    async def get_job(
        self, job_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.JobDetail:
        return await service.get_job(session, principal, job_id)

    @post(
        "/{job_id:uuid}/dispatch",
        operation_id="dispatchJob",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="Automatic dispatch: hard filters, then a score; explains the choice; dry_run only explains",
    )
    async def dispatch(
        self,
        job_id: FromPath[UUID],
        data: JSONBody[wire.DispatchRequest],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.DispatchDecision:
        decision = await service.dispatch_auto(session, principal, job_id, dry_run=data.dry_run)
        await session.commit()
        return decision

    @post(
        "/{job_id:uuid}/assign",
        operation_id="assignJob",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="Manual dispatch by a supervisor (hard filters still apply)",
    )
    async def assign(
        self,
        job_id: FromPath[UUID],
        data: JSONBody[wire.Assign],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.JobDetail:
        job = await service.assign_manually(session, principal, job_id, data.technician_id)
        await session.commit()
        return job

    @post(
        "/{job_id:uuid}/grab",
        operation_id="grabJob",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="A technician takes an open job; of two grabs exactly one wins",
    )
    async def grab(
        self, job_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.JobDetail:
        job = await service.grab(session, principal, job_id)
        await session.commit()
        return job

    @post(
        "/{job_id:uuid}/steps/{step:str}",
        operation_id="jobStep",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="One lifecycle step: accept, refuse, schedule, arrive, complete, approve, send_back, hold, ...",
    )
    async def step(
        self,
        job_id: FromPath[UUID],
        step: FromPath[StepName],
        data: JSONBody[wire.Transition],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.JobDetail:
        job = await service.transition(session, principal, job_id, step, data, received_at=datetime.now(UTC))
        await session.commit()
        return job

    @post(
        "/{job_id:uuid}/code",
        operation_id="enterJobCode",
        status_code=200,
        responses=problems(401, 403, 404, 409, 410, 423),
        summary="The customer's one-time code, as the technician typed it",
    )
    async def enter_code(
        self,
        job_id: FromPath[UUID],
        data: JSONBody[wire.CodeEntry],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.JobDetail:
        job = await service.enter_code(session, principal, job_id, data, received_at=datetime.now(UTC))
        await session.commit()
        return job

    @post(
        "/{job_id:uuid}/code/resend",
        operation_id="resendJobCode",
        status_code=204,
        responses=problems(401, 403, 404, 409),
        summary="Send the customer a new code (unlocks a locked one)",
    )
    async def resend_code(
        self, job_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> None:
        await service.resend_code(session, principal, job_id)
        await session.commit()


class TechnicianController(Controller):
    path = "/v1/technicians"
    tags = ["jobs"]

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
    ) -> None:
        await service.set_profile(session, principal, user_id, data)
        await session.commit()
