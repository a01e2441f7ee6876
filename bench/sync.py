"""The sync benchmark: a BD's first sync in pages, a no-change pull against pgbench running its SQL, and a push of
500 check-ins, all through the real app (bench/server.py) over the data of bench/sync_data.py.

- **First sync**: POST /v1/sync/pull without a cursor, then with each answer's cursor until `has_more` is false,
  for page sizes 500, 1,000 and 2,000; pages, time, bytes and records per collection, checked against the data.
- **No-change pull**: the statement the engine sends is captured by running `sync.engine.pull` in-process with a
  recording fetcher (so pgbench runs exactly that statement, and the bench fails if a no-change pull ever needs
  more than one); then pgbench runs it and wrk POSTs the same cursor to the endpoint, at the same concurrency.
- **Push**: one POST /v1/sync/push of 500 `visit.check_in` mutations (fixes at the BD's targeted merchants, a
  plausible walk, every verdict expected `verified`), then the very same push again (all duplicates), then the
  pull that brings the results back to the phone.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import os
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from backend.app import SYNC_REGISTRY
from backend.auth.tokens import Principal
from backend.settings import Settings
from bench import cpu, database, loadgen, report, sync_data
from bench.client import JsonClient
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, RunningServer, app_server, mint_token
from mobile_contract.auth import DataScope, Role
from sync import engine as sync_engine
from sync.cursor import CursorCodec

PULL = "/v1/sync/pull"
PUSH = "/v1/sync/push"
COLLECTIONS = ("pois", "work_items", "visits", "jobs")
FIRST_SYNC_LIMITS = (500, 1000, 2000)
MAIN_LIMIT = 1000  # the contract's default page size: the no-change pull and the catch-up pull use it
EXPECTED = {"pois": sync_data.IN_SCOPE, "work_items": sync_data.TARGETED, "visits": 0, "jobs": 0}
CHECK_INS = 500
CHECK_IN_EVERY = timedelta(minutes=5)  # a day and a half of canvassing, queued offline, pushed at once
# $1..$4 of PULL_FIRST_PAGE_SQL, as sync.engine.pull binds them
PULL_PARAMS = ("user_id", "base", "limit", "tenant_id")
LUA_SCRIPT = Path(__file__).with_name("post.lua")
SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class SyncConfig:
    duration: float
    connections: int
    port: int
    warmup: float
    repeats: int  # measured first syncs per page size (the median is reported)


@dataclass(frozen=True, slots=True)
class PullRun:
    """A pull from a cursor (or none) until `has_more` is false: what the phone does."""

    limit: int
    page_seconds: list[float]  # per request, as the client sees it on loopback
    wall_seconds: float  # the whole loop, the client's JSON parsing included
    body_bytes: int
    gzip_bytes: int  # the same bodies gzip'd (level 6), for information: the app does not compress
    upserted: dict[str, int]
    removed: dict[str, int]
    pois_with_open_work: int
    cursor: str

    @property
    def pages(self) -> int:
        return len(self.page_seconds)

    @property
    def server_seconds(self) -> float:
        return sum(self.page_seconds)

    @property
    def records(self) -> int:
        return sum(self.upserted.values()) + sum(self.removed.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "pages": self.pages,
            "server_s": round(self.server_seconds, 4),
            "wall_s": round(self.wall_seconds, 4),
            "page_ms": [round(seconds * 1000, 2) for seconds in self.page_seconds],
            "body_bytes": self.body_bytes,
            "gzip_bytes": self.gzip_bytes,
            "upserted": self.upserted,
            "removed": self.removed,
            "pois_with_open_work_items": self.pois_with_open_work,
        }


@dataclass(frozen=True, slots=True)
class FirstSyncFigures:
    limit: int
    runs: list[PullRun]
    cpu_s_per_sync: dict[str, float]  # app, postgres, load generator: CPU seconds per first sync

    @property
    def median(self) -> PullRun:
        ordered = sorted(self.runs, key=lambda run: run.server_seconds)
        return ordered[(len(ordered) - 1) // 2]

    def to_json(self) -> dict[str, Any]:
        median = self.median
        return {
            "limit": self.limit,
            "median": median.to_json(),
            "server_s_all_runs": [round(run.server_seconds, 4) for run in self.runs],
            "page_ms_p50": round(statistics.median(median.page_seconds) * 1000, 2),
            "page_ms_max": round(max(median.page_seconds) * 1000, 2),
            "records_per_s": round(median.records / median.server_seconds, 1),
            "cpu_s_per_sync": {name: round(value, 4) for name, value in self.cpu_s_per_sync.items()},
        }


@dataclass(frozen=True, slots=True)
class PushFigures:
    mutations: int
    seconds: float
    statuses: dict[str, int]
    verdicts: dict[str, int]
    body_bytes: int
    answer_bytes: int
    cpu_s: dict[str, float]

    @property
    def per_s(self) -> float:
        return self.mutations / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "mutations": self.mutations,
            "seconds": round(self.seconds, 4),
            "mutations_per_s": round(self.per_s, 1),
            "ms_per_mutation": round(self.seconds / self.mutations * 1000, 3),
            "statuses": self.statuses,
            "verdicts": self.verdicts,
            "request_bytes": self.body_bytes,
            "answer_bytes": self.answer_bytes,
            "cpu_s": {name: round(value, 4) for name, value in self.cpu_s.items()},
            "cpu_ms_per_mutation": {
                name: round(value / self.mutations * 1000, 3) for name, value in self.cpu_s.items()
            },
        }


@dataclass(frozen=True, slots=True)
class SyncResult:
    first_syncs: list[FirstSyncFigures]
    sql_side: loadgen.Measurement
    http_side: loadgen.Measurement
    plan_facts: dict[str, Any]
    push: PushFigures
    replay: PushFigures
    catch_up: PullRun
    payload: dict[str, Any]

    @property
    def ratio(self) -> float:
        return self.http_side.requests_per_s / self.sql_side.requests_per_s

    def main_first_sync(self) -> FirstSyncFigures:
        return next(figures for figures in self.first_syncs if figures.limit == MAIN_LIMIT)


# -- first sync and other pulls ------------------------------------------------------------------------------


def _pull_all(client: JsonClient, limit: int, cursor: str | None = None) -> PullRun:
    times: list[float] = []
    bodies: list[bytes] = []
    seen: dict[str, set[str]] = {name: set() for name in COLLECTIONS}
    upserted = dict.fromkeys(COLLECTIONS, 0)
    removed = dict.fromkeys(COLLECTIONS, 0)
    with_work = 0
    started = time.perf_counter()
    while True:
        answer = client.post_json(PULL, {"limit": limit, **({"cursor": cursor} if cursor else {})})
        times.append(answer.seconds)
        bodies.append(answer.body)
        page = answer.json()
        for name in COLLECTIONS:
            changes = page["changes"][name]
            upserted[name] += len(changes["upserted"])
            removed[name] += len(changes["removed"])
            seen[name].update(record["id"] for record in changes["upserted"])
            if name == "pois":
                with_work += sum(1 for record in changes["upserted"] if record["open_work_items"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
        if len(times) > 10_000:
            raise BenchError("the pull never ended (has_more stayed true over 10,000 pages)")
    wall = time.perf_counter() - started
    duplicates = {name: upserted[name] - len(seen[name]) for name in COLLECTIONS if upserted[name] != len(seen[name])}
    if duplicates:
        raise BenchError(f"a pull sent records twice across its pages: {duplicates}")
    return PullRun(
        limit=limit,
        page_seconds=times,
        wall_seconds=wall,
        body_bytes=sum(len(body) for body in bodies),
        gzip_bytes=sum(len(gzip.compress(body, compresslevel=6)) for body in bodies),
        upserted=upserted,
        removed=removed,
        pois_with_open_work=with_work,
        cursor=str(cursor),
    )


def _check_first_sync(run: PullRun, data: sync_data.SyncData) -> None:
    wrong = {name: run.upserted[name] for name in COLLECTIONS if run.upserted[name] != EXPECTED[name]}
    if wrong or any(run.removed.values()) or run.pois_with_open_work != sync_data.TARGETED:
        raise BenchError(
            f"the first sync brought {run.upserted} (removed {run.removed}, {run.pois_with_open_work} merchants with "
            f"an open work item), expected {EXPECTED} and {sync_data.TARGETED}. Drop {data.name} to reload the data."
        )


def _group_pids(data: sync_data.SyncData, server: RunningServer) -> dict[str, list[int]]:
    """The app, every PostgreSQL backend of its (ORM and hot pools), and this process (the client)."""
    backends = database.backend_pids(data.url, "groundwork") + database.backend_pids(data.url, "groundwork-hot")
    return {"app": [server.pid], "postgres": backends, "load generator": [os.getpid()]}


def _cpu_seconds(first: cpu.Snapshot, last: cpu.Snapshot) -> dict[str, float]:
    return {name: last.groups[name] - first.groups[name] for name in first.groups}


def _first_syncs(
    client: JsonClient, data: sync_data.SyncData, server: RunningServer, repeats: int
) -> list[FirstSyncFigures]:
    say(f"first sync warm-up (page size {MAIN_LIMIT}): loads the app's code paths and the server's caches")
    _check_first_sync(_pull_all(client, MAIN_LIMIT), data)
    figures = []
    for limit in FIRST_SYNC_LIMITS:
        pids = _group_pids(data, server)
        before = cpu.snapshot(pids)
        runs = []
        for _ in range(repeats):
            run = _pull_all(client, limit)
            _check_first_sync(run, data)
            runs.append(run)
        used = _cpu_seconds(before, cpu.snapshot(pids))
        result = FirstSyncFigures(limit, runs, {name: value / repeats for name, value in used.items()})
        median = result.median
        say(
            f"  page size {limit}: {median.pages} pages, {median.server_seconds:.2f} s, "
            f"{median.body_bytes / 1e6:.1f} MB ({median.gzip_bytes / 1e6:.2f} MB gzip'd); median of {repeats}"
        )
        figures.append(result)
    return figures


def _settled_cursor(client: JsonClient, data: sync_data.SyncData, cursor: str) -> str:
    """A cursor whose pull finds nothing. A transaction that was open anywhere on the server when the first sync
    read its snapshot holds the cursor back (by design: such a transaction may still write for this user), and
    the pull then re-sends what it wrote after; pull again until the answer is empty."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        page = client.post_json(PULL, {"cursor": cursor, "limit": MAIN_LIMIT}).json()
        if not page["has_more"] and not any(
            page["changes"][name]["upserted"] or page["changes"][name]["removed"] for name in COLLECTIONS
        ):
            return cursor
        if time.monotonic() > deadline:
            oldest = database.fetch(
                data.url,
                "SELECT pid, datname, backend_xid::text, now() - xact_start AS age FROM pg_stat_activity"
                " WHERE backend_xid IS NOT NULL ORDER BY age(backend_xid) DESC LIMIT 1",
                [],
            )
            raise BenchError(
                f"a pull with the last cursor still finds changes after {SETTLE_TIMEOUT_S:.0f} s: a long writing "
                f"transaction on the server holds the snapshot's xmin back ({[dict(row) for row in oldest]})."
            )
        time.sleep(1.0)
        cursor = _pull_all(client, MAIN_LIMIT, cursor).cursor


