"""The bench database: next to the app's own on the same server, migrated, loaded once with synthetic merchants.

The data is generated in SQL (`generate_series` + `random()` after `setseed`), so a given POI count always gives
the same rows and loading needs no Python round trip per row. Each POI count has its own database
(`groundwork_bench` for the default 1,000,000, `groundwork_bench_<n>` otherwise), so a `--quick` smoke run does not
throw away the full data set. A database whose bench tenant already holds the right number of POIs is reused.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from backend.db.admin import create_database, database_name, prepare_server, with_database_name
from backend.db.embedded import ProvisionError
from backend.db.migrate import upgrade
from backend.settings import Settings
from bench.progress import BenchError, say

DEFAULT_POIS = 1_000_000
BENCH_SLUG = "bench"
BENCH_USERNAME = "bench-bd@bench"

# Where the merchants are: a 50 km box around central Shanghai, as in research/perf-baseline.md.
CENTRE_LAT, CENTRE_LON = 31.23, 121.47
BOX_KM = 50.0
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(CENTRE_LAT))


def half_span_deg(km: float) -> tuple[float, float]:
    """Half the side of a `km` square around the centre, in degrees of (latitude, longitude)."""
    return km / 2 / KM_PER_DEG_LAT, km / 2 / KM_PER_DEG_LON


HELD_SHARE = 0.10  # held as a lead by the bench BD, so the LEFT JOIN to users finds a row
CHUNK = 100_000
_SEED = 0.20261124  # setseed(): same count, same rows
_LOCK_KEY = 0x6772_6E64_4245_4E43  # "grndBENC": one loader at a time per database

CATEGORIES = (
    "restaurant",
    "cafe",
    "grocery",
    "convenience",
    "pharmacy",
    "salon",
    "hardware",
    "clothing",
    "electronics",
    "bakery",
)
ROADS = (
    "Nanjing Rd",
    "Huaihai Rd",
    "Xizang Rd",
    "Yan'an Rd",
    "Sichuan Rd",
    "Henan Rd",
    "Fuzhou Rd",
    "Jinling Rd",
    "Zhaojiabang Rd",
    "Changshou Rd",
)

# One chunk of merchants n in [$3, $4]. The inner subquery draws `held` once per row (a subquery with a volatile
# target list is not flattened), so holder_id and claimed_at agree.
_INSERT_POIS = """
INSERT INTO pois (id, tenant_id, name, category, address, phone, location, holder_id, claimed_at, source)
SELECT md5('bench-poi-' || s.n)::uuid,
       $1,
       'Shop ' || s.n,
       ($5::text[])[1 + floor(random() * cardinality($5::text[]))::int],
       (1 + floor(random() * 999))::int || ' ' || ($6::text[])[1 + floor(random() * cardinality($6::text[]))::int]
           || ', Shanghai',
       CASE WHEN random() < 0.7 THEN '+86 13' || lpad(floor(random() * 1e9)::bigint::text, 9, '0') END,
       ST_SetSRID(ST_MakePoint(round(($7 + (random() * 2 - 1) * $9)::numeric, 7)::float8,
                               round(($8 + (random() * 2 - 1) * $10)::numeric, 7)::float8), 4326)::geography,
       CASE WHEN s.held THEN $2::uuid END,
       CASE WHEN s.held THEN now() END,
       'import'
