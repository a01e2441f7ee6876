"""The photo benchmark: ingest of 3 MB JPEGs through the real HTTP endpoint, and the reuse lookup against
100,000 stored perceptual hashes.

- **Data**: a database of its own (`groundwork_bench_photos`): one tenant, one technician, an archive job holding
  `stored` synthetic photo rows (random 64-bit hashes with their chunks, loaded once by COPY and reused), and a
  live job whose photos from earlier runs are deleted first. Every upload is checked for reuse against them all.
- **Ingest**: distinct ~3 MB JPEGs (12 MP scenes under sensor noise, quality 85, EXIF time and GPS at the site)
  made before the clock starts, PUT to `/v1/photos/{id}?job_id=` of the real app under uvicorn (one process, as
  `groundwork serve` runs it) by `connections` concurrent clients. Measured: photos/s, MB/s and latency from
  upload to committed row (read the body, sniff, decode, EXIF, hash, reuse lookup, write to disk with fsync,
  insert). Also the in-process cost of `inspect_image` alone (sniff + decode + EXIF + phash), per photo.
- **Reuse lookup**: the service's own statement (`EARLIEST_MATCH`) through SQLAlchemy, as an upload runs it,
  for `lookups` random hashes, plus a planted hash 8 bits from a stored one (must be found); and EXPLAIN ANALYZE
  of one lookup, to show the plan (BitmapOr of the chunk indexes) and how few rows it touches.

Run it alone: `python -m bench.photos [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.media import similar
from backend.media.images import ExifClaims, Inspection, inspect_image
from backend.media.similar import EARLIEST_MATCH, match_params
from backend.settings import Settings, get_settings
from bench import report
from bench.database import create_and_migrate
from bench.loadgen import latency_summary_ms
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, app_server, mint_token
from geo.postgis import point_ewkt

DATABASE = "groundwork_bench_photos"
SITE = (31.2304, 121.4737)
TENANT_ID = UUID("00000000-0000-4000-8000-00000000be21")
USER_ID = UUID("00000000-0000-4000-8000-00000000be22")
ARCHIVE_JOB_ID = UUID("00000000-0000-4000-8000-00000000be23")
LIVE_JOB_ID = UUID("00000000-0000-4000-8000-00000000be24")
_COPY_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class PhotosConfig:
    uploads: int = 60  # measured uploads (plus `connections` warm-up ones)
    connections: int = 2
    stored: int = 100_000
    lookups: int = 1_000
    port: int = 8766


# -- data --------------------------------------------------------------------------------------------------------


async def _ensure_data(url: str, stored: int) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench-photos', 'Bench Photos')"
                " ON CONFLICT DO NOTHING",
                TENANT_ID,
            )
            await conn.execute(
                "INSERT INTO users (id, tenant_id, username, display_name, role, data_scope, password_hash)"
                " VALUES ($1, $2, 'bench-tech@bench-photos', 'Bench Tech', 'technician', 'self', 'no-login')"
                " ON CONFLICT DO NOTHING",
                USER_ID,
                TENANT_ID,
            )
            for job_id in (ARCHIVE_JOB_ID, LIVE_JOB_ID):
                # The live job's window is around now on every run, so uploads are not flagged for their time.
                await conn.execute(
                    "INSERT INTO jobs (id, tenant_id, job_type, customer_name, customer_phone, address, location,"
                    " geofence_radius_m, region, window_start, window_end, policy, status, assignee_id, request_hash)"
                    " VALUES ($1, $2, 'repair', 'Bench', '+86 100', 'Bench Rd',"
                    " ST_GeogFromText($3), 150, 'bench', $4, $5, '{}', 'arrived', $6, 'bench')"
                    " ON CONFLICT (tenant_id, id) DO UPDATE SET window_start = $4, window_end = $5",
                    job_id,
                    TENANT_ID,
                    point_ewkt(SITE[0], SITE[1]),
                    now - timedelta(hours=1),
                    now + timedelta(hours=8),
                    USER_ID,
                )
            await conn.execute("DELETE FROM photos WHERE job_id = $1", LIVE_JOB_ID)
        have = await conn.fetchval("SELECT count(*) FROM photos WHERE job_id = $1", ARCHIVE_JOB_ID)
        if have == stored:
            say(f"reusing {have:,} stored photo hashes in {DATABASE}")
            return
        say(f"loading {stored:,} synthetic photo hashes (once)")
        await conn.execute("DELETE FROM photos WHERE job_id = $1", ARCHIVE_JOB_ID)
        rnd = random.Random(20261124)
        columns = ["id", "tenant_id", "job_id", "user_id", "storage_key", "content_type", "size_bytes", "width"]
        columns += ["height", "sha256", "phash", "hash_c0", "hash_c1", "hash_c2", "received_at"]
        start = now - timedelta(days=365)
        for first in range(0, stored, _COPY_CHUNK):
            records = []
            for n in range(first, min(first + _COPY_CHUNK, stored)):
                phash = rnd.getrandbits(64)
                sha = f"{rnd.getrandbits(256):064x}"
                received = start + timedelta(minutes=n)
                photo_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
                key = f"{TENANT_ID}/{sha}"
                fixed = (photo_id, TENANT_ID, ARCHIVE_JOB_ID, USER_ID, key, "image/jpeg", 3_000_000, 4000, 3000, sha)
                records.append((*fixed, similar.to_signed(phash), *similar.chunks(phash), received))
            await conn.copy_records_to_table("photos", records=records, columns=columns)
        await conn.execute("VACUUM (ANALYZE) photos")
    finally:
        await conn.close()


def _photos(count: int) -> list[bytes]:
    """Distinct ~3 MB 12 MP JPEGs with EXIF as a phone writes it (taken now, at the site). Each is a scene (a
    gradient and a dozen boxes, so the perceptual hash has something to see) under sensor noise (so it weighs and
    decodes like a real photo)."""
    import io

    import numpy
    from PIL import ExifTags, Image, ImageDraw

    taken = (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y:%m:%d %H:%M:%S")
    exif = Image.Exif()
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = taken
    details[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (31.0, 13.0, 49.44), 3: "E", 4: (121.0, 28.0, 25.32)})
    rng = numpy.random.default_rng(1124)
    width, height = 4000, 3000  # 12 MP, as most phones shoot
    noise = rng.integers(-20, 21, (height, width, 3), dtype=numpy.int16)  # one sensor's noise, under every scene
    photos = []
    for _ in range(count):
        ramp = numpy.linspace(0.0, 1.0, height)[:, None, None]
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        scene = Image.fromarray(
            numpy.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).astype(numpy.uint8)
        )
        draw = ImageDraw.Draw(scene)
        for _ in range(12):
            x, y = int(rng.integers(-400, width)), int(rng.integers(-400, height))
            w, h = int(rng.integers(200, 1800)), int(rng.integers(200, 1800))
            draw.rectangle((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        noisy = numpy.clip(numpy.asarray(scene, dtype=numpy.int16) + noise, 0, 255).astype(numpy.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, "JPEG", quality=85, exif=exif)
        photos.append(buffer.getvalue())
    return photos


# -- measuring ---------------------------------------------------------------------------------------------------


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment for the app under test (bench.server passes ours on)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def _ingest(base_url: str, token: str, photos: list[bytes], connections: int) -> dict[str, Any]:
    queue = list(reversed(photos))
    latencies: list[float] = []
    failures: list[str] = []

    async def client() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
            while queue:
                data = queue.pop()
                started = time.perf_counter()
                response = await http.put(
                    f"/v1/photos/{uuid.uuid4()}", params={"job_id": str(LIVE_JOB_ID)}, content=data
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201 or response.json()["flags"]:  # each is new, on time, at the site
                    failures.append(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    if failures:
        raise BenchError(f"{len(failures)} uploads failed or were flagged; first: {failures[0]}")
    megabytes = sum(len(p) for p in photos) / 1e6
    return {
        "photos": len(photos),
        "seconds": elapsed,
        "photos_per_s": len(photos) / elapsed,
        "mb_per_s": megabytes / elapsed,
        "mean_photo_mb": megabytes / len(photos),
        "latency_ms": latency_summary_ms(latencies),
    }


def _inspection(phash: int) -> Inspection:
    return Inspection(
        content_type="image/jpeg", width=1, height=1, sha256="0" * 64, phash=phash, low_detail=False, exif=ExifClaims()
    )


async def _lookups(url: str, lookups: int) -> dict[str, Any]:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=1)
    rnd = random.Random(7)
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT phash FROM photos WHERE job_id = :job ORDER BY id LIMIT 1"), {"job": ARCHIVE_JOB_ID}
            )
            assert stored is not None
            near = similar.to_unsigned(stored)
            for position in rnd.sample(range(64), similar.THRESHOLD):
                near ^= 1 << position
            found = (await conn.execute(EARLIEST_MATCH, match_params(TENANT_ID, _inspection(near)))).one_or_none()
            if found is None:
                raise BenchError("a hash 8 bits from a stored one was not found: the lookup is broken")
            for _ in range(50):  # warm the cache and the prepared statement
                await conn.execute(EARLIEST_MATCH, match_params(TENANT_ID, _inspection(rnd.getrandbits(64))))
            times = []
            for _ in range(lookups):
                params = match_params(TENANT_ID, _inspection(rnd.getrandbits(64)))
                started = time.perf_counter()
                await conn.execute(EARLIEST_MATCH, params)
                times.append(time.perf_counter() - started)
            params = match_params(TENANT_ID, _inspection(rnd.getrandbits(64)))
            plan = [
                row[0] for row in await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {EARLIEST_MATCH.text}"), params)
            ]
    finally:
        await engine.dispose()
    return {"lookups": lookups, "latency_ms": latency_summary_ms(times), "plan": plan}


def _inspect_cost(photos: list[bytes]) -> dict[str, float]:
    times = []
    for data in photos:
        started = time.perf_counter()
        inspect_image(data)
        times.append(time.perf_counter() - started)
    return latency_summary_ms(times)


async def run(settings: Settings, config: PhotosConfig | None = None) -> dict[str, Any]:
    """Run the photo benchmark, print its figures and return them (for a JSON result)."""
    config = config or PhotosConfig()
    url = await asyncio.to_thread(create_and_migrate, settings, DATABASE)
    await _ensure_data(url, config.stored)
    say(f"making {config.uploads + config.connections} distinct ~3 MB JPEGs")
    photos = await asyncio.to_thread(_photos, config.uploads + config.connections)
    warmup, measured = photos[: config.connections], photos[config.connections :]
    say("timing inspect_image (sniff + decode + EXIF + phash) in process")
    inspect_ms = await asyncio.to_thread(_inspect_cost, measured[:20])
    token = mint_token(
        settings, user_id=USER_ID, tenant_id=TENANT_ID, role="technician", data_scope="self", team_id=None
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-photos-") as photo_dir,
        _environment(GROUNDWORK_PHOTO_DIR=photo_dir),
        app_server(database_url=url, jwt_secret=BENCH_JWT_SECRET, port=config.port) as server,
    ):
        await _ingest(server.base_url, token, warmup, config.connections)
        say(f"uploading {len(measured)} photos over {config.connections} connections")
        ingest = await _ingest(server.base_url, token, measured, config.connections)
    say(f"timing {config.lookups} reuse lookups against {config.stored:,} stored hashes")
    lookup = await _lookups(url, config.lookups)

    machine = report.machine()
    print()
    print(f"## photos: {config.stored:,} stored hashes, {config.connections} connections, {machine['nproc']} cores")
    print()
    lat, look = ingest["latency_ms"], lookup["latency_ms"]
    print(
        report.markdown(
            ["measurement", "rate", "p50 ms", "p90 ms", "p99 ms", "mean ms"],
            [
                [
                    f"ingest: PUT /v1/photos, {ingest['mean_photo_mb']:.1f} MB JPEGs",
                    f"{ingest['photos_per_s']:.1f} photos/s ({ingest['mb_per_s']:.0f} MB/s)",
                    *(f"{lat[k]:.1f}" for k in ("p50", "p90", "p99", "mean")),
                ],
                [
                    "inspect_image alone (in process, 1 thread)",
                    f"{1000 / inspect_ms['mean']:.1f} photos/s",
                    *(f"{inspect_ms[k]:.1f}" for k in ("p50", "p90", "p99", "mean")),
                ],
                [
                    f"reuse lookup vs {config.stored:,} hashes (SQLAlchemy, as the upload runs it)",
                    f"{1000 / look['mean']:.0f} lookups/s",
                    *(f"{look[k]:.2f}" for k in ("p50", "p90", "p99", "mean")),
                ],
            ],
        )
    )
    print()
    print("one lookup's plan (EXPLAIN ANALYZE):")
    # The probe arrays make the plan's lines long: cut them for the terminal (the JSON result keeps them whole).
    print("\n".join(f"    {line[:150]}{' ...' if len(line) > 150 else ''}" for line in lookup["plan"]))
    return {
        "benchmark": "photos",
        "config": {
            "uploads": config.uploads,
            "connections": config.connections,
            "stored": config.stored,
            "lookups": config.lookups,
        },
        "ingest": ingest,
        "inspect_ms": inspect_ms,
        "lookup": lookup,
        "machine": machine,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.photos", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 uploads and 200 lookups instead of 60 and 1,000")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    config = PhotosConfig(connections=args.connections, port=args.port)
    if args.quick:
        config = PhotosConfig(uploads=20, lookups=200, connections=args.connections, port=args.port)
    try:
        payload = asyncio.run(run(get_settings(), config))
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    started = report.utc_now()
    path = report.write_json(f"photos-{started.date().isoformat()}{'-quick' if args.quick else ''}", payload)
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