# -- the no-change pull's statement ---------------------------------------------------------------------------


class _RecordingFetcher:
    """The engine's hot-pool fetcher, recording every statement it is asked to run."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.statements.append((query, args))
        rows: list[asyncpg.Record] = await self._connection.fetch(query, *args)
        return rows


async def _capture_no_change_pull(
    settings: Settings, data: sync_data.SyncData, cursor: str
) -> tuple[str, tuple[Any, ...]]:
    """Run sync.engine.pull in-process as the endpoint does; return the one statement a no-change pull sends."""
    connection: asyncpg.Connection = await asyncpg.connect(data.url)
    engine = create_async_engine(settings.with_database(data.url).sqlalchemy_url, pool_size=1)
    orm_statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        orm_statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    fetcher = _RecordingFetcher(connection)
    principal = Principal(
        user_id=data.user_id,
        tenant_id=data.tenant_id,
        role=Role.BD,
        data_scope=DataScope.SELF,
        team_id=data.team_id,
        device_id="bench",
        expires_at=time.time() + 3600,
    )
    try:
        page = await sync_engine.pull(
            hot=fetcher,
            sessions=async_sessionmaker(engine),
            registry=SYNC_REGISTRY,
            codec=CursorCodec(BENCH_JWT_SECRET.encode()),
            actor=principal,
            tenant_id=data.tenant_id,
            user_id=data.user_id,
            cursor=cursor,
            limit=MAIN_LIMIT,
        )
    finally:
        await connection.close()
        await engine.dispose()
    if any(delta.upserted or delta.removed for delta in page.changes.values()) or page.has_more:
        raise BenchError("the in-process pull with the settled cursor found changes: something writes for the BD")
    if len(fetcher.statements) != 1 or orm_statements:
        raise BenchError(
            f"a no-change pull sent {len(fetcher.statements)} statements on the hot pool and {len(orm_statements)} "
            "through the ORM; the engine promises exactly one on the hot pool (sync/engine.py)."
        )
    statement, args = fetcher.statements[0]
    if statement != sync_engine.PULL_FIRST_PAGE_SQL or len(args) != len(PULL_PARAMS):
        raise BenchError("a no-change pull no longer sends PULL_FIRST_PAGE_SQL: update bench/sync.py")
    return statement, args


def pgbench_script(sql: str) -> str:
    """The pull's statement as a pgbench script: $1..$4 become the variables user_id, base, limit, tenant_id (-D)."""
    body = re.sub(r"\$(\d+)", lambda match: ":" + PULL_PARAMS[int(match.group(1)) - 1], sql)
    return "\n".join(
        [
            "-- POST /v1/sync/pull with a cursor and nothing new: sync/engine.py, PULL_FIRST_PAGE_SQL.",
            "-- Written by bench/sync.py for each run; edit that, not this.",
            body.strip() + ";",
            "",
        ]
    )