FROM (SELECT n, random() < $11 AS held FROM generate_series($3::int, $4::int) AS n) AS s
"""


@dataclass(frozen=True, slots=True)
class BenchData:
    url: str  # asyncpg form, postgresql://...
    tenant_id: UUID
    team_id: UUID
    user_id: UUID
    poi_count: int

    @property
    def name(self) -> str:
        return database_name(self.url)


def bench_database_name(pois: int) -> str:
    return "groundwork_bench" if pois == DEFAULT_POIS else f"groundwork_bench_{pois}"


def create_and_migrate(settings: Settings, name: str) -> str:
    """Start the server if it is the embedded one, create the database `name` on it if missing, migrate it.
    Returns its URL (asyncpg form). Every benchmark keeps its data in a database of its own."""
    try:
        prepare_server(settings)
    except ProvisionError as exc:
        raise BenchError(f"no PostgreSQL to benchmark against: {exc}") from exc
    url = with_database_name(settings.database_url, name)
    try:
        if asyncio.run(create_database(url)):
            say(f"created database {name}")
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"cannot create {name} on {settings.database_url}: {exc}. "
            "Is the server up (`./dev db start`)? Does DATABASE_URL point at a server where you may create databases?"
        ) from exc
    say(f"migrating {name}")
    upgrade(url)
    return url


def prepare(settings: Settings, pois: int) -> BenchData:
    """Create and migrate the nearby bench database, load it if needed."""
    url = create_and_migrate(settings, bench_database_name(pois))
    return asyncio.run(_ensure_data(url, pois))


async def _ensure_data(url: str, pois: int) -> BenchData:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        # Two benches at once: the second waits here, then finds the data loaded.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        tenant_id, team_id, user_id = await ensure_people(conn)
        count: int = await conn.fetchval("SELECT count(*) FROM pois WHERE tenant_id = $1", tenant_id)
        if count == pois:
            say(f"reusing {count:,} POIs already loaded in {database_name(url)}")
        else:
            if count:
                say(f"{database_name(url)} holds {count:,} POIs, not {pois:,}: loading afresh")
                await conn.execute("TRUNCATE pois CASCADE")
            await _load_pois(conn, tenant_id, user_id, pois)
    finally:
        await conn.close()
    return BenchData(url=url, tenant_id=tenant_id, team_id=team_id, user_id=user_id, poi_count=pois)


async def ensure_people(conn: asyncpg.Connection) -> tuple[UUID, UUID, UUID]:
    """The bench tenant, its one team and its one BD (tenant, team, user ids); created on the first run."""
    row = await conn.fetchrow(
        "SELECT t.id AS tenant_id, u.team_id, u.id AS user_id FROM tenants t"
        " JOIN users u ON u.tenant_id = t.id AND u.username = $2 WHERE t.slug = $1",
        BENCH_SLUG,
        BENCH_USERNAME,
    )
    if row is not None:
        return row["tenant_id"], row["team_id"], row["user_id"]
    tenant_id = UUID("00000000-0000-4000-8000-00000000be01")
    team_id = UUID("00000000-0000-4000-8000-00000000be02")
    user_id = UUID("00000000-0000-4000-8000-00000000be03")
    async with conn.transaction():
        await conn.execute("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Bench Co.')", tenant_id, BENCH_SLUG)
        await conn.execute(
            "INSERT INTO teams (id, tenant_id, parent_id, name, path) VALUES ($1, $2, NULL, 'Bench team', $3)",
            team_id,
            tenant_id,
            f"/{team_id}/",
        )
        # The bench mints its access token directly (bench/nearby.py), so nobody ever logs in with a password.
        await conn.execute(
            "INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)"
            " VALUES ($1, $2, $3, $4, 'Bench BD', 'bd', 'self', 'no-login')",
            user_id,
            tenant_id,
            team_id,
            BENCH_USERNAME,
        )
    say("created the bench tenant, team and BD")
    return tenant_id, team_id, user_id


async def _load_pois(conn: asyncpg.Connection, tenant_id: UUID, user_id: UUID, pois: int) -> None:
    half_lat, half_lon = half_span_deg(BOX_KM)
    say(f"loading {pois:,} POIs in chunks of {CHUNK:,} (once; the indexes are kept up to date as rows go in)")
    started = time.perf_counter()
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SELECT setseed($1)", _SEED)
    for first in range(1, pois + 1, CHUNK):
        last = min(first + CHUNK - 1, pois)
        await conn.execute(
            _INSERT_POIS,
            tenant_id,
            user_id,
            first,
            last,
            list(CATEGORIES),
            list(ROADS),
            CENTRE_LON,
            CENTRE_LAT,
            half_lon,
            half_lat,
            HELD_SHARE,
        )
        elapsed = time.perf_counter() - started
        say(f"  {last:,} / {pois:,} POIs ({last / elapsed:,.0f}/s, {elapsed:.0f} s)")
    say("VACUUM (ANALYZE) pois: statistics for the planner, hint bits and visibility map set before measuring")
    await conn.execute("VACUUM (ANALYZE) pois")
    await conn.execute("ANALYZE tenants, teams, users")
    say(f"loaded in {time.perf_counter() - started:.0f} s")


# -- facts about the server, for the report -----------------------------------------------------------------


async def _server_facts(url: str, tables: tuple[str, ...]) -> dict[str, Any]:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        full: str = await conn.fetchval("SELECT postgis_full_version()")
        parts = dict(re.findall(r'(POSTGIS|GEOS|PROJ)="([^"]*)"', full))
        facts = {
            "postgres": await conn.fetchval("SHOW server_version"),
            "postgis": " ".join(f"{key}={value}" for key, value in parts.items()),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
        }
        for table in tables:  # table sizes, indexes included
            facts[f"{table}_table_size"] = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size($1::regclass))", table
            )
        return facts
    finally:
        await conn.close()


def server_facts(url: str, tables: tuple[str, ...] = ("pois",)) -> dict[str, Any]:
    return asyncio.run(_server_facts(url, tables))


async def _fetch(url: str, sql: str, args: list[Any]) -> list[asyncpg.Record]:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


def fetch(url: str, sql: str, args: list[Any]) -> list[asyncpg.Record]:
    """Run one statement on a fresh connection (outside the measurements)."""
    return asyncio.run(_fetch(url, sql, args))


def explain(url: str, sql: str, args: list[Any]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement, run twice so that the plan shown is a warm one."""
    statement = f"EXPLAIN (ANALYZE, BUFFERS) {sql}"

    async def run() -> str:
        conn: asyncpg.Connection = await asyncpg.connect(url)
        try:
            await conn.fetch(statement, *args)
            rows = await conn.fetch(statement, *args)
            return "\n".join(row[0] for row in rows)
        finally:
            await conn.close()

    return asyncio.run(run())


def backend_pids(url: str, application_name: str) -> list[int]:
    """Server processes of the bench database's sessions named `application_name` (for CPU accounting)."""
    rows = fetch(
        url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1"
        " AND pid <> pg_backend_pid()",
        [application_name],
    )
    return [row["pid"] for row in rows]


def other_sessions(url: str) -> int:
    """Client sessions on the server that are not the bench's own (other databases, other people's tests)."""
    rows = fetch(
        url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'"
        " AND datname IS DISTINCT FROM current_database()",
        [],
    )
    return int(rows[0]["n"])
