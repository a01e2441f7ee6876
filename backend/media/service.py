"""Photo rules: storing an upload exactly once, judging it against its job, finding reuse, and reading photos back.

An upload is judged, never refused for what it shows: a photo taken outside the job's window, far from the site,
or seen before with another job is stored all the same, with flags for the reviewer (evidence is never thrown
away). Only bytes that are not a whole image, or too many of them, are refused, with a problem the phone can act on.

Who may see a job, and where its site is, are the jobs domain's (`backend.jobs.reads`); media tells the jobs
domain when a stored photo proves work (`add_proof_photo`), so jobs never imports media.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import anyio.to_thread
from sqlalchemy import ColumnElement, func, not_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.scopes import scope_params
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.jobs.models import Job
from backend.jobs.reads import SITE_LAT, SITE_LON, add_proof_photo, job_visible_to
from backend.media import similar
from backend.media.images import ExifClaims, inspect_image
from backend.media.models import Photo
from backend.media.storage import PhotoStore, photo_key
from backend.paging import decode_cursor, encode_cursor
from geo.distance import haversine_m
from mobile_contract import media as wire
from mobile_contract.base import AwareDatetime
from mobile_contract.errors import ErrorCode
from mobile_contract.location import Point
from sync.feed import Change, record_changes

# A photo may be taken a little before the job's window opens or after it closes (arriving early, a last shot on
# the way out); past an hour either side it is worth a look.
WINDOW_MARGIN = timedelta(hours=1)
# Phone clocks drift; minutes of drift are not a photo from the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
# GPS in EXIF is often a stale or coarse fix; within the geofence or 200 m of the site is close enough.
MIN_FAR_M = 200.0
# An EXIF time without OffsetTimeOriginal is a wall clock in an unknown zone. UTC offsets run from -12:00 to
# +14:00, so the instant lies somewhere in [wall clock - 14 h, wall clock + 12 h], and only a time outside the
# window for every zone is flagged. Jobs carry no time zone to narrow this down: wide, but never a false flag.
_NAIVE_EARLIEST = timedelta(hours=14)
_NAIVE_LATEST = timedelta(hours=12)
# Photos that prove nothing new for the job: the completion policy does not count them.
_NOT_PROOF = [wire.PhotoFlag.REUSED_PHOTO.value, wire.PhotoFlag.DUPLICATE_IN_JOB.value]


@dataclass(frozen=True, slots=True)
class JobPlace:
    """What a photo is judged against: the job's site, its geofence and its time window."""

    id: UUID
    assignee_id: UUID | None
    lat: float
    lon: float
    geofence_radius_m: float
    window_start: datetime
    window_end: datetime


# -- judging -----------------------------------------------------------------------------------------------------


def judge_exif(exif: ExifClaims, job: JobPlace, received_at: datetime) -> tuple[list[wire.PhotoFlag], float | None]:
    """Flags for what the camera claims against the job's window and site, and the distance from the site."""
    flags: list[wire.PhotoFlag] = []
    if exif.local_time is None:
        flags.append(wire.PhotoFlag.NO_EXIF_TIME)
    else:
        taken_at = exif.taken_at
        if taken_at is not None:
            earliest = latest = taken_at
        else:
            as_utc = exif.local_time.replace(tzinfo=UTC)
            earliest, latest = as_utc - _NAIVE_EARLIEST, as_utc + _NAIVE_LATEST
        if earliest > received_at + FUTURE_TOLERANCE:
            flags.append(wire.PhotoFlag.EXIF_TIME_IN_FUTURE)
        if latest < job.window_start - WINDOW_MARGIN or earliest > job.window_end + WINDOW_MARGIN:
            flags.append(wire.PhotoFlag.EXIF_TIME_OUTSIDE_WINDOW)
    distance_m = None
    if exif.lat is None or exif.lon is None:
        flags.append(wire.PhotoFlag.NO_EXIF_LOCATION)
    else:
        distance_m = haversine_m(exif.lat, exif.lon, job.lat, job.lon)
        if distance_m > max(job.geofence_radius_m, MIN_FAR_M):
            flags.append(wire.PhotoFlag.EXIF_LOCATION_FAR)
    return flags, distance_m