def _plan_facts(plan: str) -> dict[str, Any]:
    """What EXPLAIN (ANALYZE, BUFFERS) says about the pull: each scan with the buffers it touched, and the total."""
    lines = plan.splitlines()
    scans: list[dict[str, str]] = []
    for index, line in enumerate(lines):
        if " Scan " not in line and "Scan on" not in line:
            continue
        node = line.strip().removeprefix("->").strip().split("  (")[0]
        buffers = ""
        for below in lines[index + 1 :]:
            if below.strip().startswith("->") or below.strip().startswith("CTE ") or below.startswith("Planning"):
                break
            if below.strip().startswith("Buffers:"):
                buffers = below.strip().removeprefix("Buffers:").strip()
                break
        scans.append({"node": node, "buffers": buffers})
    total = next((line.strip() for line in lines[1:] if line.strip().startswith("Buffers:")), "")
    on_feed = [scan for scan in scans if scan["node"].endswith(" on sync_changes")]
    return {
        "scans": scans,
        "buffers": total,
        "buffers_touched": sum(int(value) for value in re.findall(r"(?:hit|read)=(\d+)", total)),
        "one_index_scan_on_the_feed": len(on_feed) == 1 and "using ix_sync_changes_user_xid" in on_feed[0]["node"],
        "execution_time": next(
            (line.split(":", 1)[1].strip() for line in lines if line.startswith("Execution Time")), ""
        ),
    }


