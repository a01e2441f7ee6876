"""What an uploaded image really is: its type (sniffed from the bytes), its pixels decoded whole, the time and
place its EXIF claims, and its perceptual hash. Pure and synchronous: the service runs it in a worker thread.

Decoding untrusted bytes is where the bad input of an upload shows: not an image (415), an image that cannot be
decoded whole (422), one with too many pixels to decode safely (413 `image_too_large`, judged from the header
before a pixel is decoded). Each becomes a DomainError here; EXIF that cannot be read is simply absent (the
photo is still kept, flagged for the reviewer).

HEIC (iPhones' default format) is refused with 415: Pillow cannot read it without pillow-heif, a binary wheel
bundling libheif and its codecs, which would be one more complex decoder facing untrusted bytes. The apps
control the format they upload, and JPEG is what they are asked to send.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import imagehash
import numpy
from PIL import ExifTags, Image, UnidentifiedImageError

from backend.errors import DomainError
from mobile_contract.errors import ErrorCode

Image.init()  # register every plugin now, not lazily in a request thread

# Pillow's format name -> the content type we record. MPO is how Pillow names a JPEG carrying extra pictures
# (depth maps, portrait mode): phones write those, and they are JPEGs for every viewer.
CONTENT_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_OPEN_AS = ["JPEG", "PNG", "WEBP"]  # the only parsers Pillow may try on upload bytes

# Pixel limits, checked from the header before a single pixel is decoded (bytes say little: a blank 81-megapixel
# PNG is 79 KB and decodes to 152 MB). A JPEG is decoded at 1/8 scale (see _DECODE_SIZE), so it may be as large as
# a 50-megapixel phone camera writes; PNG and WebP decode at full size, so they get the size of a 16-megapixel
# photo (64 MB as RGBA, the most any upload may cost). No phone side is longer than 10,000 pixels (a 200 MP
# sensor writes 16,320 x 12,240 only in its "full resolution" mode, which the apps do not use).
MAX_SIDE = 10_000
MAX_PIXELS = 50_000_000  # JPEG, decoded reduced
MAX_PIXELS_FULL_DECODE = 16_000_000  # PNG, WebP
# Pillow's own bomb check as a second wall, for any path that opens an image without ours: it warns past this and
# raises past twice this.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Decode JPEGs at 1/2..1/8 scale (libjpeg's DCT scaling) down to at least this size: the perceptual hash looks at
# 32x32 pixels, so full resolution only costs time (a 12 MP photo: ~40 ms instead of ~125 ms). Every entropy-coded
# byte is still read, so truncation is still caught. Other formats are reduced by the same factor after decoding,
# so a PNG copy of a JPEG hashes like the JPEG.
_DECODE_SIZE = 128
_HASH_SIDE = 32  # imagehash.phash's own working size (hash_size 8 x highfreq_factor 4)

# A 32x32 grey thumbnail with less spread than this (0-255 scale) is nearly uniform: a covered lens, a blank wall.
# Its perceptual hash is decided by noise and would "match" every other blank picture, so it is not matched.
LOW_DETAIL_STD = 4.0

# What Pillow raises on bytes that are not what they claim: damaged headers, truncated data, bad chunk lengths.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)

_EXIF_TIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")

# EXIF orientation -> the transpose that shows the picture upright (a rotated copy must hash like the original).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class ExifClaims:
    """When and where the camera says the picture was taken. Absent when the camera did not say, or garbled it."""

    local_time: datetime | None = None  # naive: the camera's wall clock as written
    utc_offset_min: int | None = None  # from OffsetTimeOriginal, when written
    lat: float | None = None
    lon: float | None = None
    orientation: int = 1

    @property
    def taken_at(self) -> datetime | None:
        """The instant, when the camera wrote its UTC offset; otherwise the wall clock names no instant."""
        if self.local_time is None or self.utc_offset_min is None:
            return None
        return (self.local_time - timedelta(minutes=self.utc_offset_min)).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Inspection:
    content_type: str
    width: int
    height: int
    sha256: str
    phash: int  # unsigned, 0 .. 2**64 - 1
    low_detail: bool
    exif: ExifClaims


def inspect_image(data: bytes) -> Inspection:
    """Sniff, fully decode and hash `data`; refuse what is not a whole JPEG, PNG or WebP image."""
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        raise DomainError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, "The body is empty: send the image bytes.")
    try:
        with Image.open(io.BytesIO(data), formats=_OPEN_AS) as probe:
            content_type = CONTENT_TYPES[probe.format or ""]
            width, height = probe.size  # from the header: nothing is decoded yet
            check_pixels(width, height, reduced=probe.format in ("JPEG", "MPO"))
            probe.verify()  # structural checks (PNG chunk CRCs); JPEG data is checked by the full decode below
        with Image.open(io.BytesIO(data), formats=_OPEN_AS) as image:
            exif = read_exif(image)
            if image.format in ("JPEG", "MPO"):
                image.draft("L", (_DECODE_SIZE, _DECODE_SIZE))
            image.load()  # decodes every byte: a truncated or damaged image fails here
            grey = image.convert("L")  # JPEGs are decoded straight to luma by draft(); a no-op for them
            scale = _reduce_factor(width, height)
            if image.format not in ("JPEG", "MPO") and scale > 1:
                grey = grey.reduce(scale)
            grey = grey.resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS)
    except UnidentifiedImageError as exc:
        raise DomainError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, _unsupported_detail(data)) from exc
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels() from exc
    except _DECODE_ERRORS as exc:
        raise DomainError(
            ErrorCode.CORRUPT_IMAGE, 422, f"The image cannot be decoded whole ({exc}); it may be truncated."
        ) from exc
    if exif.orientation in _UPRIGHT:
        grey = grey.transpose(_UPRIGHT[exif.orientation])
    low_detail = float(numpy.asarray(grey, dtype=numpy.float32).std()) < LOW_DETAIL_STD
    # Resizing a 32x32 image to 32x32 is a copy, so this is exactly imagehash.phash of the upright picture.
    phash = int(str(imagehash.phash(grey)), 16)
    return Inspection(
        content_type=content_type,
        width=width,
        height=height,
        sha256=digest,
        phash=phash,
        low_detail=low_detail,
        exif=exif,
    )


def check_pixels(width: int, height: int, *, reduced: bool) -> None:
    """Refuse, from the header's size alone, an image with a side or a total we will not decode. `reduced`: the
    format is decoded at reduced scale (JPEG), so it may have more pixels."""
    max_pixels = MAX_PIXELS if reduced else MAX_PIXELS_FULL_DECODE
    if width > MAX_SIDE or height > MAX_SIDE or width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)


def _too_many_pixels(width: int = 0, height: int = 0, max_pixels: int = MAX_PIXELS) -> DomainError:
    size = f" ({width}x{height})" if width else ""
    return DomainError(
        ErrorCode.IMAGE_TOO_LARGE,
        413,
        f"The image is too large{size}: at most {MAX_SIDE} pixels a side and {max_pixels // 1_000_000} MP in all for"
        " this format. Send it at the camera's normal resolution.",
        max_width=MAX_SIDE,
        max_height=MAX_SIDE,
        max_pixels=max_pixels,
    )


def _reduce_factor(width: int, height: int) -> int:
    """The factor libjpeg's draft mode picks for `_DECODE_SIZE`: the largest of 8, 4, 2, 1 that keeps both sides
    at least that long."""
    fits = min(width // _DECODE_SIZE, height // _DECODE_SIZE)
    return next(factor for factor in (8, 4, 2, 1) if factor <= max(fits, 1))


def _unsupported_detail(data: bytes) -> str:
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "HEIC/HEIF photos are not accepted: send the photo as JPEG."
    return "The body is not a JPEG, PNG or WebP image (the type is read from the bytes, not the Content-Type)."


# -- EXIF --------------------------------------------------------------------------------------------------------

_EXIF_READ_ERRORS = (*_DECODE_ERRORS, TypeError, ZeroDivisionError, UnicodeError)


def read_exif(image: Image.Image) -> ExifClaims:
    """Time, offset, GPS position and orientation, each read on its own: one garbled tag loses only itself."""
    try:
        exif = image.getexif()
        details = exif.get_ifd(ExifTags.IFD.Exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except _EXIF_READ_ERRORS:
        return ExifClaims()
    lat = _coordinate(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90.0)
    lon = _coordinate(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        # (0, 0) is what some phones write when they had no fix: a position in the Gulf of Guinea is no claim.
        lat = lon = None
    orientation = exif.get(ExifTags.Base.Orientation)
    return ExifClaims(
        local_time=_exif_time(details.get(ExifTags.Base.DateTimeOriginal)),
        utc_offset_min=_exif_offset(details.get(ExifTags.Base.OffsetTimeOriginal)),
        lat=lat,
        lon=lon,
        orientation=orientation if isinstance(orientation, int) and orientation in _UPRIGHT else 1,
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else None


def _exif_time(value: object) -> datetime | None:
    text = _text(value)
    match = _EXIF_TIME.match(text or "")  # unknown times are written as blanks or zeros: no match, or a ValueError
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - a wall clock, zone unknown
    except ValueError:
        return None


def _exif_offset(value: object) -> int | None:
    match = _EXIF_OFFSET.fullmatch(_text(value) or "")
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    offset = int(hours) * 60 + int(minutes)
    offset = -offset if sign == "-" else offset
    return offset if -12 * 60 <= offset <= 14 * 60 and int(minutes) < 60 else None


def _coordinate(value: object, ref: object, positive: str, negative: str, limit: float) -> float | None:
    hemisphere = _text(ref)
    if not isinstance(value, tuple) or not 1 <= len(value) <= 3 or hemisphere not in (positive, negative):
        return None
    try:
        parts = [float(part) for part in value]
    except _EXIF_READ_ERRORS:
        return None
    degrees = sum(part / 60.0**i for i, part in enumerate(parts))  # degrees, minutes, seconds
    if not math.isfinite(degrees) or any(part < 0 for part in parts) or degrees > limit:
        return None
    return -degrees if hemisphere == negative else degrees
