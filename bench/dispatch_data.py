"""The dispatch benchmark's data: 2,000 technicians with dispatch profiles and a month of jobs, and one new job to
dispatch among them.

In the database `groundwork_bench_dispatch` (migrated like the app's; reused by later runs):

- the bench tenant and team of `database.ensure_people`, an ops dispatcher (data scope `all`), 2,000 technicians;
- `technician_profiles`: skills (each of six with probability 0.45, `fiber` 0.6), a home region (16 districts of
  Shanghai, evenly) and half of them a second one, a daily cap of 4 to 8, 90% available, a last known place
  uniformly in the 50 km box of the nearby benchmark (3% without one);
- `jobs`: for each technician and each of the 30 days before today, 0 to 4 jobs (2 on average: ~120,000 closed
  jobs, 85% approved, the rest completed, cancelled or could not complete), assigned 1 to 48 hours before their
  window; today, 0 to cap + 1 jobs in the active statuses (so about a quarter of the technicians are full and
  `load` is a real filter), assigned in the last 48 hours (so `recent`, the fairness term, differs between
  technicians); plus 500 unassigned jobs today (new or pooled);
- the job to dispatch: new, `install` in `huangpu` needing `fiber`, today 14:00-18:00, at the centre of the box.
  About 60 technicians pass the hard filters (region, skills, availability, cap); the others are filtered out.

"Today" is the day of the load. On a later day the bench moves every job by whole days first (one UPDATE), so
that `load` (jobs on the job's day) and `recent` (assigned in the last 7 days, against now()) see the same data.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from backend.db.admin import database_name
from backend.jobs.service import DEFAULT_JOB_TYPES
from backend.settings import Settings
from bench import database
from bench.progress import say

DISPATCH_DATABASE = "groundwork_bench_dispatch"
TECHNICIANS = 2_000
HISTORY_DAYS = 30
UNASSIGNED_TODAY = 500
DATA_VERSION = "bench-dispatch-data v1"  # the job's notes: change it to force a reload

REGIONS = (
    "huangpu",
    "xuhui",
    "changning",
    "jingan",
    "putuo",
    "hongkou",
    "yangpu",
    "minhang",
    "baoshan",
    "jiading",
    "pudong",
    "jinshan",
    "songjiang",
    "qingpu",
    "fengxian",
    "chongming",
)
SKILLS = ("fiber", "electrical", "hvac", "plumbing", "cctv", "network")
ACTIVE = ("assigned", "accepted", "scheduled", "arrived", "verification", "on_hold")

DISPATCHER_ID = UUID("00000000-0000-4000-8000-00000000be21")
JOB_ID = UUID("00000000-0000-4000-8000-00000000be22")
JOB_REGION = "huangpu"
JOB_SKILLS = ("fiber",)
_SEED = 0.2718
_LOCK_KEY = 0x6772_6E64_4449_5350  # "grndDISP"

_INSERT_TECHNICIANS = """
INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)
SELECT md5('bench-tech-' || n)::uuid, $1, $2, 'bench-tech-' || n || '@bench', 'Technician ' || n, 'technician',
       'self', 'no-login'
FROM generate_series(1, $3::int) AS n
"""

# `+ 0 * n` ties each random() to its row: a subquery without a reference to the row would be run only once.
_INSERT_PROFILES = """
INSERT INTO technician_profiles (user_id, tenant_id, skills, regions, daily_cap, available, location, location_at)
SELECT md5('bench-tech-' || n)::uuid, $1,
       ARRAY(SELECT s FROM unnest($2::text[]) AS s
             WHERE random() + 0 * n < CASE WHEN s = 'fiber' THEN 0.6 ELSE 0.45 END),
       CASE WHEN random() < 0.5 THEN ARRAY[($3::text[])[1 + n % cardinality($3::text[])]]
            ELSE ARRAY[($3::text[])[1 + n % cardinality($3::text[])],
                       ($3::text[])[1 + floor(random() * cardinality($3::text[]))::int]] END,
       4 + floor(random() * 5)::int,
       random() < 0.9,
       CASE WHEN random() < 0.97 THEN ST_SetSRID(ST_MakePoint($4::float8 + (random() * 2 - 1) * $6::float8,
                                                              $5::float8 + (random() * 2 - 1) * $7::float8),
                                                 4326)::geography END,
       now() - random() * interval '2 hours'
FROM generate_series(1, $8::int) AS n
"""

# Per technician and day (0 = today), 0-4 closed jobs before today, 0-(cap + 1) active jobs today; `r` and `hours`
# are drawn once per job in the inner query so that the columns computed from them agree.
_INSERT_JOBS = """
INSERT INTO jobs (id, tenant_id, job_type, customer_name, customer_phone, address, location, geofence_radius_m,
                  region, required_skills, window_start, window_end, priority, policy, notes, status, held_from,
                  assignee_id, assigned_at, completed_at, created_by, request_hash, created_at, updated_at)