def _describe_scans(facts: dict[str, Any]) -> str:
    return "; ".join(f"{scan['node']} ({scan['buffers'] or 'no buffers'})" for scan in facts["scans"])


# -- push ----------------------------------------------------------------------------------------------------


def _walk(targets: list[sync_data.Target], count: int) -> list[sync_data.Target]:
    """A plausible route: from the merchant nearest the centre, always to the nearest one not yet visited."""
    km_lat, km_lon = database.KM_PER_DEG_LAT, database.KM_PER_DEG_LON

    def km(a: sync_data.Target, lat: float, lon: float) -> float:
        return math.hypot((a.lat - lat) * km_lat, (a.lon - lon) * km_lon)

    left = list(targets)
    here = min(left, key=lambda target: km(target, database.CENTRE_LAT, database.CENTRE_LON))
    route = [here]
    left.remove(here)
    while len(route) < count and left:
        here = min(left, key=lambda target: km(target, here.lat, here.lon))
        route.append(here)
        left.remove(here)
    return route


def push_body(route: list[sync_data.Target], client_id: str) -> bytes:
    """500 check-ins queued offline, one every 5 minutes, each with a GPS fix at the merchant taken 2 s before the
    tap; `age_ms` is the fix's age now (the phone's monotonic clock), so the server trusts the capture times."""
    now = datetime.now(UTC)
    first = now - CHECK_IN_EVERY * len(route)
    mutations = []
    for index, target in enumerate(route):
        captured = first + CHECK_IN_EVERY * index
        fix = {
            "lat": round(target.lat, 7),
            "lon": round(target.lon, 7),
            "accuracy_m": 8.0,
            "captured_at": captured.isoformat(),
            "age_ms": int((now - captured).total_seconds() * 1000),
            "provider": "gps",
        }
        mutations.append(
            {
                "id": index + 1,
                "name": "visit.check_in",
                "args": {"id": str(uuid.uuid4()), "poi_id": str(target.poi_id), "fix": fix},
                "created_at": (captured + timedelta(seconds=2)).isoformat(),
            }
        )
    return json.dumps({"client_id": client_id, "mutations": mutations}).encode()


