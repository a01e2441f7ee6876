"""The pure parts: what is read from odd EXIF (garbled tags lose only themselves), and the disk store's promises
(atomic, idempotent, no key outside its root)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from backend.media.images import inspect_image
from backend.media.storage import LocalDiskStore, photo_key
from tests.media.helpers import exif, jpeg, scene


def test_exif_claims_are_read_with_their_offset_and_hemispheres() -> None:
    claims = exif(taken=datetime(2026, 11, 24, 10, 30, 5), offset="-03:30", at=(-33.8688, -151.2093))  # noqa: DTZ001
    read = inspect_image(jpeg(scene(1, 320, 240), exif_block=claims)).exif
    assert read.local_time == datetime(2026, 11, 24, 10, 30, 5)  # noqa: DTZ001 - as the camera wrote it
    assert read.utc_offset_min == -210
    assert read.taken_at is not None
    assert read.taken_at.isoformat() == "2026-11-24T14:00:05+00:00"
    assert read.lat == pytest.approx(-33.8688, abs=1e-6)
    assert read.lon == pytest.approx(-151.2093, abs=1e-6)


def test_garbled_exif_tags_are_absent_not_fatal() -> None:
    block = Image.Exif()
    details = block.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "0000:00:00 00:00:00"  # how some cameras write "unknown"
    details[ExifTags.Base.OffsetTimeOriginal] = "+25:00"
    gps = block.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (IFDRational(31, 0), IFDRational(0), IFDRational(0))  # a zero denominator
    gps[ExifTags.GPS.GPSLongitude] = (121.0, 28.0, 25.0)  # and no hemisphere
    inspection = inspect_image(jpeg(scene(2, 320, 240), exif_block=block))
    assert inspection.exif.local_time is None
    assert inspection.exif.utc_offset_min is None
    assert inspection.exif.lat is None
    assert inspection.exif.lon is None
    assert inspection.content_type == "image/jpeg"  # the photo itself is fine


def test_a_rotated_copy_hashes_like_the_upright_original() -> None:
    picture = scene(3, 640, 480)
    upright = inspect_image(jpeg(picture)).phash
    # The same picture stored sideways with an orientation tag, as phones do: shown upright, hashed upright.
    block = Image.Exif()
    block[ExifTags.Base.Orientation] = 6
    sideways = inspect_image(jpeg(picture.transpose(Image.Transpose.ROTATE_90), exif_block=block)).phash
    assert (upright ^ sideways).bit_count() <= 2


def _files(root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()]


async def test_the_disk_store_writes_once_atomically_and_only_under_its_root(tmp_path: Path) -> None:
    store = LocalDiskStore(tmp_path)
    key = photo_key("7f1c6a52-3a8e-4a6e-9d2b-1b2f3c4d5e6f", "ab" + "0" * 62)
    assert not await store.exists(key)
    await store.put(key, b"first")
    await store.put(key, b"first")  # a retry: same key, same bytes, nothing changes
    assert await store.get(key) == b"first"
    assert await store.exists(key)
    assert _files(tmp_path) == ["7f1c6a52-3a8e-4a6e-9d2b-1b2f3c4d5e6f/ab/ab" + "0" * 62]  # no temp file left
    for bad in ("../../etc/passwd", "/etc/passwd", "tenant/" + "0" * 64):
        with pytest.raises(ValueError, match="not a photo key"):
            await store.put(bad, b"x")
