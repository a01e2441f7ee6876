"""The reuse lookup's guarantee (multi-index hashing finds every hash within the threshold) and its plan on
100,000 stored hashes: index scans combined with BitmapOr, never a scan of the table."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text

from backend.media import similar
from backend.media.images import ExifClaims, Inspection
from backend.media.similar import EARLIEST_MATCH, match_params
from backend.settings import Settings
from mobile_contract.auth import Role
from tests.factories import Factory
from tests.media.helpers import make_job

STORED = 100_000


def flip(value: int, bits: int, rnd: random.Random) -> int:
    for position in rnd.sample(range(64), bits):
        value ^= 1 << position
    return value


def test_chunks_deal_every_bit_once() -> None:
    assert similar.WIDTHS == (22, 21, 21)
    rnd = random.Random(1)
    for _ in range(1_000):
        phash = rnd.getrandbits(64)
        parts = similar.chunks(phash)
        assert sum(part.bit_count() for part in parts) == phash.bit_count()
        assert all(part < 1 << width for part, width in zip(parts, similar.WIDTHS, strict=True))
    assert [len(values) for values in similar.probes(0)] == [254, 232, 232]  # 1 + w + w(w-1)/2 each
    assert similar.to_unsigned(similar.to_signed(2**64 - 1)) == 2**64 - 1
    assert similar.to_signed(2**63) == -(2**63)


def test_every_hash_within_the_threshold_shares_a_probed_chunk() -> None:
    """The pigeonhole guarantee, checked: no hash within 8 bits escapes the index probes."""
    rnd = random.Random(2)
    for _ in range(3_000):
        phash = rnd.getrandbits(64)
        probes = [set(values) for values in similar.probes(phash)]
        near = flip(phash, rnd.randint(0, similar.THRESHOLD), rnd)
        assert any(part in probe for part, probe in zip(similar.chunks(near), probes, strict=True))


COLUMNS = [
    *("id", "tenant_id", "job_id", "user_id", "storage_key", "content_type", "size_bytes", "width", "height"),
    *("sha256", "phash", "hash_c0", "hash_c1", "hash_c2", "received_at"),
]


def _row(tenant: uuid.UUID, job: uuid.UUID, user: uuid.UUID, phash: int, at: datetime) -> tuple[Any, ...]:
    """A stored photo as COPY wants it: only what the lookup reads is realistic."""
    sha = f"{random.getrandbits(256):064x}"
    fixed = (uuid.uuid4(), tenant, job, user, f"{tenant}/{sha}", "image/jpeg", 1, 1, 1, sha)
    return (*fixed, similar.to_signed(phash), *similar.chunks(phash), at)


async def test_the_lookup_uses_the_chunk_indexes_on_100k_hashes(factory: Factory, settings: Settings) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN, login=False)
    job = await make_job(factory, tenant, tech)
    rnd = random.Random(3)
    target = rnd.getrandbits(64)
    start = datetime.now(UTC) - timedelta(days=30)
    records = [_row(tenant, job, tech.id, rnd.getrandbits(64), start) for _ in range(STORED - 2)]
    # Two planted neighbours: 9 bits away and earlier (not the same picture), then 8 bits away (the same picture).
    records.append(_row(tenant, job, tech.id, flip(target, 9, rnd), start))
    records.append(_row(tenant, job, tech.id, flip(target, 8, rnd), start + timedelta(hours=1)))
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.copy_records_to_table("photos", records=records, columns=COLUMNS)
        await connection.execute("ANALYZE photos")
    finally:
        await connection.close()

    inspection = Inspection(
        content_type="image/jpeg",
        width=1,
        height=1,
        sha256="0" * 64,
        phash=target,
        low_detail=False,
        exif=ExifClaims(),
    )
    params = match_params(tenant, inspection)
    async with factory.database.sessions() as session:
        found = (await session.execute(EARLIEST_MATCH, params)).one()
        plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {EARLIEST_MATCH.text}"), params))
    assert found.id == records[-1][0]  # the one 8 bits away; the 9-bit one is not the same picture
    assert found.job_id == job
    assert "BitmapOr" in plan, plan
    for index in ("ix_photos_tenant_hash_c0", "ix_photos_tenant_hash_c1", "ix_photos_tenant_hash_c2"):
        assert f"Bitmap Index Scan on {index}" in plan, plan
    assert "Seq Scan" not in plan, plan