def _push(
    client: JsonClient, body: bytes, data: sync_data.SyncData, server: RunningServer, *, replay: bool
) -> PushFigures:
    pids = _group_pids(data, server)
    before = cpu.snapshot(pids)
    answer = client.post(PUSH, body)
    used = _cpu_seconds(before, cpu.snapshot(pids))
    if answer.status != 200:
        raise BenchError(f"POST {PUSH} answered {answer.status}: {answer.body[:2000].decode(errors='replace')}")
    results = answer.json()["results"]
    statuses = Counter(result["status"] for result in results)
    verdicts = Counter(
        result["result"]["check_in"]["verdict"]["status"]
        for result in results
        if result.get("result") and "check_in" in result["result"]
    )
    if replay:
        originals = Counter(result.get("original_status") for result in results)
        if statuses != {"duplicate": CHECK_INS} or originals != {"applied": CHECK_INS}:
            raise BenchError(f"the replayed push answered {dict(statuses)} (originally {dict(originals)})")
    elif statuses != {"applied": CHECK_INS}:
        rejected = [result for result in results if result["status"] != "applied"][:3]
        raise BenchError(f"the push answered {dict(statuses)}; not all applied, e.g. {rejected}")
    return PushFigures(
        mutations=len(results),
        seconds=answer.seconds,
        statuses=dict(statuses),
        verdicts=dict(verdicts),
        body_bytes=len(body),
        answer_bytes=len(answer.body),
        cpu_s=used,
    )


# -- the run -------------------------------------------------------------------------------------------------


