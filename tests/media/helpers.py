"""Real images made in the test (Pillow + numpy), EXIF included, and jobs written straight to the table.

Jobs are made through the Job model rather than the jobs API, so these tests depend only on the photo rules.
"""

from __future__ import annotations

import io
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy
from litestar.testing import AsyncTestClient
from PIL import ExifTags, Image, ImageDraw

from backend.jobs.models import Job
from geo.distance import destination
from geo.postgis import point_ewkt
from tests.factories import Factory, FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]
SITE = (31.2304, 121.4737)
_counter = itertools.count(1)


async def make_job(
    factory: Factory,
    tenant_id: UUID,
    assignee: FieldUser | None,
    *,
    site: tuple[float, float] = SITE,
    radius_m: float = 100.0,
    window: tuple[datetime, datetime] | None = None,
) -> UUID:
    now = datetime.now(UTC)
    start, end = window or (now - timedelta(hours=2), now + timedelta(hours=6))
    job_id = uuid.uuid4()
    async with factory.database.sessions() as session:
        session.add(
            Job(
                id=job_id,
                tenant_id=tenant_id,
                job_type="repair",
                customer_name="Chen Hui",
                customer_phone="+86 138 0000 1234",
                address="88 Huaihai Middle Rd",
                location=point_ewkt(site[0], site[1]),
                geofence_radius_m=radius_m,
                region="huangpu",
                window_start=start,
                window_end=end,
                policy={"code": False, "location": True, "photos": 1},
                status="arrived" if assignee else "new",
                assignee_id=assignee.id if assignee else None,
                request_hash=f"test-{next(_counter)}",
            )
        )
        await session.commit()
    return job_id


def scene(seed: int, width: int = 1600, height: int = 1200, *, shift: tuple[int, int] = (0, 0)) -> Image.Image:
    """A made-up site photo: a sky-to-ground gradient, a dozen shapes, sensor noise. `shift` moves the camera:
    the same scene, another shot of it."""
    rnd = random.Random(seed)
    top = numpy.array([rnd.randrange(256) for _ in range(3)])
    bottom = numpy.array([rnd.randrange(256) for _ in range(3)])
    ramp = numpy.linspace(0.0, 1.0, height)[:, None, None]
    pixels = numpy.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).astype(numpy.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rnd.randrange(-200, width) + shift[0], rnd.randrange(-200, height) + shift[1]
        box = (x0, y0, x0 + rnd.randrange(100, 700), y0 + rnd.randrange(100, 700))
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)(box, fill=colour)
    noise = numpy.random.default_rng(seed).integers(-20, 21, (height, width, 3))
    return Image.fromarray(numpy.clip(numpy.asarray(image, dtype=numpy.int16) + noise, 0, 255).astype(numpy.uint8))


def noise_image(width: int = 2000, height: int = 1500, seed: int = 0) -> Image.Image:
    """Noise compresses badly: at JPEG quality 92 this is ~3 MB, a phone photo's size."""
    return Image.fromarray(numpy.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=numpy.uint8))


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def exif(
    *, taken: datetime | None = None, offset: str | None = None, at: tuple[float, float] | None = None
) -> Image.Exif:
    """EXIF as a phone writes it: DateTimeOriginal (the wall clock), OffsetTimeOriginal, GPS in degrees-minutes-
    seconds with hemisphere letters."""
    block = Image.Exif()
    block[ExifTags.Base.Make] = "Groundwork test camera"
    details = block.get_ifd(ExifTags.IFD.Exif)
    if taken is not None:
        details[ExifTags.Base.DateTimeOriginal] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if offset is not None:
        details[ExifTags.Base.OffsetTimeOriginal] = offset
    if at is not None:
        gps = block.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N" if at[0] >= 0 else "S"
        gps[ExifTags.GPS.GPSLatitude] = _dms(at[0])
        gps[ExifTags.GPS.GPSLongitudeRef] = "E" if at[1] >= 0 else "W"
        gps[ExifTags.GPS.GPSLongitude] = _dms(at[1])
    return block


def shanghai_now(delta: timedelta = timedelta()) -> datetime:
    """A wall-clock time in UTC+8 (as a camera in Shanghai writes it), `delta` from now."""
    return (datetime.now(UTC) + delta + timedelta(hours=8)).replace(tzinfo=None)


def jpeg(image: Image.Image, *, quality: int = 90, exif_block: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": quality}
    if exif_block is not None:
        options["exif"] = exif_block
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def site_photo(seed: int, **claims: Any) -> bytes:
    """A JPEG of a scene, with EXIF claiming to be taken now at the site unless told otherwise."""
    claims.setdefault("taken", shanghai_now())
    claims.setdefault("offset", "+08:00")
    claims.setdefault("at", destination(*SITE, 45.0, 30.0))
    return jpeg(scene(seed), exif_block=exif(**claims))


def reencoded(data: bytes, *, quality: int = 60, scale: float = 0.5) -> bytes:
    """What a messaging app or an editor does to a photo: smaller, recompressed, EXIF dropped."""
    image = Image.open(io.BytesIO(data))
    smaller = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    return jpeg(smaller, quality=quality)


async def upload(
    client: Client,
    user: FieldUser,
    job_id: UUID,
    data: bytes,
    *,
    photo_id: UUID | None = None,
    content_type: str = "image/jpeg",
    crs: str | None = None,
) -> Any:
    params = {"job_id": str(job_id)}
    if crs:
        params["crs"] = crs
    return await client.put(
        f"/v1/photos/{photo_id or uuid.uuid4()}",
        content=data,
        params=params,
        headers={**user.headers, "Content-Type": content_type},
    )


async def photo_rows(factory: Factory, photo_id: UUID) -> int:
    return await factory.count("SELECT count(*) FROM photos WHERE id = :id", id=photo_id)
