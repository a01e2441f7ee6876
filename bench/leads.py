"""The lead pool's benchmarks (issue 11): the release sweep over a million private leads, and claim contention.

- **Release**: 1,000,000 merchants held by 1,000 BDs, claimed at random over the 60 days before the bench's
  `now`, no visits: under the default policy (15 days without a visit) about three quarters are due. One pass of
  `backend.leads.release.release_due` (the scheduler's task) releases them all, in batches of RELEASE_BATCH rows
  per transaction, each batch one statement (the merchants, their lead rows, the history, the former holders'
  sync removals, the pushes queued). A second pass right after is the idempotent no-op over the rest. The warning
  sweep runs over the same data. Before each pass the leads are reset from `bench_leads` (outside the timing).
- **Claim contention**: the real app (uvicorn), CLAIMERS BDs each on their own connection claim the same merchant
  at the same moment, for MERCHANTS merchants in turn: every merchant must end with exactly one holder and
  CLAIMERS - 1 `lead_taken` answers. Reported: claims/s and per-claim latency (winners and losers together).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from backend.db.engine import Database
from backend.leads.release import RELEASE_BATCH, release_due, warn_due
from backend.settings import Settings
from bench import database, loadgen
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, app_server, mint_token

DATABASE = "groundwork_bench_leads"
SLUG = "bench-leads"
TENANT = UUID("00000000-0000-4000-8000-0000000011e1")
LEADS = 1_000_000
BDS = 1_000
CLAIMERS = 16
MERCHANTS = 100
CHUNK = 100_000
NOW = datetime(2026, 12, 1, tzinfo=UTC)  # the bench's clock: the data is claimed over the 60 days before it

_LOAD = """
INSERT INTO pois (tenant_id, id, name, category, address, location, holder_id, claimed_at, source)
SELECT $1, md5('bench-lead-' || n)::uuid, 'Shop ' || n, 'restaurant', '',
       ST_SetSRID(ST_MakePoint(121.47 + (random() - 0.5) * 0.6, 31.23 + (random() - 0.5) * 0.6), 4326)::geography,
       md5('bench-bd-' || (n % $4))::uuid, $5::timestamptz - make_interval(secs => random() * 60 * 86400 + 0 * n),
       'import'
