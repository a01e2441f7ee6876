"""Finding a near-identical earlier photo without scanning every stored hash: multi-index hashing.

Two photos show the same picture when their 64-bit perceptual hashes differ in at most `THRESHOLD` bits. A
re-encoded (JPEG quality 60) and halved copy differs by 0-2 bits in our tests; another shot of the same scene
from a step aside by 16-20, an unrelated picture by 22 or more. 8 leaves room on both sides.

PostgreSQL has no index for Hamming distance, so the hash is also stored in `CHUNKS` = 3 disjoint chunks, each
with a btree index on (tenant_id, chunk). Bit i goes to chunk i % 3 (22, 21 and 21 bits).

The guarantee, by pigeonhole: the chunks' distances add up to the hashes' distance, so two hashes within 8 bits
have a chunk within floor(8 / 3) = 2 bits. A lookup therefore asks each chunk's index for every value within 2
bits of the new photo's chunk (1 + 22 + 231 = 254 values for the 22-bit chunk, 232 for the others), a BitmapOr
of three index scans, and then checks the true distance with `bit_count` on the candidates only. Every stored
hash within 8 bits is among the candidates: no false negatives. The radius follows `THRESHOLD`, so changing the
threshold keeps the guarantee (at more probes).

Why three chunks: nine 7-bit chunks would guarantee an exact chunk match (9 probes), but each probe matches
1/128 of the tenant's photos (~7,000 candidates in 100,000); four 16-bit chunks at radius 2 take 548 probes
matching ~1/65,536 each (~850 candidates); three ~21-bit chunks take 718 probes matching ~1/2,700,000 each
(~25 candidates in 100,000, ~250 in a million). Probes are cheap index descents; candidates are heap reads.
Interleaving the bits matters because phash bits run from low to high frequency and the lowest are the least
balanced: spread over the chunks, no chunk has a few values that half the photos share.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.media.images import Inspection
from mobile_contract.media import PhotoSource

THRESHOLD = 8
CHUNKS = 3
_BITS = 64
WIDTHS = tuple(len(range(chunk, _BITS, CHUNKS)) for chunk in range(CHUNKS))  # (22, 21, 21)


def chunks(phash: int) -> tuple[int, ...]:
    """The hash's bits dealt into `CHUNKS` integers: bit i of the hash is bit i // 3 of chunk i % 3."""
    values = [0] * CHUNKS
    for bit in range(_BITS):
        if phash >> bit & 1:
            values[bit % CHUNKS] |= 1 << (bit // CHUNKS)
    return tuple(values)


def within(value: int, width: int, radius: int) -> Iterator[int]:
    """Every `width`-bit value at Hamming distance <= `radius` from `value`, `value` itself first."""
    for distance in range(radius + 1):
        for positions in combinations(range(width), distance):
            flipped = value
            for position in positions:
                flipped ^= 1 << position
            yield flipped


def probes(phash: int, threshold: int = THRESHOLD) -> list[list[int]]:
    """Per chunk, the values an index lookup must ask for so that no hash within `threshold` is missed."""
    radius = threshold // CHUNKS
    return [list(within(value, width, radius)) for value, width in zip(chunks(phash), WIDTHS, strict=True)]


def to_signed(phash: int) -> int:
    """The unsigned 64-bit hash as PostgreSQL's signed bigint (same bits)."""
    return phash - (1 << 64) if phash >= 1 << 63 else phash


def to_unsigned(stored: int) -> int:
    return stored & ((1 << 64) - 1)


def hamming(a: int, b: int) -> int:
    return (to_unsigned(a) ^ to_unsigned(b)).bit_count()


# -- the lookup ---------------------------------------------------------------------------------------------------

EARLIEST_MATCH = text(
    """
    SELECT id, job_id FROM photos
    WHERE tenant_id = :tenant_id
      AND (hash_c0 = ANY(:c0) OR hash_c1 = ANY(:c1) OR hash_c2 = ANY(:c2) OR sha256 = :sha256)
      AND (bit_count((phash # :phash)::bit(64)) <= :threshold OR sha256 = :sha256)
    ORDER BY received_at, id
    LIMIT 1
    """
)


def match_params(tenant_id: UUID, inspection: Inspection) -> dict[str, Any]:
    """Parameters of the reuse lookup. A low-detail image probes no chunk (its hash is noise): only its bytes."""
    c0, c1, c2 = ([], [], []) if inspection.low_detail else probes(inspection.phash)
    return {
        "tenant_id": tenant_id,
        "c0": c0,
        "c1": c1,
        "c2": c2,
        "sha256": inspection.sha256,
        "phash": to_signed(inspection.phash),
        "threshold": THRESHOLD,
    }


async def first_sighting(session: AsyncSession, tenant_id: UUID, inspection: Inspection) -> PhotoSource | None:
    """The first photo of the tenant showing the same picture: where the picture was first seen.

    Comparing with the first sighting, not the nearest, keeps the original's own job in the clear: a picture
    first sent for job A, reused for B, then sent for A again is a duplicate on A, not a reuse of B's copy.
    """
    row = (await session.execute(EARLIEST_MATCH, match_params(tenant_id, inspection))).one_or_none()
    return PhotoSource(photo_id=row.id, job_id=row.job_id) if row is not None else None