SELECT md5('bench-job-' || j.user_id || '-' || j.day || '-' || j.k)::uuid, $1, j.job_type,
       'Customer ' || left(md5(j.user_id || '-' || j.day || '-' || j.k), 8),
       '+86 138' || lpad(floor(j.r * 1e8)::bigint::text, 8, '0'),
       (1 + floor(j.r * 999))::int || ' Bench Rd, Shanghai',
       ST_SetSRID(ST_MakePoint($4::float8 + (random() * 2 - 1) * $6::float8,
                               $5::float8 + (random() * 2 - 1) * $7::float8), 4326)::geography,
       150, j.regions[1],
       CASE WHEN cardinality(j.skills) > 0 AND j.r < 0.8 THEN ARRAY[j.skills[1]] ELSE '{}' END,
       j.window_start, j.window_start + interval '2 hours', 1 + floor(j.r * 5)::int,
       ($8::jsonb) -> j.job_type, '',
       j.status, CASE WHEN j.status = 'on_hold' THEN 'scheduled' END,
       j.user_id, j.window_start - j.lead, CASE WHEN j.status IN ('completed', 'approved')
       THEN j.window_start + interval '1 hour' END,
       $9, 'bench', j.window_start - j.lead, j.window_start
FROM (
    SELECT t.user_id, t.regions, t.skills, d.day, k.k, random() AS r,
           (ARRAY['install', 'repair', 'measure', 'return_visit'])[1 + floor(random() * 4)::int] AS job_type,
           (($2::date - d.day) + make_interval(hours => 8 + floor(random() * 10)::int))::timestamptz AS window_start,
           make_interval(hours => 1 + floor(random() * 47)::int) AS lead,
           CASE WHEN d.day = 0 THEN ($10::text[])[1 + floor(random() * cardinality($10::text[]))::int]
                ELSE (ARRAY['approved', 'approved', 'approved', 'approved', 'approved', 'approved', 'approved',
                            'approved', 'approved', 'approved', 'approved', 'approved', 'approved', 'approved',
                            'approved', 'approved', 'approved', 'completed', 'cancelled', 'cannot_complete'])
                     [1 + floor(random() * 20)::int] END AS status
    FROM technician_profiles t
    CROSS JOIN generate_series(0, $3::int) AS d(day)
    CROSS JOIN LATERAL generate_series(1, CASE WHEN d.day = 0 THEN floor(random() * (t.daily_cap + 2))::int
                                               ELSE floor(random() * 5)::int END) AS k(k)
    WHERE t.tenant_id = $1
) AS j
"""

_INSERT_UNASSIGNED = """
INSERT INTO jobs (id, tenant_id, job_type, customer_name, customer_phone, address, location, geofence_radius_m,
                  region, required_skills, window_start, window_end, priority, policy, status, created_by,
                  request_hash)
SELECT md5('bench-open-job-' || n)::uuid, $1, 'repair', 'Customer open ' || n, '+86 137' || lpad(n::text, 8, '0'),
       n || ' Open Rd, Shanghai',
       ST_SetSRID(ST_MakePoint($4::float8 + (random() * 2 - 1) * $6::float8,
                               $5::float8 + (random() * 2 - 1) * $7::float8), 4326)::geography,
       150, ($8::text[])[1 + n % cardinality($8::text[])], '{}',
       ($2::date + time '09:00')::timestamptz, ($2::date + time '17:00')::timestamptz, 3, $9::jsonb,
       CASE WHEN n % 5 < 2 THEN 'pooled' ELSE 'new' END, $10, 'bench'
