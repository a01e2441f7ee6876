"""The nearby benchmark: GET /v1/pois/nearby through the real app, against pgbench running the SQL it sends.

Both sides run on the same server and data, at the same concurrency, for the same time, one after the other:
pgbench first (the ceiling: what PostgreSQL serves with no application in front), then wrk against the endpoint.
The pgbench script is generated from `nearby_query(NEARBY_BENCH_VARIANT)`, the statement the endpoint prepares,
with the same parameter values, so the two differ only by what the application adds: HTTP, routing, auth, the
asyncpg round trip, building and encoding the answer.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from backend.pois.queries import NEARBY_BENCH_VARIANT, CompiledQuery, nearby_params, nearby_query
from backend.settings import Settings
from bench import cpu, database, loadgen
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, RunningServer, app_server, mint_token

RATIO_TARGET = 0.45  # of pgbench's throughput, with the full feature set (the target)
P99_TARGET_MS = 10.0  # at 4 connections

PAGE_SIZE = 20
# service.nearby asks for one row more than the page to know whether there is a next page (and a cursor):
# the SQL the endpoint sends has LIMIT 21 for a page of 20, so pgbench uses 21 too.
SQL_LIMIT = PAGE_SIZE + 1
RADIUS_M = 2000.0
QUERY_BOX_KM = 10.0  # requests come from random points in the central 10 km of the 50 km box of data

LUA_SCRIPT = Path(__file__).with_name("nearby.lua")


@dataclass(frozen=True, slots=True)
class NearbyResult:
    sql_side: loadgen.Measurement
    http_side: loadgen.Measurement
    payload: dict[str, Any]  # everything for the JSON result

    @property
    def ratio(self) -> float:
        return self.http_side.requests_per_s / self.sql_side.requests_per_s


@dataclass(frozen=True, slots=True)
class NearbyConfig:
    duration: float
    connections: int
    pois: int
    port: int
    warmup: float


def pgbench_script(query: CompiledQuery) -> str:
    """The endpoint's statement as a pgbench script: random origin per transaction, other parameters from -D."""
    half_lat, half_lon = database.half_span_deg(QUERY_BOX_KM)
    # Each $n becomes the pgbench variable of that parameter. lat and lon are drawn here; the others (tenant_id,
    # radius_m, limit) are set with -D, so that -M prepared sends them as bound parameters exactly as asyncpg does.
    # (pgbench \set only computes numbers; a uuid could only be pasted in as a literal, which would let the planner
    # see a constant the endpoint never shows it.) pgbench numbers each occurrence of a variable as its own
    # parameter ($1..$11 instead of $1..$5): the same statement to the planner and the executor.
    sql = re.sub(r"\$(\d+)", lambda match: ":" + query.param_names[int(match.group(1)) - 1], query.sql)
    return "\n".join(
        [
            "-- GET /v1/pois/nearby's SQL: backend/pois/queries.py, nearby_query(NEARBY_BENCH_VARIANT).",
            "-- Written by bench/nearby.py for each run; edit that, not this.",
            f"\\set lat {database.CENTRE_LAT} + (random(0, 1000000) - 500000) / 500000.0 * {half_lat:.8f}",
            f"\\set lon {database.CENTRE_LON} + (random(0, 1000000) - 500000) / 500000.0 * {half_lon:.8f}",
            sql.strip() + ";",
            "",
        ]
    )


def _query_params(data: database.BenchData, lat: float, lon: float) -> dict[str, Any]:
    """The parameters service.nearby binds for a BD's first page of `pool=all` (the bench variant)."""
    return nearby_params(
        tenant_id=data.tenant_id,
        caller_user_id=data.user_id,
        caller_team_id=data.team_id,
        lat=lat,
        lon=lon,
        radius_m=RADIUS_M,
        limit=SQL_LIMIT,
        category=None,
        name=None,
        after=None,
    )


def _mint_token(settings: Settings, data: database.BenchData) -> str:
    return mint_token(
        settings, user_id=data.user_id, tenant_id=data.tenant_id, role="bd", data_scope="self", team_id=data.team_id
    )


def _check_endpoint(server: RunningServer, token: str, data: database.BenchData, query: CompiledQuery) -> None:
    """One real request before measuring: 20 items, and the very rows the SQL gives (so pgbench runs the same)."""
    lat, lon = database.CENTRE_LAT, database.CENTRE_LON
    url = f"{server.base_url}/v1/pois/nearby?lat={lat}&lon={lon}&limit={PAGE_SIZE}&radius_m={RADIUS_M:.0f}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - our own URL
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            page = json.loads(response.read())
    except OSError as exc:  # urllib's HTTPError and URLError are OSErrors
        body = exc.read().decode(errors="replace") if isinstance(exc, urllib.error.HTTPError) else ""
        raise BenchError(f"GET {url} failed: {exc} {body}".strip()) from exc
    items = page.get("items", [])
    if len(items) != PAGE_SIZE or not page.get("next_cursor"):
        raise BenchError(
            f"GET {url} returned {len(items)} items (next_cursor={page.get('next_cursor')!r}); expected {PAGE_SIZE} "
            f"and a cursor. Is the bench data loaded? Drop {data.name} to reload it."
        )
    rows = database.fetch(data.url, query.sql, query.args(_query_params(data, lat, lon)))
    if len(rows) != SQL_LIMIT or [UUID(item["id"]) for item in items] != [row["id"] for row in rows[:PAGE_SIZE]]:
        raise BenchError(
            "the endpoint's answer differs from what nearby_query(NEARBY_BENCH_VARIANT) returns for the same "
            "parameters: pgbench would not run what the endpoint runs. Has service.nearby changed its query?"
        )
    held = sum(1 for item in items if item.get("holder"))
    say(f"checked the endpoint: {len(items)} items ({held} held as leads), same rows as the SQL pgbench runs")