# -- storing -----------------------------------------------------------------------------------------------------


async def read_body(chunks: AsyncIterator[bytes], max_bytes: int, declared_length: int | None) -> bytes:
    """The body, read chunk by chunk and refused as soon as it passes `max_bytes`: a 200 MB upload costs us at most
    `max_bytes` plus one chunk of memory, and a declared Content-Length over the cap costs nothing at all."""
    if declared_length is not None and declared_length > max_bytes:
        raise _too_large(max_bytes)
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(buffer)


def _too_large(max_bytes: int) -> DomainError:
    return DomainError(ErrorCode.BODY_TOO_LARGE, f"A photo may be at most {max_bytes} bytes.", max_bytes=max_bytes)


async def store_photo(
    session: AsyncSession,
    store: PhotoStore,
    principal: Principal,
    photo_id: UUID,
    job_id: UUID,
    body: AsyncIterator[bytes],
    *,
    declared_length: int | None,
    declared_content_type: str | None,
    max_bytes: int,
    received_at: datetime,
) -> tuple[wire.PhotoView, bool]:
    """Store an upload once. Returns the photo and whether it was created (False: a replay of the same bytes).

    Who may upload is settled before the body is read, and no database connection is held while it arrives
    (a phone on a slow network takes its time). The bytes reach the store before the row is written.
    """
    existing = await session.scalar(select(Photo).where(Photo.tenant_id == principal.tenant_id, Photo.id == photo_id))
    if existing is not None:
        if (existing.job_id, existing.user_id) != (job_id, principal.user_id):
            raise _id_taken()
        stored = _view(existing)
        await session.rollback()
        return _replayed(stored, await read_body(body, max_bytes, declared_length))
    job = await _job_for_upload(session, principal, job_id)
    await session.rollback()  # hand the connection back while the body streams in

    data = await read_body(body, max_bytes, declared_length)
    inspection = await anyio.to_thread.run_sync(inspect_image, data)
    flags, distance_m = judge_exif(inspection.exif, job, received_at)
    if inspection.low_detail:
        flags.append(wire.PhotoFlag.LOW_DETAIL)
    first_seen = await similar.first_sighting(session, principal.tenant_id, inspection)
    reused_from = duplicate_of = None
    if first_seen is not None and first_seen.job_id != job_id:
        flags.append(wire.PhotoFlag.REUSED_PHOTO)
        reused_from = first_seen
    elif first_seen is not None:
        flags.append(wire.PhotoFlag.DUPLICATE_IN_JOB)
        duplicate_of = first_seen

    key = photo_key(principal.tenant_id, inspection.sha256)
    await store.put(key, data)
    chunks: tuple[int | None, ...] = (None,) * similar.CHUNKS
    if not inspection.low_detail:
        chunks = similar.chunks(inspection.phash)
    inserted = await session.scalar(
        insert(Photo)
        .values(
            id=photo_id,
            tenant_id=principal.tenant_id,
            job_id=job_id,
            user_id=principal.user_id,
            storage_key=key,
            content_type=inspection.content_type,
            declared_content_type=declared_content_type[:255] if declared_content_type else None,
            size_bytes=len(data),
            width=inspection.width,
            height=inspection.height,
            sha256=inspection.sha256,
            phash=similar.to_signed(inspection.phash),
            hash_c0=chunks[0],
            hash_c1=chunks[1],
            hash_c2=chunks[2],
            exif_local_time=inspection.exif.local_time,
            exif_utc_offset_min=inspection.exif.utc_offset_min,
            exif_lat=inspection.exif.lat,
            exif_lon=inspection.exif.lon,
            exif_distance_m=distance_m,
            flags=[flag.value for flag in flags],
            reused_from_photo_id=reused_from.photo_id if reused_from else None,
            reused_from_job_id=reused_from.job_id if reused_from else None,
            duplicate_of_photo_id=duplicate_of.photo_id if duplicate_of else None,
            duplicate_of_job_id=duplicate_of.job_id if duplicate_of else None,
            received_at=received_at,
        )
        .on_conflict_do_nothing(index_elements=[Photo.tenant_id, Photo.id])
        .returning(Photo.id)
    )
    row = await session.scalar(
        select(Photo)
        .where(Photo.tenant_id == principal.tenant_id, Photo.id == photo_id)
        .execution_options(populate_existing=True)
    )
    assert row is not None  # inserted now, or by the request we raced
    if inserted is None:  # the same id arrived twice at once, and the other request stored it first
        if (row.job_id, row.user_id) != (job_id, principal.user_id):
            raise _id_taken()
        return _replayed(_view(row), data)
    if not any(flag.value in _NOT_PROOF for flag in flags):
        await add_proof_photo(session, principal.tenant_id, job_id)
    # The job's proof count changed: the technician's phone learns it on its next pull.
    await record_changes(session, principal.tenant_id, [Change(principal.user_id, "jobs", job_id)])
    return _view(row), True


