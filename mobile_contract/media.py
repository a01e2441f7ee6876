"""Photos: proof of work a technician takes on site, uploaded as raw bytes and judged by the server.

`PUT /v1/photos/{id}?job_id=` takes the image bytes as the body (the id is generated on the phone, so a retried
upload is the same photo). The server sniffs the real type, reads EXIF time and GPS, and flags what a reviewer
should look at; a flagged photo is still stored: evidence is never thrown away.
"""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from mobile_contract.base import Response
from mobile_contract.location import Point


class PhotoFlag(enum.StrEnum):
    """What a reviewer should look at. Stable strings: phones and consoles may branch on them."""

    EXIF_TIME_OUTSIDE_WINDOW = "exif_time_outside_window"  # taken over an hour before or after the job's window
    EXIF_TIME_IN_FUTURE = "exif_time_in_future"  # the camera's time is after the upload reached us (+5 min)
    EXIF_LOCATION_FAR = "exif_location_far"  # GPS farther from the site than max(geofence radius, 200 m)
    NO_EXIF_TIME = "no_exif_time"  # no readable DateTimeOriginal: nothing says when it was taken
    NO_EXIF_LOCATION = "no_exif_location"  # no readable GPS position: nothing says where it was taken
    REUSED_PHOTO = "reused_photo"  # the same picture (even re-encoded or resized) came earlier with another job
    DUPLICATE_IN_JOB = "duplicate_in_job"  # the same picture was already uploaded for this job: counts once
    LOW_DETAIL = "low_detail"  # nearly uniform (lens covered, blank wall): shows little, cannot be matched


class PhotoSource(Response):
    """The earlier photo a flagged one matches, and the job it came with."""

    photo_id: UUID
    job_id: UUID


class PhotoExif(Response):
    """What the camera wrote. EXIF times have no zone unless the camera wrote an offset (OffsetTimeOriginal)."""

    taken_at: datetime | None  # UTC; only when the camera wrote its UTC offset
    local_time: str | None  # the camera's wall-clock time as written, ISO 8601 without offset
    utc_offset_min: int | None
    location: Point | None  # WGS-84 (GPS), or the `crs` asked for
    distance_m: float | None  # from the job's site


class PhotoView(Response):
    id: UUID
    job_id: UUID
    user_id: UUID  # who uploaded it
    content_type: str  # sniffed from the bytes: image/jpeg, image/png or image/webp
    declared_content_type: str | None  # the Content-Type header as sent; recorded, never trusted
    size_bytes: int
    width: int
    height: int
    sha256: str
    phash: str  # 64-bit perceptual hash, 16 hex digits
    exif: PhotoExif
    flags: list[PhotoFlag]
    reused_from: PhotoSource | None  # with flag reused_photo
    duplicate_of: PhotoSource | None  # with flag duplicate_in_job
    received_at: datetime
    created_at: datetime


class PhotoPage(Response):
    items: list[PhotoView]
    next_cursor: str | None
