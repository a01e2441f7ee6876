"""Position ingest: POST /v1/tracking/positions in batches of 500 against the same INSERT run by pgbench.

- **pgbench** runs `backend.tracking.queries.INGEST_SQL` itself, `-M prepared`, with the batch built in SQL from
  `generate_series` (pgbench cannot bind arrays of 500 fresh uuids): the same claim of fix ids, the same trail
  insert, the same move of the latest position, 500 new fixes a transaction. Its fixes/s is the ceiling.
- **HTTP**: `--connections` client threads, each on one keep-alive connection, POST batches of 500 new fixes
  (fresh ids, monotonic ages) to one uvicorn process; the answer of every batch is checked (500 accepted).

Target (issue 10): >= 20,000 fixes/s per process. The ratio HTTP / pgbench is the figure that matters.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from backend.settings import Settings
from backend.tracking import queries
from bench import cpu, database, loadgen
from bench.client import JsonClient
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, app_server, mint_token

BATCH = 500
TARGET_FIXES_PER_S = 20_000
DATABASE = "groundwork_bench_tracking"


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    duration: float
    connections: int
    port: int
    warmup: float


def pgbench_script() -> str:
    """INGEST_SQL with its batch made by the server: 500 fresh fixes at random times of the last hour."""
    sql = queries.INGEST_SQL
    start = sql.index("WITH batch AS (")
    end = sql.index("claimed AS (")
    batch = """WITH batch AS (
    SELECT gen_random_uuid() AS fix_id, now() - random() * interval '1 hour' AS recorded_at, now() AS captured_at,
           31.2 + random() * 0.1 AS lat, 121.4 + random() * 0.1 AS lon, 10::real AS accuracy_m,
           NULL::real AS altitude_m, 1.2::real AS speed_mps, 90::real AS bearing_deg, 80::real AS battery,
           false AS charging, 'walking'::text AS activity, NULL::text AS event, 'gps'::text AS provider,
           false AS mock, ''::text AS reasons
    FROM generate_series(1, 500)
),
"""
    body = sql[:start] + batch + sql[end:]
    for number, name in ((5, "source"), (4, "received_at"), (3, "device_id"), (2, "user_id"), (1, "tenant_id")):
        body = body.replace(f"${number}::", f":{name}::")
    body = body.replace(":received_at::timestamptz", "now()")
    return " ".join(line.strip() for line in body.strip().splitlines()) + ";\n"


async def _people(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT t.id AS t, u.id AS u FROM tenants t JOIN users u ON u.tenant_id = t.id "
            "WHERE t.slug = 'bench-tracking'"
        )
        if row is not None:
            return row["t"], row["u"]
        tenant, user = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench-tracking', 'Bench tracking')", tenant
        )
        await conn.execute(
            "INSERT INTO users (id, tenant_id, username, display_name, role, data_scope, password_hash) "
            "VALUES ($1, $2, 'bench-tracking@bench', 'Bench BD', 'bd', 'self', 'x')",
            user,
            tenant,
        )
        today = datetime.now(UTC).date()
        await queries.ensure_partitions(conn, [today - timedelta(days=1), today, today + timedelta(days=1)])
        return tenant, user
    finally:
        await conn.close()


def _body(counter: int) -> bytes:
    now = datetime.now(UTC)
    fixes = []
    for i in range(BATCH):
        age = 1000 + i * 100
        fixes.append(
            {
                "id": str(uuid.uuid4()),
                "lat": 31.2 + (counter % 1000) * 1e-5,
                "lon": 121.4 + i * 1e-6,
                "accuracy_m": 10.0,
                "captured_at": (now - timedelta(milliseconds=age)).isoformat(),
                "age_ms": age,
                "speed_mps": 1.2,
                "bearing_deg": 90.0,
                "battery": 80.0,
                "charging": False,
                "activity": "walking",
            }
        )
    return msgspec.json.encode({"device_id": "bench", "positions": fixes})


def _http(
    base_url: str, token: str, connections: int, duration: float, meter: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    # Bodies are made before the clock starts: the client shares the machine with the server.
    per_thread = max(4, int(duration * 60 / connections) + 4)
    bodies = [[_body(t * 10_000 + n) for n in range(per_thread)] for t in range(connections)]
    stop = time.perf_counter() + duration
    counts = [0] * connections
    latencies: list[float] = []
    errors: list[str] = []

    def worker(index: int) -> None:
        with JsonClient(base_url, token) as client:
            for body in bodies[index]:
                if time.perf_counter() >= stop:
                    return
                answer = client.post("/v1/tracking/positions", body)
                if answer.status != 200 or answer.json()["accepted"] != BATCH:
                    errors.append(answer.body[:300].decode(errors="replace"))
                    return
                counts[index] += BATCH
                latencies.append(answer.seconds)

    snapshots: list[cpu.Snapshot] = []

    def metering() -> None:
        # Two snapshots inside the steady part of the run (its second and third quarters' ends).
        if meter is None:
            return
        time.sleep(duration / 4)
        snapshots.append(cpu.snapshot(meter))
        time.sleep(duration / 2)
        snapshots.append(cpu.snapshot(meter))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    meter_thread = threading.Thread(target=metering)
    meter_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    meter_thread.join()
    if errors:
        raise BenchError(f"ingest failed: {errors[0]}")
    total = sum(counts)
    answer: dict[str, Any] = {
        "fixes": total,
        "seconds": round(elapsed, 3),
        "fixes_per_s": round(total / elapsed, 1),
        "batch_latency_ms": loadgen.latency_summary_ms(sorted(latencies)),
    }
    if meter is not None and len(snapshots) == 2:
        window = cpu.window(snapshots[0], snapshots[1], total / elapsed, meter)
        answer["cpu"] = window.to_json()  # us_per_request: CPU microseconds per fix, per group of processes
    return answer


def run(settings: Settings, config: TrackingConfig) -> dict[str, Any]:
    url = database.create_and_migrate(settings, DATABASE)
    tenant, user = asyncio.run(_people(url))
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        script = Path(tmp) / "ingest.sql"
        script.write_text(pgbench_script())
        say(f"pgbench: the ingest statement, {config.connections} connections, {config.duration:.0f} s")
        sql_side = loadgen.run_pgbench(
            conninfo=url.replace("postgresql+asyncpg://", "postgresql://"),
            script=script,
            variables={"tenant_id": str(tenant), "user_id": str(user), "device_id": "pgbench", "source": "app"},
            connections=config.connections,
            duration=config.duration,
            log=False,
            find_pids=lambda pid: {
                "postgres": database.backend_pids(url, "pgbench"),
                "load generator": [pid],
            },
        )
    token = mint_token(settings, user_id=user, tenant_id=tenant, role="bd", data_scope="self", team_id=None)
    with app_server(database_url=url, jwt_secret=BENCH_JWT_SECRET, port=config.port) as server:
        say(f"HTTP: POST /v1/tracking/positions, batches of {BATCH}, {config.connections} connections")
        _http(server.base_url, token, config.connections, min(config.warmup, 3.0))
        meter = {
            "app": [server.pid],
            "postgres": database.backend_pids(url, "groundwork-hot"),
            "load generator": [os.getpid()],
        }
        http_side = _http(server.base_url, token, config.connections, config.duration, meter)
    sql_fixes = sql_side.requests_per_s * BATCH
    sql_cpu = sql_side.cpu.to_json() if sql_side.cpu else None
    if sql_cpu is not None:  # per fix, as the HTTP side's (a pgbench transaction is a batch)
        sql_cpu["us_per_request"] = {name: round(us / BATCH, 2) for name, us in sql_cpu["us_per_request"].items()}
    return {
        "batch": BATCH,
        "connections": config.connections,
        "pgbench": {
            "batches_per_s": round(sql_side.requests_per_s, 1),
            "fixes_per_s": round(sql_fixes, 1),
            "cpu": sql_cpu,
        },
        "http": http_side,
        "ratio": round(http_side["fixes_per_s"] / sql_fixes, 3) if sql_fixes else None,
        "target_fixes_per_s": TARGET_FIXES_PER_S,
    }