def run(settings: Settings, config: NearbyConfig) -> NearbyResult:
    data = database.prepare(settings, config.pois)
    query = nearby_query(NEARBY_BENCH_VARIANT)
    token = _mint_token(settings, data)
    half_lat, half_lon = database.half_span_deg(QUERY_BOX_KM)
    wrk_env = {
        "BENCH_TOKEN": token,
        "BENCH_LAT": str(database.CENTRE_LAT),
        "BENCH_LON": str(database.CENTRE_LON),
        "BENCH_HALF_LAT": f"{half_lat:.8f}",
        "BENCH_HALF_LON": f"{half_lon:.8f}",
        "BENCH_QUERY": f"&limit={PAGE_SIZE}&radius_m={RADIUS_M:.0f}",
    }
    params = _query_params(data, database.CENTRE_LAT, database.CENTRE_LON)
    variables = {name: str(params[name]) for name in query.param_names if name not in ("lat", "lon")}
    plan = database.explain(data.url, query.sql, query.args(params))
    timing = [line.strip() for line in plan.splitlines() if line.startswith("Execution Time")]
    say(f"EXPLAIN ANALYZE at the centre: {plan.splitlines()[0].strip()} ... {' '.join(timing)}")

    with tempfile.TemporaryDirectory(prefix="bench-nearby-") as tmp:
        script = Path(tmp) / "nearby.sql"
        script_text = pgbench_script(query)
        script.write_text(script_text)
        with app_server(database_url=data.url, jwt_secret=BENCH_JWT_SECRET, port=config.port) as server:
            _check_endpoint(server, token, data, query)
            load_before = os.getloadavg()
            busy_before = cpu.machine_busy_cores()
            others = database.other_sessions(data.url)
            if busy_before > 0.2:
                say(
                    f"note: the machine is not quiet ({busy_before:.2f} cores busy before the measurements, "
                    f"{others} other client sessions on the database server): expect noise"
                )

            pgbench_pids, wrk_pids = loadgen.pid_finders(server.pid, data.url)
            sql_side = loadgen.warm_then_run_pgbench(
                conninfo=data.url,
                script=script,
                variables=variables,
                connections=config.connections,
                warmup=config.warmup,
                duration=config.duration,
                find_pids=pgbench_pids,
                workload="pgbench: the endpoint's SQL (-M prepared)",
            )
            target = f"{server.base_url}/"
            http_side = loadgen.warm_then_run_wrk(
                url=target,
                script=LUA_SCRIPT,
                env=wrk_env,
                connections=config.connections,
                warmup=config.warmup,
                duration=config.duration,
                find_pids=wrk_pids,
                workload=f"wrk: GET /v1/pois/nearby ({PAGE_SIZE} results)",
            )
            load_after = os.getloadavg()

    ratio = http_side.requests_per_s / sql_side.requests_per_s
    payload = {
        "benchmark": "nearby",
        "config": {
            "duration_s": config.duration,
            "warmup_s": config.warmup,
            "connections": config.connections,
            "pois": data.poi_count,
            "database": data.name,
            "page_size": PAGE_SIZE,
            "sql_limit": SQL_LIMIT,
            "radius_m": RADIUS_M,
            "query_box_km": QUERY_BOX_KM,
            "data_box_km": database.BOX_KM,
            "centre": [database.CENTRE_LAT, database.CENTRE_LON],
        },
        "measurements": [sql_side.to_json(), http_side.to_json()],
        "ratio": round(ratio, 4),
        "targets": {
            "ratio_min": RATIO_TARGET,
            "ratio_met": ratio >= RATIO_TARGET,
            "p99_max_ms": P99_TARGET_MS,
            "p99_met": http_side.latency_ms["p99"] < P99_TARGET_MS,
        },
        "noise": {
            "loadavg_before": [round(value, 2) for value in load_before],
            "loadavg_after": [round(value, 2) for value in load_after],
            "busy_cores_before": round(busy_before, 2),
            "other_client_sessions_before": others,
        },
        "sql": query.sql,
        "pgbench_script": script_text,
        "pgbench_variables": variables,
        "plan": plan,
        "server": database.server_facts(data.url),
    }
    return NearbyResult(sql_side=sql_side, http_side=http_side, payload=payload)