FROM generate_series($2::int, $3::int) AS n
"""


async def _ensure(url: str, leads: int) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock(11011)")
        if await conn.fetchval("SELECT count(*) FROM pois WHERE tenant_id = $1", TENANT) == leads:
            say(f"reusing {leads:,} leads")
            return
        say(f"loading {BDS:,} BDs and {leads:,} held merchants (once)")
        started = time.perf_counter()
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("TRUNCATE tenants CASCADE")
        await conn.execute("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Bench leads')", TENANT, SLUG)
        await conn.execute(
            "INSERT INTO users (id, tenant_id, username, display_name, role, data_scope, password_hash)"
            " SELECT md5('bench-bd-' || n)::uuid, $1, 'bd' || n || '@bench', 'BD ' || n, 'bd', 'self', 'no-login'"
            " FROM generate_series(0, $2 - 1) AS n",
            TENANT,
            BDS + CLAIMERS,
        )
        # Caps out of the way of the bench (1,000 leads a BD); the clocks are the defaults.
        await conn.execute(
            "INSERT INTO lead_policies (tenant_id, version, rules, adopted_at) VALUES ($1, 1, $2::jsonb, $3)",
            TENANT,
            '{"protection_days": 45, "no_visit_days": 15, "no_signing_days": 30, "warn_days": 3,'
            ' "max_held": {"bd": 1000000}, "max_claims_per_day": {"bd": 1000000}, "max_extensions": 2,'
            ' "max_extension_days": 7, "cooldown_days": 7}',
            NOW,
        )
        await conn.execute("SELECT setseed(0.11)")
        for first in range(1, leads + 1, CHUNK):
            await conn.execute(_LOAD, TENANT, first, min(first + CHUNK - 1, leads), BDS, NOW)
            say(f"  {min(first + CHUNK - 1, leads):,} / {leads:,}")
        await conn.execute("DROP TABLE IF EXISTS bench_leads")
        await conn.execute(
            "CREATE TABLE bench_leads AS SELECT id, holder_id, claimed_at FROM pois WHERE tenant_id = $1", TENANT
        )
        await conn.execute("ALTER TABLE bench_leads ADD PRIMARY KEY (id)")
        await conn.execute("VACUUM (ANALYZE) pois")
        await conn.execute("ANALYZE users, bench_leads")
        say(f"loaded in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


async def _reset(url: str) -> None:
    """Every lead back with its first holder, nothing released, no history, no feed: a pass starts from scratch."""
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE leads, lead_events, sync_changes, background_jobs")
        await conn.execute(
            "UPDATE pois p SET holder_id = b.holder_id, claimed_at = b.claimed_at FROM bench_leads b"
            " WHERE p.tenant_id = $1 AND p.id = b.id AND p.holder_id IS DISTINCT FROM b.holder_id",
            TENANT,
        )
        await conn.execute("VACUUM (ANALYZE) pois, leads, lead_events, sync_changes")
    finally:
        await conn.close()


async def _release(url: str, settings: Settings, leads: int) -> dict[str, Any]:
    await _reset(url)
    db = await Database.connect(settings.with_database(url))
    try:
        started = time.perf_counter()
        first = await release_due(db, NOW)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = await release_due(db, NOW)
        again_s = time.perf_counter() - started
        started = time.perf_counter()
        warned = await warn_due(db, NOW)
        warn_s = time.perf_counter() - started
    finally:
        await db.close()
    say(
        f"released {first.released:,} in {first_s:.1f} s ({first.batches} batches); "
        f"again: {again.released} in {again_s:.1f} s"
    )
    return {
        "leads": leads,
        "bds": BDS,
        "batch": RELEASE_BATCH,
        "released": first.released,
        "holders": first.holders,
        "batches": first.batches,
        "release_s": round(first_s, 2),
        "released_per_s": round(first.released / first_s),
        "second_pass_released": again.released,
        "second_pass_s": round(again_s, 2),
        "warned": warned,
        "warn_s": round(warn_s, 2),
    }


async def _contention(url: str, settings: Settings, port: int) -> dict[str, Any]:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        merchants = [
            row["id"]
            for row in await conn.fetch(
                "SELECT id FROM pois WHERE tenant_id = $1 AND holder_id IS NULL ORDER BY id LIMIT $2", TENANT, MERCHANTS
            )
        ]
        await conn.execute("DELETE FROM lead_events WHERE tenant_id = $1 AND action = 'claim'", TENANT)
    finally:
        await conn.close()
    if len(merchants) < MERCHANTS:
        raise BenchError("not enough merchants in the pool: run the release part first")
    claimers = [
        UUID(hex=hashlib.md5(f"bench-bd-{BDS + k}".encode(), usedforsecurity=False).hexdigest())
        for k in range(CLAIMERS)
    ]
    bench_settings = settings.with_database(url)
    tokens = [
        mint_token(bench_settings, user_id=u, tenant_id=TENANT, role="bd", data_scope="self", team_id=None)
        for u in claimers
    ]
    latencies: list[float] = []
    outcomes: dict[int, int] = {}
    wrong: list[str] = []
    with app_server(database_url=url, jwt_secret=BENCH_JWT_SECRET, port=port) as server:
        clients = [
            httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {t}"}, timeout=60)
            for t in tokens
        ]
        try:

            async def one(client: httpx.AsyncClient, poi: UUID) -> int:
                started = time.perf_counter()
                response = await client.post(f"/v1/leads/{poi}/claim")
                latencies.append(time.perf_counter() - started)
                if response.status_code == 409 and response.json().get("code") != "lead_taken":
                    wrong.append(response.text)
                return response.status_code

            for client in clients:  # warm the connections
                await client.get("/healthz")
            started = time.perf_counter()
            for poi in merchants:
                statuses = await asyncio.gather(*(one(c, poi) for c in clients))
                winners = statuses.count(200)
                outcomes[winners] = outcomes.get(winners, 0) + 1
                if winners != 1 or statuses.count(409) != CLAIMERS - 1:
                    wrong.append(f"{poi}: {statuses}")
            elapsed = time.perf_counter() - started
        finally:
            for client in clients:
                await client.aclose()
    if wrong:
        raise BenchError(f"claim contention broke the rule: {wrong[:3]}")
    summary = loadgen.latency_summary_ms(latencies)
    say(
        f"{MERCHANTS} merchants x {CLAIMERS} claimers: exactly one winner each; "
        f"{len(latencies) / elapsed:,.0f} claims/s"
    )
    return {
        "merchants": MERCHANTS,
        "claimers": CLAIMERS,
        "claims": len(latencies),
        "claims_per_s": round(len(latencies) / elapsed),
        "latency_ms": summary,
        "one_winner_each": outcomes == {1: MERCHANTS},
    }


def run(settings: Settings, port: int, leads: int = LEADS) -> dict[str, Any]:
    """`leads`: the bench's size (`--pois`; --quick: 100,000), each size in a database of its own."""
    url = database.create_and_migrate(settings, DATABASE if leads == LEADS else f"{DATABASE}_{leads}")
    asyncio.run(_ensure(url, leads))
    load_before = os.getloadavg()
    release = asyncio.run(_release(url, settings, leads))
    contention = asyncio.run(_contention(url, settings, port))
    return {
        "release": release,
        "contention": contention,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "server": database.server_facts(url, ("pois", "leads", "lead_events")),
    }