FROM generate_series(1, $3::int) AS n
"""


@dataclass(frozen=True, slots=True)
class DispatchData:
    url: str
    tenant_id: UUID
    team_id: UUID
    dispatcher_id: UUID
    job_id: UUID
    technicians: int
    jobs: int  # in the tenant, the one to dispatch included

    @property
    def name(self) -> str:
        return database_name(self.url)


def prepare(settings: Settings) -> DispatchData:
    url = database.create_and_migrate(settings, DISPATCH_DATABASE)
    return asyncio.run(_ensure_data(url))


async def _ensure_data(url: str) -> DispatchData:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        tenant_id, team_id, _ = await database.ensure_people(conn)
        found = await conn.fetchrow(
            "SELECT (SELECT notes FROM jobs WHERE tenant_id = $1 AND id = $2) AS version,"
            " (SELECT count(*) FROM technician_profiles WHERE tenant_id = $1) AS technicians",
            tenant_id,
            JOB_ID,
        )
        if tuple(found) == (DATA_VERSION, TECHNICIANS):
            say(f"reusing the dispatch data in {database_name(url)}: {TECHNICIANS:,} technicians")
            await _move_to_today(conn)
        else:
            if found["technicians"] or found["version"] is not None:
                say(f"{database_name(url)} holds other data ({tuple(found)}): loading afresh")
                await conn.execute("TRUNCATE tenants CASCADE")
                tenant_id, team_id, _ = await database.ensure_people(conn)
            await _load(conn, tenant_id, team_id)
        jobs: int = await conn.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", tenant_id)
    finally:
        await conn.close()
    return DispatchData(
        url=url,
        tenant_id=tenant_id,
        team_id=team_id,
        dispatcher_id=DISPATCHER_ID,
        job_id=JOB_ID,
        technicians=TECHNICIANS,
        jobs=jobs,
    )


async def _load(conn: asyncpg.Connection, tenant_id: UUID, team_id: UUID) -> None:
    started = time.perf_counter()
    say(f"loading the dispatch data (once): {TECHNICIANS:,} technicians, {HISTORY_DAYS} days of jobs")
    half_lat, half_lon = database.half_span_deg(database.BOX_KM)
    box = (database.CENTRE_LON, database.CENTRE_LAT, half_lon, half_lat)
    policies = json.dumps({key: policy for key, (_, policy) in DEFAULT_JOB_TYPES.items()})
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SELECT setseed($1)", _SEED)
    async with conn.transaction():
        today = await conn.fetchval("SELECT current_date")
        await conn.execute(
            "INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)"
            " VALUES ($1, $2, $3, 'bench-dispatcher@bench', 'Bench Dispatcher', 'ops', 'all', 'no-login')",
            DISPATCHER_ID,
            tenant_id,
            team_id,
        )
        for key, (name, policy) in DEFAULT_JOB_TYPES.items():
            await conn.execute(
                "INSERT INTO job_types (tenant_id, key, name, policy) VALUES ($1, $2, $3, $4::text::jsonb)",
                tenant_id,
                key,
                name,
                json.dumps(policy),
            )
        await conn.execute(_INSERT_TECHNICIANS, tenant_id, team_id, TECHNICIANS)
        await conn.execute(_INSERT_PROFILES, tenant_id, list(SKILLS), list(REGIONS), *box, TECHNICIANS)
        await conn.execute(_INSERT_JOBS, tenant_id, today, HISTORY_DAYS, *box, policies, DISPATCHER_ID, list(ACTIVE))
        await conn.execute(
            _INSERT_UNASSIGNED,
            tenant_id,
            today,
            UNASSIGNED_TODAY,
            *box,
            list(REGIONS),
            json.dumps(DEFAULT_JOB_TYPES["repair"][1]),
            DISPATCHER_ID,
        )
        await conn.execute(
            "INSERT INTO jobs (id, tenant_id, job_type, customer_name, customer_phone, address, location,"
            " geofence_radius_m, region, required_skills, window_start, window_end, priority, policy, notes, status,"
            " created_by, request_hash) VALUES ($1, $2, 'install', 'Chen Hui', '+86 138 0000 1234',"
            " '88 Huaihai Middle Rd, Huangpu', ST_SetSRID(ST_MakePoint($3, $4), 4326)::geography, 150, $5, $6,"
            " ($7::date + time '14:00')::timestamptz, ($7::date + time '18:00')::timestamptz, 2, $8::text::jsonb,"
            " $9, 'new', $10, 'bench')",
            JOB_ID,
            tenant_id,
            database.CENTRE_LON,
            database.CENTRE_LAT,
            JOB_REGION,
            list(JOB_SKILLS),
            today,
            json.dumps(DEFAULT_JOB_TYPES["install"][1]),
            DATA_VERSION,
            DISPATCHER_ID,
        )
    say("VACUUM (ANALYZE): statistics, hint bits and visibility map set before measuring")
    await conn.execute("VACUUM (ANALYZE) users, technician_profiles, jobs, job_types")
    say(f"loaded in {time.perf_counter() - started:.0f} s")


async def _move_to_today(conn: asyncpg.Connection) -> None:
    """Data loaded on an earlier day: move every job by as many days, so that its today is today."""
    days: int = await conn.fetchval("SELECT current_date - window_start::date FROM jobs WHERE id = $1", JOB_ID)
    if days == 0:
        return
    say(f"the dispatch data was loaded {days} days ago: moving every job {days} days on (once per day)")
    await conn.execute(
        "UPDATE jobs SET window_start = window_start + make_interval(days => $1),"
        " window_end = window_end + make_interval(days => $1), assigned_at = assigned_at + make_interval(days => $1),"
        " completed_at = completed_at + make_interval(days => $1), created_at = created_at + make_interval(days => $1)",
        days,
    )
    await conn.execute("VACUUM (ANALYZE) jobs")