def run(settings: Settings, config: SyncConfig) -> SyncResult:
    data = sync_data.prepare(settings)
    token = mint_token(
        settings, user_id=data.user_id, tenant_id=data.tenant_id, role="bd", data_scope="self", team_id=data.team_id
    )
    route = _walk(sync_data.targets(data), CHECK_INS)
    feed = sync_data.feed_facts(data)

    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp,
        # One bench user drives every connection of the load: the per-user concurrency limit (backend/limits.py)
        # would answer most of its pulls 429, so it is lifted here; what this bench measures is the path's speed.
        app_server(
            database_url=data.url,
            jwt_secret=BENCH_JWT_SECRET,
            port=config.port,
            extra_env={"GROUNDWORK_USER_CONCURRENCY": "1000"},
        ) as server,
        JsonClient(server.base_url, token) as client,
    ):
        load_before = os.getloadavg()
        busy_before = cpu.machine_busy_cores()
        others = database.other_sessions(data.url)
        if busy_before > 0.2:
            say(
                f"note: the machine is not quiet ({busy_before:.2f} cores busy before the measurements, "
                f"{others} other client sessions on the database server): expect noise"
            )

        # 1. First sync.
        say(
            f"first sync: {sync_data.IN_SCOPE:,} merchants and {sync_data.TARGETED:,} work items, page sizes "
            f"{', '.join(map(str, FIRST_SYNC_LIMITS))}, {config.repeats} runs each"
        )
        first_syncs = _first_syncs(client, data, server, config.repeats)
        cursor = _settled_cursor(client, data, first_syncs[-1].runs[-1].cursor)

        # 2. No-change pull: the engine's statement, pgbench against wrk.
        sql, args = asyncio.run(_capture_no_change_pull(settings, data, cursor))
        variables = {name: str(value) for name, value in zip(PULL_PARAMS, args, strict=True)}
        rows = database.fetch(data.url, sql, list(args))
        if len(rows) != 1 or rows[0]["xid"] is not None:
            raise BenchError(f"PULL_FIRST_PAGE_SQL with the settled cursor returned {len(rows)} rows: expected one")
        plan = database.explain(data.url, sql, list(args))
        plan_facts = _plan_facts(plan)
        say(f"EXPLAIN ANALYZE of the no-change pull: {_describe_scans(plan_facts)}; in all {plan_facts['buffers']}")
        if not plan_facts["one_index_scan_on_the_feed"]:
            raise BenchError(f"the no-change pull is not one index scan on ix_sync_changes_user_xid:\n{plan}")
        script = Path(tmp) / "pull.sql"
        script_text = pgbench_script(sql)
        script.write_text(script_text)

        pgbench_pids, wrk_pids = loadgen.pid_finders(server.pid, data.url)
        sql_side = loadgen.warm_then_run_pgbench(
            conninfo=data.url,
            script=script,
            variables=variables,
            connections=config.connections,
            warmup=config.warmup,
            duration=config.duration,
            find_pids=pgbench_pids,
            workload="pgbench: the no-change pull's SQL (-M prepared)",
        )
        wrk_env = {
            "BENCH_TOKEN": token,
            "BENCH_PATH": PULL,
            "BENCH_BODY": json.dumps({"cursor": cursor, "limit": MAIN_LIMIT}),
        }
        target = f"{server.base_url}{PULL}"
        http_side = loadgen.warm_then_run_wrk(
            url=target,
            script=LUA_SCRIPT,
            env=wrk_env,
            connections=config.connections,
            warmup=config.warmup,
            duration=config.duration,
            find_pids=wrk_pids,
            workload=f"wrk: POST {PULL}, nothing new",
        )
        _settled_cursor(client, data, cursor)  # still nothing new: the runs measured no-change pulls throughout

        # 3. Push.
        body = push_body(route, f"bench-{uuid.uuid4()}")
        say(f"push: {CHECK_INS} visit.check_in mutations in one POST {PUSH} ({len(body) / 1e3:.0f} kB)")
        push = _push(client, body, data, server, replay=False)
        say(f"  {push.per_s:,.0f} mutations/s ({push.seconds:.2f} s); verdicts {push.verdicts}")
        replay = _push(client, body, data, server, replay=True)
        say(f"  the same push again (all duplicates): {replay.per_s:,.0f} mutations/s ({replay.seconds:.2f} s)")
        catch_up = _pull_all(client, MAIN_LIMIT, cursor)
        say(
            f"  the pull that follows: {catch_up.upserted} in {catch_up.pages} pages, {catch_up.server_seconds:.2f} s, "
            f"{catch_up.body_bytes / 1e6:.2f} MB"
        )
        if catch_up.upserted["visits"] != CHECK_INS:
            raise BenchError(f"the pull after the push brought {catch_up.upserted}, expected {CHECK_INS} visits")
        load_after = os.getloadavg()

    ratio = http_side.requests_per_s / sql_side.requests_per_s
    payload = {
        "benchmark": "sync",
        "config": {
            "duration_s": config.duration,
            "warmup_s": config.warmup,
            "connections": config.connections,
            "first_sync_runs_per_page_size": config.repeats,
            "database": data.name,
            "merchants_in_scope": sync_data.IN_SCOPE,
            "work_items": sync_data.TARGETED,
            "leads": sync_data.LEADS,
            "merchants_in_tenant": sync_data.TOTAL_POIS,
            "other_bds": sync_data.OTHER_BDS,
            "feed": feed,
            "check_ins": CHECK_INS,
            "times": "per request as the client sees it on 127.0.0.1 (server time plus a loopback round trip)",
        },
        "first_sync": [figures.to_json() for figures in first_syncs],
        "no_change_pull": {
            "measurements": [sql_side.to_json(), http_side.to_json()],
            "ratio": round(ratio, 4),
            "sql": sql,
            "pgbench_script": script_text,
            "pgbench_variables": variables,
            "plan": plan,
            "plan_facts": plan_facts,
            "request_body": wrk_env["BENCH_BODY"],
        },
        "push": push.to_json(),
        "replay": replay.to_json(),
        "pull_after_push": catch_up.to_json(),
        "noise": {
            "loadavg_before": [round(value, 2) for value in load_before],
            "loadavg_after": [round(value, 2) for value in load_after],
            "busy_cores_before": round(busy_before, 2),
            "other_client_sessions_before": others,
        },
        "server": database.server_facts(data.url, ("pois", "work_items", "sync_changes", "visits")),
    }
    return SyncResult(
        first_syncs=first_syncs,
        sql_side=sql_side,
        http_side=http_side,
        plan_facts=plan_facts,
        push=push,
        replay=replay,
        catch_up=catch_up,
        payload=payload,
    )