def _replayed(stored: wire.PhotoView, data: bytes) -> tuple[wire.PhotoView, bool]:
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_CONFLICT, "This photo id was already used for other bytes; use a new id."
        )
    return stored, False


def _id_taken() -> DomainError:
    return DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, "This photo id was already used; use a new id.")


async def _job_for_upload(session: AsyncSession, principal: Principal, job_id: UUID) -> JobPlace:
    row = (
        await session.execute(
            select(
                Job.id,
                Job.assignee_id,
                SITE_LAT,
                SITE_LON,
                Job.geofence_radius_m,
                Job.window_start,
                Job.window_end,
            ).where(Job.id == job_id, Job.tenant_id == principal.tenant_id, job_visible_to(principal)),
            scope_params(principal),
        )
    ).one_or_none()
    if row is None:
        raise not_found("job")
    if row.assignee_id != principal.user_id:
        raise forbidden("Only the job's assignee adds photos to it.")
    return JobPlace(
        id=row.id,
        assignee_id=row.assignee_id,
        lat=row.lat,
        lon=row.lon,
        geofence_radius_m=row.geofence_radius_m,
        window_start=row.window_start,
        window_end=row.window_end,
    )


# -- reading -----------------------------------------------------------------------------------------------------


def _view(photo: Photo) -> wire.PhotoView:
    exif = ExifClaims(local_time=photo.exif_local_time, utc_offset_min=photo.exif_utc_offset_min)
    location = None
    if photo.exif_lat is not None and photo.exif_lon is not None:
        location = Point(lat=round(photo.exif_lat, 7), lon=round(photo.exif_lon, 7))  # ~1 cm; more is noise
    return wire.PhotoView(
        id=photo.id,
        job_id=photo.job_id,
        user_id=photo.user_id,
        content_type=photo.content_type,
        declared_content_type=photo.declared_content_type,
        size_bytes=photo.size_bytes,
        width=photo.width,
        height=photo.height,
        sha256=photo.sha256,
        phash=f"{similar.to_unsigned(photo.phash):016x}",
        exif=wire.PhotoExif(
            taken_at=exif.taken_at,
            local_time=photo.exif_local_time.isoformat() if photo.exif_local_time else None,
            utc_offset_min=photo.exif_utc_offset_min,
            location=location,
            distance_m=round(photo.exif_distance_m, 1) if photo.exif_distance_m is not None else None,
        ),
        flags=[wire.PhotoFlag(flag) for flag in photo.flags],
        reused_from=_source(photo.reused_from_photo_id, photo.reused_from_job_id),
        duplicate_of=_source(photo.duplicate_of_photo_id, photo.duplicate_of_job_id),
        received_at=photo.received_at,
        created_at=photo.created_at,
    )


def _source(photo_id: UUID | None, job_id: UUID | None) -> wire.PhotoSource | None:
    return wire.PhotoSource(photo_id=photo_id, job_id=job_id) if photo_id and job_id else None


