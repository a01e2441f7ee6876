"""Abuse of one tenant against another's nearby: 16 parallel wrong logins (issue 8), and with `--codes` 40
parallel customer-code entries by an assigned technician.

Tenant B is the nearby benchmark's tenant and BD (its data, `bench/database.py`); tenant A ("Attacked Co.") is
added to the same database with a user per round who has a real argon2id password hash (production parameters: the app
runs without GROUNDWORK_ARGON2_FAST), an ops dispatcher and a technician. Measurements, one app process:
1. quiet: wrk runs tenant B's nearby (bench/nearby.lua) after a warm-up: its p99 is the reference;
2. storm: the same, while a second wrk (bench/storm.lua) keeps 16 connections POSTing a wrong password for tenant
   A's user to /v1/auth/token, started before the warm-up and stopped after the run; its answers are counted by
   status (401 verified and wrong, 429 locked, 503 hashing queue full);
3. with `--codes`: the same with 40 connections POSTing a wrong code to /v1/jobs/{id}/code of a job assigned to
   tenant A's technician (created through the API, arrived, its code issued).
These alternate for `rounds` rounds (default 3, `--quick` 2; each round's login storm attacks a victim of its
own, so each starts on an unlocked account): on a shared machine one run's p99 is mostly the neighbours' noise,
so the figure is the median of the storm rounds' p99 divided by the median of the quiet rounds' (target: 2x).
Also reported: the app's resident memory before and its peak (VmHWM) after each storm, and the storms' answer
counts.

`--no-login-throttle` lifts the login limits (GROUNDWORK_LOGIN_MAX_FAILURES*), so that every one of the 16
attempts is a full argon2 verification: what the hashing cap alone holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from backend.auth.passwords import hash_password
from backend.settings import Settings
from bench import cpu, database, loadgen, nearby
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, RunningServer, app_server, mint_token

STORM_SCRIPT = Path(__file__).with_name("storm.lua")
ATTACKED_SLUG = "bench-attacked"
WRONG_PASSWORD = "not the password"  # noqa: S105 - the point is that it is wrong
TARGET_RATIO = 2.0
_MARKER = "BENCH_STORM "

_TENANT_A = UUID("00000000-0000-4000-8000-00000000a001")
_VICTIM = UUID("00000000-0000-4000-8000-00000000a002")
_OPS = UUID("00000000-0000-4000-8000-00000000a003")
_TECH = UUID("00000000-0000-4000-8000-00000000a004")


@dataclass(frozen=True, slots=True)
class LoginsConfig:
    duration: float
    connections: int  # tenant B's nearby connections
    pois: int
    port: int
    warmup: float
    codes: bool = False
    throttle: bool = True
    rounds: int = 3  # quiet, storm(s), alternating: the machine is shared, medians of rounds are read
    login_connections: int = 16
    code_connections: int = 40


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    nearby: loadgen.Measurement
    storm: dict[str, Any] | None
    rss_before_mb: float
    rss_peak_mb: float


def victim_username(round_number: int) -> str:
    return f"victim{round_number}@attacked.bench"


async def _ensure_attacked_tenant(url: str, victims: int) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        have = await conn.fetchval("SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'bd'", _TENANT_A)
        if have >= victims:
            return
        password_hash = hash_password("the victim's real password", fast=False)
        people = [
            (_OPS, "ops@attacked.bench", "ops", "all", "no-login"),
            (_TECH, "tech@attacked.bench", "technician", "self", "no-login"),
        ]
        people += [(UUID(int=_VICTIM.int + n), victim_username(n), "bd", "self", password_hash) for n in range(victims)]
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Attacked Co.') ON CONFLICT DO NOTHING",
                _TENANT_A,
                ATTACKED_SLUG,
            )
            for user_id, username, role, scope, hashed in people:
                await conn.execute(
                    "INSERT INTO users (id, tenant_id, username, display_name, role, data_scope, password_hash)"
                    " VALUES ($1, $2, $3, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    user_id,
                    _TENANT_A,
                    username,
                    role,
                    scope,
                    hashed,
                )
        say(f"tenant A (the attacked tenant): {victims} users with a real argon2id hash, a dispatcher, a technician")
    finally:
        await conn.close()


async def _reset_throttles(url: str) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM login_throttles")
    finally:
        await conn.close()


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def _call(server: RunningServer, method: str, path: str, token: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - our own URL
        f"{server.base_url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{method} {path} answered {exc.code}: {exc.read().decode(errors='replace')}") from exc


def _arrived_job(server: RunningServer, settings: Settings) -> str:
    """A job of tenant A assigned to its technician, accepted, scheduled and arrived: its code is issued."""
    ops = mint_token(settings, user_id=_OPS, tenant_id=_TENANT_A, role="ops", data_scope="all", team_id=None)
    tech = mint_token(settings, user_id=_TECH, tenant_id=_TENANT_A, role="technician", data_scope="self", team_id=None)
    site = {"lat": database.CENTRE_LAT, "lon": database.CENTRE_LON}
    now = datetime.now(UTC)
    _call(
        server,
        "PUT",
        f"/v1/technicians/{_TECH}/profile",
        ops,
        {"skills": ["fiber"], "regions": ["huangpu"], "daily_cap": 50, "available": True, "location": site},
    )
    job_id = str(uuid.uuid4())
    _call(
        server,
        "POST",
        "/v1/jobs",
        ops,
        {
            "id": job_id,
            "job_type": "return_visit",
            "customer_name": "Bench Customer",
            "customer_phone": "+86 138 0000 0000",
            "address": "1 Bench Rd",
            "location": site,
            "geofence_radius_m": 100,
            "region": "huangpu",
            "required_skills": ["fiber"],
            "window_start": (now - timedelta(hours=1)).isoformat(),
            "window_end": (now + timedelta(hours=8)).isoformat(),
            "priority": 2,
        },
    )
    _call(server, "POST", f"/v1/jobs/{job_id}/assign", ops, {"technician_id": str(_TECH)})
    _call(server, "POST", f"/v1/jobs/{job_id}/steps/accept", tech, {})
    _call(
        server,
        "POST",
        f"/v1/jobs/{job_id}/steps/schedule",
        tech,
        {"appointment_at": (now + timedelta(minutes=30)).isoformat()},
    )
    fix = {
        **site,
        "accuracy_m": 8.0,
        "captured_at": (datetime.now(UTC) - timedelta(seconds=2)).isoformat(),
        "age_ms": 2000,
        "provider": "gps",
    }
    _call(server, "POST", f"/v1/jobs/{job_id}/steps/arrive", tech, {"fix": fix})
    say(f"job {job_id} of tenant A arrived; its technician will enter wrong codes")
    return job_id


def _start_storm(
    server: RunningServer, *, path: str, body: dict[str, Any], token: str | None, connections: int, seconds: float
) -> subprocess.Popen[str]:
    env = {**os.environ, "BENCH_PATH": path, "BENCH_BODY": json.dumps(body), "BENCH_TOKEN": token or ""}
    argv = [
        loadgen.wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(STORM_SCRIPT),
        f"{server.base_url}/",
    ]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _storm_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=120)
    lines = [line for line in stdout.splitlines() if line.startswith(_MARKER)]
    if process.returncode != 0 or not lines:
        raise BenchError(f"the storm's wrk failed (exit {process.returncode}):\n{stdout}{stderr}")
    result: dict[str, Any] = json.loads(lines[-1][len(_MARKER) :])
    result["requests_per_s"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    return result


def _measure(
    server: RunningServer,
    config: LoginsConfig,
    data: database.BenchData,
    wrk_env: dict[str, str],
    name: str,
    storm: dict[str, Any] | None,
) -> Phase:
    _, wrk_pids = loadgen.pid_finders(server.pid, data.url)
    rss_before, _ = _rss_mb(server.pid)
    process = None
    if storm is not None:
        say(f"storm: {storm['connections']} connections POST {storm['path']}")
        process = _start_storm(server, seconds=config.warmup + config.duration + 2, **storm)
    try:
        measured = loadgen.warm_then_run_wrk(
            url=f"{server.base_url}/",
            script=nearby.LUA_SCRIPT,
            env=wrk_env,
            connections=config.connections,
            warmup=config.warmup,
            duration=config.duration,
            find_pids=wrk_pids,
            workload=f"tenant B: GET /v1/pois/nearby, {name}",
        )
    finally:
        storm_result = _storm_result(process) if process is not None else None
    _, rss_peak = _rss_mb(server.pid)
    if storm_result is not None:
        refused = {key: storm_result[key] for key in ("2xx", "401", "422", "423", "429", "503", "5xx")}
        say(f"  the storm: {storm_result['requests']} answers ({storm_result['requests_per_s']}/s): {refused}")
    return Phase(name=name, nearby=measured, storm=storm_result, rss_before_mb=rss_before, rss_peak_mb=rss_peak)


QUIET = "quiet"


def logins_name(config: LoginsConfig) -> str:
    return f"{config.login_connections} parallel wrong logins"


def codes_name(config: LoginsConfig) -> str:
    return f"{config.code_connections} parallel code entries"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run(settings: Settings, config: LoginsConfig) -> dict[str, Any]:
    data = database.prepare(settings, config.pois)
    asyncio.run(_ensure_attacked_tenant(data.url, config.rounds))
    asyncio.run(_reset_throttles(data.url))  # every run starts with no lock left by the previous one
    token_b = mint_token(
        settings, user_id=data.user_id, tenant_id=data.tenant_id, role="bd", data_scope="self", team_id=data.team_id
    )
    half_lat, half_lon = database.half_span_deg(nearby.QUERY_BOX_KM)
    wrk_env = {
        "BENCH_TOKEN": token_b,
        "BENCH_LAT": str(database.CENTRE_LAT),
        "BENCH_LON": str(database.CENTRE_LON),
        "BENCH_HALF_LAT": f"{half_lat:.8f}",
        "BENCH_HALF_LON": f"{half_lon:.8f}",
        "BENCH_QUERY": f"&limit={nearby.PAGE_SIZE}&radius_m={nearby.RADIUS_M:.0f}",
    }
    extra_env = {"GROUNDWORK_ARGON2_FAST": ""}  # production argon2 parameters: the point of the benchmark
    if not config.throttle:
        extra_env |= {
            "GROUNDWORK_LOGIN_MAX_FAILURES": "1000000000",
            "GROUNDWORK_LOGIN_MAX_FAILURES_PER_SOURCE": "1000000000",
        }
    busy_before = cpu.machine_busy_cores()
    if busy_before > 0.2:
        say(f"note: the machine is not quiet ({busy_before:.2f} cores busy before the measurements): expect noise")
    phases: list[Phase] = []
    with app_server(
        database_url=data.url, jwt_secret=BENCH_JWT_SECRET, port=config.port, extra_env=extra_env
    ) as server:
        codes: dict[str, Any] | None = None
        if config.codes:
            job_id = _arrived_job(server, settings)
            tech = mint_token(
                settings, user_id=_TECH, tenant_id=_TENANT_A, role="technician", data_scope="self", team_id=None
            )
            codes = {
                "path": f"/v1/jobs/{job_id}/code",
                "body": {"code": "000000"},
                "token": tech,
                "connections": config.code_connections,
            }
        for round_number in range(config.rounds):
            say(f"round {round_number + 1} of {config.rounds}")
            phases.append(_measure(server, config, data, wrk_env, QUIET, None))
            # A victim of its own per round, so that every round's storm starts on an unlocked account and pays
            # the same argon2 verifications (5 per account, then the lock).
            login = {
                "path": "/v1/auth/token",
                "body": {"username": victim_username(round_number), "password": WRONG_PASSWORD, "device_id": "s"},
                "token": None,
                "connections": config.login_connections,
            }
            phases.append(_measure(server, config, data, wrk_env, logins_name(config), login))
        # The code storms last: before the enter_code fix they run the ORM pool dry for 30 s, which would stall
        # the login storms of the rounds after them.
        for round_number in range(config.rounds if codes is not None else 0):
            say(f"code entries, round {round_number + 1} of {config.rounds}")
            phases.append(_measure(server, config, data, wrk_env, codes_name(config), codes))
    quiet_p99 = _median([phase.nearby.latency_ms["p99"] for phase in phases if phase.name == QUIET])
    kinds = [QUIET, logins_name(config), *([codes_name(config)] if config.codes else [])]
    medians = {
        kind: _median([phase.nearby.latency_ms["p99"] for phase in phases if phase.name == kind]) for kind in kinds
    }
    return {
        "benchmark": "logins",
        "config": {
            "duration_s": config.duration,
            "warmup_s": config.warmup,
            "nearby_connections": config.connections,
            "pois": data.poi_count,
            "database": data.name,
            "login_connections": config.login_connections,
            "code_connections": config.code_connections if config.codes else None,
            "login_throttle": config.throttle,
            "rounds": config.rounds,
        },
        "phases": [
            {
                "name": phase.name,
                "nearby": phase.nearby.to_json(),
                "p99_ratio_to_median_quiet": round(phase.nearby.latency_ms["p99"] / quiet_p99, 3),
                "storm": phase.storm,
                "app_rss_before_mb": round(phase.rss_before_mb, 1),
                "app_rss_peak_mb": round(phase.rss_peak_mb, 1),
            }
            for phase in phases
        ],
        "median_p99_ms": {kind: round(value, 3) for kind, value in medians.items()},
        "median_p99_ratio": {kind: round(value / medians[QUIET], 3) for kind, value in medians.items()},
        "target_ratio": TARGET_RATIO,
        "busy_cores_before": round(busy_before, 2),
        "server": database.server_facts(data.url),
    }