# -- what it prints ------------------------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 1e6:.2f}"


def print_result(result: SyncResult, config: SyncConfig, machine: dict[str, Any]) -> list[report.SummaryRow]:
    print()
    print(
        f"## sync: a BD with {sync_data.IN_SCOPE:,} merchants and {sync_data.TARGETED:,} work items in scope, "
        f"{machine['nproc']} cores ({machine['cpu_model']})"
    )
    print()
    print(f"First sync (median of {config.repeats} per page size; times per request as seen on loopback):")
    print()
    rows = []
    for figures in result.first_syncs:
        run = figures.median
        rows.append(
            [
                f"{figures.limit:,}",
                str(run.pages),
                f"{run.server_seconds:.2f}",
                f"{statistics.median(run.page_seconds) * 1000:.0f}",
                f"{max(run.page_seconds) * 1000:.0f}",
                f"{run.records / run.server_seconds:,.0f}",
                _mb(run.body_bytes),
                _mb(run.gzip_bytes),
                f"{figures.cpu_s_per_sync['app']:.2f}",
                f"{figures.cpu_s_per_sync['postgres']:.2f}",
            ]
        )
    print(
        report.markdown(
            [
                "page size",
                "pages",
                "total s",
                "page p50 ms",
                "page max ms",
                "records/s",
                "MB",
                "MB gzip'd",
                "app CPU s",
                "PG CPU s",
            ],
            rows,
        )
    )
    main = result.main_first_sync().median
    print()
    print(f"records per collection: {main.upserted} (checked against the data)")
    print()
    print(f"No-change pull ({config.connections} connections, {config.duration:.0f} s each):")
    print()
    print(report.table([result.sql_side, result.http_side]))
    print()
    facts = result.plan_facts
    print(f"ratio: endpoint/pgbench = {result.ratio:.1%}")
    print(f"plan: {_describe_scans(facts)}; in all {facts['buffers']}, {facts['execution_time']}")
    print()
    print(report.cpu_table([result.sql_side, result.http_side]))
    print()
    push, replay, catch_up = result.push, result.replay, result.catch_up
    print(
        report.markdown(
            ["push", "mutations", "seconds", "mutations/s", "ms each", "app CPU ms each", "PG CPU ms each"],
            [
                [
                    label,
                    str(figures.mutations),
                    f"{figures.seconds:.2f}",
                    f"{figures.per_s:,.0f}",
                    f"{figures.seconds / figures.mutations * 1000:.2f}",
                    f"{figures.cpu_s['app'] / figures.mutations * 1000:.2f}",
                    f"{figures.cpu_s['postgres'] / figures.mutations * 1000:.2f}",
                ]
                for label, figures in (("500 check-ins", push), ("the same again (duplicates)", replay))
            ],
        )
    )
    print()
    print(f"verdicts: {push.verdicts}")
    print(
        f"the pull after the push: {catch_up.upserted} in {catch_up.pages} pages, {catch_up.server_seconds:.2f} s, "
        f"{_mb(catch_up.body_bytes)} MB"
    )
    print()
    first = result.main_first_sync().median
    return [
        report.SummaryRow(
            "sync",
            f"first sync, {first.records:,} records, pages of {MAIN_LIMIT:,}",
            f"{first.pages} pages, {first.server_seconds:.2f} s, {_mb(first.body_bytes)} MB "
            f"({_mb(first.gzip_bytes)} MB gzip'd)",
        ),
        report.SummaryRow(
            "sync",
            "no-change pull",
            f"{result.http_side.requests_per_s:,.0f} req/s, p99 {result.http_side.latency_ms['p99']:.2f} ms",
            f"pgbench {result.sql_side.requests_per_s:,.0f} tps: {result.ratio:.1%}",
        ),
        report.SummaryRow(
            "sync",
            f"push of {push.mutations} check-ins",
            f"{push.per_s:,.0f} mutations/s ({push.seconds:.2f} s)",
            f"replay {replay.per_s:,.0f} mutations/s",
        ),
    ]
