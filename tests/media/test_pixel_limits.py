"""Pixel limits, judged from the header before anything is decoded: sizes generated for every format we take,
with headers that claim more than the bytes hold (bombs) and real images of every shape near the limits."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from PIL import Image

from backend.errors import DomainError
from backend.media import images
from backend.media.images import MAX_PIXELS, MAX_PIXELS_FULL_DECODE, MAX_SIDE, inspect_image
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from tests.factories import Factory
from tests.media.helpers import make_job, upload

Client = AsyncTestClient  # type: ignore[type-arg]


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels over 64 bytes of data: cheap to send."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is rewritten to claim `width` x `height`."""
    out = io.BytesIO()
    Image.new("L", (16, 16), 128).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A small real lossless WebP whose VP8L header is rewritten to claim `width` x `height` (at most 16384)."""
    out = io.BytesIO()
    Image.new("L", (16, 16), 128).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.index(b"VP8L") + 8  # chunk tag, chunk size, then the 0x2f signature
    assert data[at] == 0x2F
    (bits,) = struct.unpack_from("<I", data, at + 1)
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, at + 1, bits)
    return bytes(data)


FORGERS = {"PNG": (png_claiming, 70_000), "JPEG": (jpeg_claiming, 65_535), "WEBP": (webp_claiming, 16_384)}


def _over_limit(fmt: str, width: int, height: int) -> bool:
    total = MAX_PIXELS if fmt == "JPEG" else MAX_PIXELS_FULL_DECODE
    return width > MAX_SIDE or height > MAX_SIDE or width * height > total


@st.composite
def claims(draw: st.DrawFn) -> tuple[str, int, int]:
    fmt = draw(st.sampled_from(sorted(FORGERS)))
    top = FORGERS[fmt][1]
    side = st.one_of(
        st.integers(1, top),
        st.sampled_from([MAX_SIDE - 1, MAX_SIDE, MAX_SIDE + 1, 4_000, 4_001, 7_071, 7_072, 9_000]).filter(
            lambda v: v <= top
        ),
    )
    return fmt, draw(side), draw(side)


@given(claims())
@settings(max_examples=80, deadline=None)
def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(claim: tuple[str, int, int]) -> None:
    fmt, width, height = claim
    data = FORGERS[fmt][0](width, height)
    over = _over_limit(fmt, width, height)
    if over:
        # The data behind the header would never decode: refused on the header alone, so never decoded.
        with pytest.raises(DomainError) as refused:
            inspect_image(data)
        assert refused.value.code is ErrorCode.IMAGE_TOO_LARGE
        assert refused.value.status == 413
        assert refused.value.extra["max_width"] == MAX_SIDE
    else:
        code = None
        try:
            inspect_image(data)
        except DomainError as exc:
            code = exc.code
        assert code is not ErrorCode.IMAGE_TOO_LARGE  # too few bytes for the claim: corrupt, not too large


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize(("width", "height"), [(MAX_SIDE + 1, 2), (2, MAX_SIDE + 1), (640, 480), (MAX_SIDE, 8)])
def test_real_images_of_every_format_near_the_side_limit(fmt: str, width: int, height: int) -> None:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, fmt)
    if width > MAX_SIDE or height > MAX_SIDE:
        with pytest.raises(DomainError) as refused:
            inspect_image(out.getvalue())
        assert refused.value.code is ErrorCode.IMAGE_TOO_LARGE
    else:
        assert inspect_image(out.getvalue()).width == width


def test_pillows_own_bomb_limit_is_ours() -> None:
    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS


async def test_a_blank_81_megapixel_png_is_refused_with_a_clear_problem(factory: Factory, media_client: Client) -> None:
    """The case of issue 8: 79 KB of PNG, 81 megapixels, which cost 152 MB to decode."""
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    job = await make_job(factory, tenant, tech)
    out = io.BytesIO()
    Image.new("1", (9_000, 9_000)).save(out, "PNG", optimize=True)
    assert len(out.getvalue()) < 200_000
    response = await upload(media_client, tech, job, out.getvalue(), content_type="image/png")
    assert response.status_code == 413, response.text
    problem = response.json()
    assert problem["code"] == "image_too_large"
    assert problem["max_pixels"] == MAX_PIXELS_FULL_DECODE
    assert "9000x9000" in problem["detail"]
    assert await factory.count("SELECT count(*) FROM photos WHERE tenant_id = :t", t=tenant) == 0
