"""Tracking reads over 10,000,000 stored fixes: one person's day as a trail and as a timeline, and the live view
of 2,000 people, each against its SQL run by pgbench.

- **Data**: one tenant, a supervisor over one team of 2,000 BDs, each with 1,000 fixes a day (8 hours, a fix every
  ~29 s, walking loops around their own patch) over 5 UTC days ending yesterday: 10,000,000 rows in
  `tracking_positions`, loaded by `generate_series` one day (one partition, 2,000,000 rows) per statement, with
  progress; `tracking_latest` for everyone; the measured person's day derived (stops, trips, ...) by the
  derivation the app runs (`tracking.derived.derive_day`). `tracking_fix_ids` is not filled: no read uses it.
  Loaded once; a second run finds the data and reuses it.
- **pgbench** runs each endpoint's SQL itself (`-M prepared`): the trail's `fixes_between`, every statement of
  the day in one transaction, the live view's statement for the supervisor's scope.
- **HTTP**: wrk GETs the endpoint as the supervisor (`bench/get.lua`), one uvicorn process.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from backend.settings import Settings
from bench import database, loadgen
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, app_server, mint_token

DATABASE = "groundwork_bench_tracking_reads"
PEOPLE = 2_000
DAYS = 5
FIXES_PER_DAY = 1_000
GET_LUA = Path(__file__).with_name("get.lua")


@dataclass(frozen=True, slots=True)
class ReadsConfig:
    duration: float
    connections: int
    port: int
    warmup: float
    people: int = PEOPLE
    days: int = DAYS


@dataclass(frozen=True, slots=True)
class Data:
    url: str
    tenant_id: UUID
    team_id: UUID
    team_path: str
    supervisor_id: UUID
    user_id: UUID  # the person whose day is read
    day: date


def _days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - n) for n in range(count)]


async def _load(url: str, people: int, day_count: int) -> Data:
    from backend.tracking import queries

    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        found = await conn.fetchrow(
            "SELECT t.id AS tenant, tm.id AS team, tm.path, s.id AS supervisor FROM tenants t"
            " JOIN teams tm ON tm.tenant_id = t.id JOIN users s ON s.tenant_id = t.id AND s.role = 'supervisor'"
            " WHERE t.slug = 'bench-reads'"
        )
        if found is not None:
            stored = await conn.fetchval(
                "SELECT count(*) FROM tracking_positions WHERE tenant_id = $1", found["tenant"]
            )
            first = await conn.fetchval(
                "SELECT id FROM users WHERE tenant_id = $1 AND role = 'bd' ORDER BY username LIMIT 1", found["tenant"]
            )
            day = await conn.fetchval("SELECT max(day) FROM tracking_days WHERE tenant_id = $1", found["tenant"])
            if stored == people * day_count * FIXES_PER_DAY and day is not None:
                say(f"found {stored:,} stored fixes of {people:,} people: reusing them")
                return Data(url, found["tenant"], found["team"], found["path"], found["supervisor"], first, day)
            raise BenchError(f"{DATABASE} holds a partial load ({stored:,} fixes): drop the database and run again")
        started = time.perf_counter()
        tenant = await conn.fetchval(
            "INSERT INTO tenants (id, slug, name) VALUES (gen_random_uuid(), 'bench-reads', 'Bench reads') RETURNING id"
        )
        team = await conn.fetchval(
            "INSERT INTO teams (id, tenant_id, name, path) VALUES (gen_random_uuid(), $1, 'Field', '/') RETURNING id",
            tenant,
        )
        path = f"/{team}/"
        await conn.execute("UPDATE teams SET path = $1 WHERE tenant_id = $2 AND id = $3", path, tenant, team)
        supervisor = await conn.fetchval(
            "INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)"
            " VALUES (gen_random_uuid(), $1, $2, 'sup@bench', 'Bench supervisor', 'supervisor', 'team_and_below',"
            " 'x') RETURNING id",
            tenant,
            team,
        )
        await conn.execute(
            "INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)"
            " SELECT gen_random_uuid(), $1, $2, 'bd' || lpad(n::text, 5, '0') || '@bench', 'BD ' || n, 'bd', 'self',"
            " 'x' FROM generate_series(1, $3) AS n",
            tenant,
            team,
            people,
        )
        days = _days(datetime.now(UTC).date(), day_count)
        await queries.ensure_partitions(conn, days)
        say(f"{people:,} people; loading {people * day_count * FIXES_PER_DAY:,} fixes, one day a statement")
        for number, day in enumerate(days, 1):
            begun = time.perf_counter()
            # Each person walks loops of ~1 km around their own patch, 8 hours from 01:00 UTC (09:00 in Shanghai).
            await conn.execute(
                f"""
                INSERT INTO tracking_positions (tenant_id, user_id, fix_id, device_id, recorded_at, captured_at,
                    received_at, lat, lon, accuracy_m, speed_mps, bearing_deg, battery, charging, activity, mock,
                    source, reasons)
                SELECT $1, u.id, gen_random_uuid(), 'bench', at, at, at + interval '5 seconds',
                       31.1 + (u.n % 50) * 0.004 + 0.0015 * sin(i / 40.0),
                       121.3 + (u.n / 50) * 0.005 + 0.0015 * cos(i / 40.0),
                       8 + (i % 7), 1.3, (i * 9) % 360, 100 - i * 0.05, false, 'walking', false, 'app', '{{}}'
                FROM (SELECT id, row_number() OVER (ORDER BY username) AS n FROM users
                      WHERE tenant_id = $1 AND role = 'bd') AS u,
                     generate_series(0, {FIXES_PER_DAY - 1}) AS i,
                     LATERAL (SELECT $2::timestamptz + interval '1 hour' + i * interval '28.8 seconds' AS at) AS t
                ORDER BY u.id, i
                """,  # noqa: S608 - constants of this module
                tenant,
                datetime.combine(day, datetime.min.time(), tzinfo=UTC),
            )
            say(
                f"  day {number}/{day_count} ({day}): {people * FIXES_PER_DAY:,} fixes in "
                f"{time.perf_counter() - begun:.1f} s ({people * FIXES_PER_DAY * number:,} stored)"
            )
        await conn.execute(
            """
            INSERT INTO tracking_latest (tenant_id, user_id, fix_id, device_id, recorded_at, received_at, lat, lon,
                accuracy_m, speed_mps, bearing_deg, battery, charging, activity, event, mock, source)
            SELECT DISTINCT ON (user_id) tenant_id, user_id, fix_id, device_id, recorded_at, received_at, lat, lon,
                accuracy_m, speed_mps, bearing_deg, battery, charging, activity, event, mock, source
            FROM tracking_positions WHERE tenant_id = $1 AND recorded_at >= $2
            ORDER BY user_id, recorded_at DESC
            """,
            tenant,
            datetime.combine(days[-1], datetime.min.time(), tzinfo=UTC),
        )
        say("analyzing")
        await conn.execute("ANALYZE tracking_positions, tracking_latest, users")
        first = await conn.fetchval(
            "SELECT id FROM users WHERE tenant_id = $1 AND role = 'bd' ORDER BY username LIMIT 1", tenant
        )
        say(f"loaded in {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()
    day = days[-1]
    await _derive(url, tenant, first, day)
    return Data(url, tenant, team, path, supervisor, first, day)


async def _derive(url: str, tenant: UUID, user: UUID, day: date) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from backend.tracking import derived

    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with async_sessionmaker(engine)() as session:
            result = await derived.derive_day(session, tenant, user, day)
            await session.commit()
        say(f"derived the measured day: {result}")
    finally:
        await engine.dispose()


def _pgbench(sql: str, names: list[str]) -> str:
    """A statement for pgbench: $n becomes :name, one line."""
    for number in range(len(names), 0, -1):
        sql = sql.replace(f"${number}", f":{names[number - 1]}")
    return " ".join(line.strip() for line in sql.strip().splitlines()) + ";\n"


def _scripts(data: Data) -> dict[str, tuple[str, dict[str, str]]]:
    from backend.tracking import live, queries, timeline
    from mobile_contract.auth import DataScope

    start = datetime.combine(data.day, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    span = timeline.Span.of(start, end)
    base = {
        "tenant": str(data.tenant_id),
        "user": str(data.user_id),
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    day_vars = {**base, "first": span.first_day.isoformat(), "last": span.last_day.isoformat()}
    six = ["tenant", "user", "start", "end", "first", "last"]
    day_sql = "".join(
        _pgbench(sql, six)
        for sql in (
            timeline._PRESENCE_SQL,
            timeline._STOPS_SQL,
            timeline._TRIPS_SQL,
            timeline._GAPS_SQL,
            timeline._EVENTS_SQL,
            timeline._VISITS_SQL,
            timeline._JOB_STEPS_SQL,
        )
    )
    day_sql += _pgbench(timeline._DERIVED_AT_SQL, ["tenant", "user", "first", "last"])
    day_sql += _pgbench(queries._FIXES_BETWEEN_SQL, ["tenant", "user", "start", "end"])
    query = live.live_query(DataScope.TEAM_AND_BELOW)
    params = _scope_values(data)
    names = [name.replace(".", "_") for name in query.compiled.param_names]
    live_vars = {names[i]: str(params[name]) for i, name in enumerate(query.compiled.param_names)}
    return {
        "trail": (_pgbench(queries._FIXES_BETWEEN_SQL, ["tenant", "user", "start", "end"]), base),
        "day": (day_sql, day_vars),
        "live": (_pgbench(query.compiled.sql, names), live_vars),
    }


def _scope_values(data: Data) -> dict[str, Any]:
    from backend.auth.scopes import CALLER_TENANT_ID, scope_params
    from backend.auth.tokens import Principal
    from mobile_contract.auth import DataScope, Role

    principal = Principal(
        user_id=data.supervisor_id,
        tenant_id=data.tenant_id,
        role=Role.SUPERVISOR,
        data_scope=DataScope.TEAM_AND_BELOW,
        team_id=data.team_id,
        device_id="bench",
        expires_at=time.time() + 3600,
    )
    values = dict(scope_params(principal))
    values.setdefault(CALLER_TENANT_ID, data.tenant_id)
    return values


def run(settings: Settings, config: ReadsConfig) -> dict[str, Any]:
    name = DATABASE if config.people == PEOPLE and config.days == DAYS else f"{DATABASE}_{config.people}x{config.days}"
    url = database.create_and_migrate(settings, name)
    data = asyncio.run(_load(url, config.people, config.days))
    token = mint_token(
        settings,
        user_id=data.supervisor_id,
        tenant_id=data.tenant_id,
        role="supervisor",
        data_scope="team_and_below",
        team_id=data.team_id,
    )
    start = datetime.combine(data.day, datetime.min.time(), tzinfo=UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    paths = {
        "trail": f"/v1/tracking/users/{data.user_id}/trail?from={start:{stamp}}&to={start + timedelta(days=1):{stamp}}",
        "day": f"/v1/tracking/users/{data.user_id}/day?date={data.day}&tz=UTC",
        "live": "/v1/tracking/live",
    }
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp,
        app_server(database_url=url, jwt_secret=BENCH_JWT_SECRET, port=config.port) as server,
    ):
        pgbench_pids, wrk_pids = loadgen.pid_finders(server.pid, url)
        for name, (script_text, variables) in _scripts(data).items():
            script = Path(tmp) / f"{name}.sql"
            script.write_text(script_text)
            status, size = _check(server.base_url, paths[name], token)
            sql_side = loadgen.warm_then_run_pgbench(
                conninfo=url,
                script=script,
                variables=variables,
                connections=config.connections,
                warmup=config.warmup,
                duration=config.duration,
                find_pids=pgbench_pids,
                workload=f"pgbench: {name}'s SQL",
            )
            http_side = loadgen.warm_then_run_wrk(
                url=f"{server.base_url}/",
                script=GET_LUA,
                env={"BENCH_TOKEN": token, "BENCH_PATH": paths[name]},
                connections=config.connections,
                warmup=config.warmup,
                duration=config.duration,
                find_pids=wrk_pids,
                workload=f"wrk: GET {paths[name].split('?')[0]}",
            )
            results[name] = {
                "path": paths[name],
                "answer_bytes": size,
                "status": status,
                "pgbench": sql_side.to_json(),
                "http": http_side.to_json(),
                "ratio": round(http_side.requests_per_s / sql_side.requests_per_s, 3),
            }
    fixes = config.people * config.days * FIXES_PER_DAY
    return {"fixes": fixes, "people": config.people, "day": str(data.day), "results": results}


def _check(base_url: str, path: str, token: str) -> tuple[int, int]:
    import urllib.request

    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - the bench's own server
        body = answer.read()
        if answer.status != 200:
            raise BenchError(f"GET {path}: {answer.status}")
        return answer.status, len(body)
