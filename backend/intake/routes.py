"""HTTP routes of lead intake: imports (a file in, a job with its status and report out) and the review queue
of likely duplicates. Thin: read, call the service, commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.bodies import body_chunks
from backend.errors import DomainError, problems
from backend.intake import routing, service
from backend.leads.clock import CLOCK
from mobile_contract import intake as wire
from mobile_contract.assignment import Outcome
from mobile_contract.errors import ErrorCode


@dataclass
class _FileUpload(Operation):
    """The body is the file itself (CSV or JSON), which Litestar cannot infer from a handler that reads bytes."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)),
                # Any array: each item is judged as a row (see ImportRow), and an item that is no merchant is a
                # refused row in the report, not a refusal of the file (a partner's export is imported whole).
                "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.ARRAY, items=Schema())),
            },
            description=(
                "The merchants: CSV with a header line, or a JSON array (or NDJSON) of merchants shaped as ImportRow;"
                " an item that is not a merchant is refused alone and listed in the import's report."
            ),
            required=True,
        )


async def _read(request: Request[Any, Any, Any]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in body_chunks(request):
        size += len(chunk)
        if size > service.MAX_IMPORT_BYTES:
            raise DomainError(
                ErrorCode.BODY_TOO_LARGE, f"An import is at most {service.MAX_IMPORT_BYTES // 2**20} MiB; split it."
            )
        chunks.append(chunk)
    return b"".join(chunks)


_FORMATS = {
    "text/csv": wire.ImportFormat.CSV,
    "application/json": wire.ImportFormat.JSON,
    "application/x-ndjson": wire.ImportFormat.JSON,
}


class IntakeController(Controller):
    path = "/v1/intake"
    tags = ["intake"]

    @post(
        "/imports",
        operation_id="createMerchantImport",
        operation_class=_FileUpload,
        request_max_body_size=None,  # counted by _read against MAX_IMPORT_BYTES
        status_code=202,
        responses=problems(401, 403, 413, 415, 422),
        summary="Import merchants from a CSV or JSON file: queued, then judged row by row (ops, admin)",
        description=(
            "The format is the Content-Type's (`text/csv` or `application/json`) unless `format` says. 202 with the "
            "import; follow it at `GET /v1/intake/imports/{id}`. 422 `import_unreadable` when the file as a whole "
            "cannot be read; a bad row is refused alone and listed in the report."
        ),
    )
    async def create_import(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        format: FromQuery[wire.ImportFormat | None] = None,
    ) -> wire.MerchantImport:
        media_type, _ = request.content_type
        if media_type not in _FORMATS:
            raise DomainError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                f"Send the file as {' or '.join(sorted(_FORMATS))} (Content-Type), not {media_type or 'nothing'}.",
            )
        fmt = format or _FORMATS[media_type]
        answer = await service.create_import(session, principal, await _read(request), fmt)
        await session.commit()
        return answer

    @get(
        "/imports/{import_id:uuid}",
        operation_id="getMerchantImport",
        responses=problems(401, 403, 404),
        summary="An import's status, counts and report (refused rows and skipped duplicates)",
    )
    async def get_import(
        self, import_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.MerchantImport:
        return await service.get_import(session, principal, import_id)

    @get(
        "/duplicates",
        operation_id="listDuplicateReviews",
        responses=problems(401, 403, 422),
        summary="The review queue: pairs of merchants that are probably one shop (ops, admin, supervisors)",
    )
    async def list_reviews(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        status: FromQuery[wire.ReviewStatus] = wire.ReviewStatus.PENDING,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> wire.DuplicateReviewList:
        return await service.list_reviews(session, principal, status, limit)

    @post(
        "/duplicates/{review_id:uuid}/merge",
        operation_id="mergeDuplicate",
        status_code=200,
        responses=problems(401, 403, 404, 409, 422),
        summary="One shop: keep one merchant; every visit, work item, contact and history of the other moves to it",
    )
    async def merge(
        self,
        review_id: FromPath[UUID],
        data: JSONBody[wire.MergeRequest],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.MergeResult:
        answer = await service.merge(session, principal, review_id, data)
        await session.commit()
        return answer

    @post(
        "/duplicates/{review_id:uuid}/dismiss",
        operation_id="dismissDuplicate",
        status_code=204,
        responses=problems(401, 403, 404, 409),
        summary="Two shops after all: the pair leaves the queue",
    )
    async def dismiss(
        self, review_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> None:
        await service.dismiss(session, principal, review_id)
        await session.commit()

    @post(
        "/leads/{poi_id:uuid}/route",
        operation_id="routeLeadByRules",
        status_code=200,
        responses=problems(401, 403, 404),
        summary="Route a merchant by the assignment rules in force: a BD's private pool or the team's queue",
    )
    async def route_lead(
        self, poi_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> Outcome:
        outcome = await routing.assign_lead_for(session, principal, poi_id, CLOCK.now())
        await session.commit()
        return outcome