async def _visible_photo(session: AsyncSession, principal: Principal, photo_id: UUID) -> Photo:
    """A photo for its uploader, and for whoever may see its job (the jobs domain's rule)."""
    photo = await session.scalar(
        select(Photo)
        .join(Job, (Job.id == Photo.job_id) & (Job.tenant_id == Photo.tenant_id))
        .where(
            Photo.id == photo_id,
            Photo.tenant_id == principal.tenant_id,
            (Photo.user_id == principal.user_id) | job_visible_to(principal),
        ),
        scope_params(principal),
    )
    if photo is None:
        raise not_found("photo")
    return photo


async def get_photo(session: AsyncSession, principal: Principal, photo_id: UUID) -> wire.PhotoView:
    """One photo with its flags: for its uploader, the job's assignee and the job's reviewers."""
    return _view(await _visible_photo(session, principal, photo_id))


async def photo_content(
    session: AsyncSession, store: PhotoStore, principal: Principal, photo_id: UUID
) -> tuple[bytes, str]:
    """The stored bytes and their sniffed content type, for whoever may see the photo."""
    photo = await _visible_photo(session, principal, photo_id)
    key, content_type = photo.storage_key, photo.content_type
    await session.rollback()  # no connection held while the file is read
    return await store.get(key), content_type


async def list_job_photos(
    session: AsyncSession, principal: Principal, job_id: UUID, *, limit: int, cursor: str | None
) -> wire.PhotoPage:
    """A job's photos in upload order, for its assignee and its reviewers."""
    visible = await session.scalar(
        select(Job.id).where(Job.id == job_id, Job.tenant_id == principal.tenant_id, job_visible_to(principal)),
        scope_params(principal),
    )
    if visible is None:
        raise not_found("job")
    statement = select(Photo).where(Photo.tenant_id == principal.tenant_id, Photo.job_id == job_id)
    if cursor:
        at, after = decode_cursor(cursor, tuple[AwareDatetime, UUID])
        statement = statement.where(tuple_(Photo.received_at, Photo.id) > tuple_(at, after))
    rows = list(await session.scalars(statement.order_by(Photo.received_at, Photo.id).limit(limit + 1)))
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].received_at, page[-1].id) if len(rows) > limit else None
    return wire.PhotoPage(items=[_view(photo) for photo in page], next_cursor=next_cursor)


async def photos_of_job(session: AsyncSession, tenant_id: UUID, job_id: UUID) -> list[wire.PhotoView]:
    """Every photo of a job in upload order, flags included (for the jobs domain's review)."""
    photos = await session.scalars(
        select(Photo).where(Photo.tenant_id == tenant_id, Photo.job_id == job_id).order_by(Photo.received_at, Photo.id)
    )
    return [_view(photo) for photo in photos]


def _counts_as_proof() -> ColumnElement[bool]:
    reused_or_duplicate: ColumnElement[bool] = Photo.flags.overlap(_NOT_PROOF)
    return not_(reused_or_duplicate)


async def count_proof_photos(session: AsyncSession, tenant_id: UUID, job_id: UUID) -> int:
    """Photos that prove work on this job: not reused from another job, and not a second copy of one already
    uploaded for it (the same picture twice is one proof)."""
    count = await session.scalar(
        select(func.count()).where(Photo.tenant_id == tenant_id, Photo.job_id == job_id, _counts_as_proof())
    )
    return int(count or 0)


async def count_proof_photos_of_jobs(
    session: AsyncSession, tenant_id: UUID, job_ids: Sequence[UUID]
) -> dict[UUID, int]:
    """`count_proof_photos` for many jobs in one query (job lists); jobs without photos are absent."""
    if not job_ids:
        return {}
    rows = await session.execute(
        select(Photo.job_id, func.count())
        .where(Photo.tenant_id == tenant_id, Photo.job_id.in_(job_ids), _counts_as_proof())
        .group_by(Photo.job_id)
    )
    return {job_id: int(count) for job_id, count in rows}
