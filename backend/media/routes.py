"""HTTP routes of photos: upload (raw bytes, idempotent by the phone's id), read one, list a job's, fetch the bytes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, FromQuery, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.bodies import body_chunks
from backend.coordinates import answer_in
from backend.errors import problems
from backend.limits import Call, UserConcurrency
from backend.media import service
from backend.media.images import CONTENT_TYPES
from backend.media.storage import PhotoStore, local_store
from backend.settings import Settings
from mobile_contract.base import SINGLE_LINE
from mobile_contract.location import CrsName
from mobile_contract.media import PhotoPage, PhotoView


def provide_photo_store(state: State) -> PhotoStore:
    settings: Settings = state.settings
    return local_store(settings.photo_dir)


@dataclass
class _ImageUpload(Operation):
    """The upload's body is raw image bytes, which Litestar cannot infer from a handler that streams them."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        self.request_body = RequestBody(
            content={media_type: OpenAPIMediaType(schema=binary) for media_type in sorted(set(CONTENT_TYPES.values()))},
            description="The image bytes. The type is read from the bytes; Content-Type is recorded, never trusted.",
            required=True,
        )


@dataclass
class _ImageContent(Operation):
    """The bytes are served with the type sniffed at upload, one of the image types, which a single `media_type`
    on the decorator cannot say."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        responses = dict(self.responses or {})
        responses["200"] = OpenAPIResponse(
            description="The photo's bytes, as stored",
            content={media_type: OpenAPIMediaType(schema=binary) for media_type in sorted(set(CONTENT_TYPES.values()))},
        )
        self.responses = responses


class PhotoController(Controller):
    path = "/v1"
    tags = ["photos"]
    dependencies = {"photo_store": Provide(provide_photo_store, sync_to_thread=False)}

    @put(
        "/photos/{photo_id:uuid}",
        operation_id="uploadPhoto",
        operation_class=_ImageUpload,
        # The app-wide 1 MiB cap is for JSON. This route counts the bytes itself against GROUNDWORK_MAX_PHOTO_BYTES
        # (a setting, read at start-up, which a decorator argument could not follow) and stops reading past it.
        request_max_body_size=None,
        status_code=201,
        responses={
            200: ResponseSpec(data_container=PhotoView, description="A repeat of the same id and bytes: as stored"),
            **problems(400, 401, 403, 404, 409, 413, 415, 429),
        },
        summary="Upload a job's photo (raw bytes); a repeat with the same bytes answers 200",
        description=(
            "201 when stored, 200 for a repeat of the same id and bytes, 409 `idempotency_conflict` for the same id "
            "with other bytes. 413 `body_too_large` past the size cap, 415 `unsupported_media_type` when the bytes "
            "are not a JPEG, PNG or WebP image, 422 `corrupt_image` when they cannot be decoded whole. A photo "
            "taken outside the job's window, far from the site or seen before with another job is stored all the "
            "same, with `flags` for the reviewer."
        ),
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        photo_id: FromPath[UUID],
        job_id: FromQuery[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        photo_store: NamedDependency[PhotoStore],
        limits: NamedDependency[UserConcurrency],
        crs: FromQuery[CrsName] = CrsName.WGS84,
    ) -> Response[PhotoView]:
        received_at = datetime.now(UTC)
        with limits.hold(Call.PHOTO_UPLOAD, principal.user_id):
            photo, created = await service.store_photo(
                session,
                photo_store,
                principal,
                photo_id,
                job_id,
                body_chunks(request),
                declared_length=request.content_length,
                declared_content_type=request.headers.get("content-type"),
                max_bytes=settings.max_photo_bytes,
                received_at=received_at,
            )
            await session.commit()
        return Response(answer_in(photo, crs), status_code=201 if created else 200)

    @get("/photos/{photo_id:uuid}", operation_id="getPhoto", responses=problems(401, 404), summary="A photo's details")
    async def get_photo(
        self,
        photo_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: FromQuery[CrsName] = CrsName.WGS84,
    ) -> PhotoView:
        return answer_in(await service.get_photo(session, principal, photo_id), crs)

    @get(
        "/photos/{photo_id:uuid}/content",
        operation_id="getPhotoContent",
        responses=problems(401, 404),
        summary="The photo's bytes, with the sniffed content type",
        operation_class=_ImageContent,
    )
    async def get_content(
        self,
        photo_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        photo_store: NamedDependency[PhotoStore],
    ) -> Response[bytes]:
        data, content_type = await service.photo_content(session, photo_store, principal, photo_id)
        # Content-addressed bytes never change: a reviewer's console may cache them for good.
        headers = {"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
        return Response(data, media_type=content_type, headers=headers)

    @get(
        "/jobs/{job_id:uuid}/photos",
        operation_id="listJobPhotos",
        responses=problems(400, 401, 404),
        summary="A job's photos in upload order, with flags (its assignee and reviewers)",
    )
    async def list_job_photos(
        self,
        job_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
        crs: FromQuery[CrsName] = CrsName.WGS84,
    ) -> PhotoPage:
        page = await service.list_job_photos(session, principal, job_id, limit=limit, cursor=cursor)
        return answer_in(page, crs)
