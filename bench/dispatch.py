"""The dispatch benchmark: automatic dispatch of one job among 2,000 technicians (bench/dispatch_data.py).

Three measurements, one request at a time (a dispatcher clicks "dispatch"; what matters is how long it takes):

- **pgbench** runs the candidates statement, `-M prepared`, one connection: the ceiling.
- **In-process**: `backend.assignment.service.candidates()` called N times on a SQLAlchemy async engine like the app's
  (a session per call): the SQL plus the service's Python (SQLAlchemy, building and scoring 2,000 candidates).
- **HTTP**: POST /v1/jobs/{id}/dispatch {"dry_run": true} N times through the real app (bench/server.py), each
  answer checked: everything above plus HTTP, auth, `dispatch_auto`'s checks and encoding the decision.

The statement pgbench runs is the one `candidates()` sends, captured from SQLAlchemy as it goes to asyncpg (the
statuses counted as load go as one array parameter, `-D active={assigned,...}`). pgbench cannot bind NULL (a
`-D` variable is always a string), so a NULL parameter, if a statement has one, becomes `NULLIF(:null_<n>,
'NULL')` with `-D null_<n>=NULL`: still a parameter, so both sides get the same generic plan.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from backend.assignment.service import candidates
from backend.settings import Settings
from bench import cpu, database, dispatch_data, loadgen, report
from bench.client import JsonClient
from bench.progress import BenchError, say
from bench.server import BENCH_JWT_SECRET, app_server, mint_token

REQUESTS = 200  # sequential requests per measurement (--quick: 50)
WARMUP_REQUESTS = 10
IN_PROCESS_APP = "bench-inprocess"  # application_name of the in-process engine's connection
NULL_TEXT = "NULL"  # the -D value of a NULL parameter (see the module's docstring)


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    duration: float  # pgbench's run
    warmup: float
    port: int
    requests: int


@dataclass(frozen=True, slots=True)
class DispatchResult:
    sql_side: loadgen.Measurement
    in_process: loadgen.Measurement
    http_side: loadgen.Measurement | None  # None when the endpoint does not work (see http_problem)
    http_problem: str | None
    decision: dict[str, Any]
    payload: dict[str, Any]

    def measurements(self) -> list[loadgen.Measurement]:
        return [self.sql_side, self.in_process] + ([self.http_side] if self.http_side else [])


@dataclass(frozen=True, slots=True)
class _Captured:
    sql: str
    args: list[Any]


# -- in-process ----------------------------------------------------------------------------------------------


async def _in_process(
    settings: Settings, data: dispatch_data.DispatchData, calls: int
) -> tuple[_Captured, loadgen.Measurement, list[Any]]:
    """Capture the candidates statement, then time `candidates()` `calls` times, a session per call."""
    engine = create_async_engine(
        settings.with_database(data.url).sqlalchemy_url,
        pool_size=1,
        connect_args={"server_settings": {"application_name": IN_PROCESS_APP}},
    )
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        captured.append((statement, parameters))

    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            backend_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        async with sessions() as session:
            views = await candidates(session, data.tenant_id, data.job_id)
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        sent = [(sql, args) for sql, args in captured if "technician_profiles" in sql]
        if len(sent) != 1:
            raise BenchError(f"candidates() sent {len(sent)} statements over technician_profiles; expected one")
        sql, args = sent[0]
        for _ in range(WARMUP_REQUESTS):
            async with sessions() as session:
                await candidates(session, data.tenant_id, data.job_id)
        pids = {"app": [os.getpid()], "postgres": [int(backend_pid or 0)]}
        first = cpu.snapshot(pids)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            async with sessions() as session:
                await candidates(session, data.tenant_id, data.job_id)
            times.append(time.perf_counter() - started)
        last = cpu.snapshot(pids)
    finally:
        await engine.dispose()
    total = sum(times)
    measurement = loadgen.Measurement(
        workload="in-process: assignment.service.candidates()",
        requests=calls,
        seconds=total,
        requests_per_s=calls / total,
        latency_ms=loadgen.latency_summary_ms(times),
        cpu=cpu.window(first, last, calls / total, pids),
        details={"tool": "bench/dispatch.py, a session per call", "note": "app = the bench process itself"},
    )
    return _Captured(sql=sql, args=list(args)), measurement, [view.technician_id for view in views]


# -- pgbench -------------------------------------------------------------------------------------------------


def _variable_names(args: list[Any], data: dispatch_data.DispatchData) -> list[str]:
    """A pgbench variable name per positional parameter (`null_<n>` for a NULL, see the module's docstring)."""
    names: list[str] = []
    for position, value in enumerate(args, start=1):
        if value is None:
            names.append(f"null_{position}")
        elif value == data.job_id:
            names.append("job_id")
        elif value == data.tenant_id:
            names.append("tenant_id")
        elif isinstance(value, list):
            names.append("active")
        else:
            names.append(f"p{position}")
    return names


def _pgbench_text(value: Any) -> str:
    """A parameter as pgbench passes it (text): a list becomes a PostgreSQL array literal, as asyncpg sends it."""
    if isinstance(value, list):
        return "{" + ",".join(str(item) for item in value) + "}"
    return str(value)


def pgbench_script(captured: _Captured, names: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        position = int(match.group(1))
        name = names[position - 1]
        return f"NULLIF(:{name}, '{NULL_TEXT}')" if captured.args[position - 1] is None else ":" + name

    body = re.sub(r"\$(\d+)", substitute, captured.sql)
    return "\n".join(
        [
            "-- POST /v1/jobs/{id}/dispatch's candidates statement: backend/assignment/service.py, _CANDIDATES, as",
            "-- candidates() sends it through SQLAlchemy (the load statuses as one array parameter).",
            f"-- pgbench cannot bind NULL: NULL is NULLIF(:null_<n>, '{NULL_TEXT}') with -D null_<n>={NULL_TEXT}.",
            "-- Written by bench/dispatch.py for each run; edit that, not this.",
            body.strip() + ";",
            "",
        ]
    )


def _literal(value: Any) -> str:
    return "NULL" if value is None else "'" + _pgbench_text(value).replace("'", "''") + "'"


def generic_plan(url: str, captured: _Captured) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the generic plan: the one a prepared statement runs after five executions
    when the planner estimates it no dearer than a custom one (as here), on the app's side and on pgbench's."""

    async def run() -> str:
        conn: asyncpg.Connection = await asyncpg.connect(url)
        try:
            await conn.execute(f"PREPARE bench_candidates AS {captured.sql}")
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            values = ", ".join(_literal(value) for value in captured.args)
            statement = f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_candidates({values})"
            await conn.fetch(statement)
            rows = await conn.fetch(statement)
            return "\n".join(row[0] for row in rows)
        finally:
            await conn.close()

    return asyncio.run(run())


# -- the checks ----------------------------------------------------------------------------------------------


def _sql_decision(data: dispatch_data.DispatchData, captured: _Captured) -> dict[str, Any]:
    rows = database.fetch(data.url, captured.sql, captured.args)
    eligible = [
        row
        for row in rows
        if row["in_region"] and row["skilled"] and row["available"] and row["load"] < row["daily_cap"]
    ]
    return {
        "ids": {row["id"] for row in rows},
        "eligible": len(eligible),
        "full": sum(1 for row in rows if row["load"] >= row["daily_cap"]),
    }


def _check_decision(decision: dict[str, Any], sql: dict[str, Any], chosen: UUID | None) -> None:
    ids = {UUID(view["technician_id"]) for view in decision["candidates"]}
    eligible = sum(1 for view in decision["candidates"] if view["eligible"])
    if ids != sql["ids"] or eligible != sql["eligible"] or len(ids) != dispatch_data.TECHNICIANS:
        raise BenchError(
            f"the dispatch answer ({len(ids)} candidates, {eligible} eligible) differs from the candidates statement "
            f"({len(sql['ids'])} rows, {sql['eligible']} eligible): pgbench would not run what the endpoint runs"
        )
    if decision["chosen"] is None or UUID(decision["chosen"]) != chosen:
        raise BenchError(f"the endpoint chose {decision['chosen']}, candidates() ranks {chosen} first")


# -- the run -------------------------------------------------------------------------------------------------


def run(settings: Settings, config: DispatchConfig) -> DispatchResult:
    data = dispatch_data.prepare(settings)
    token = mint_token(
        settings,
        user_id=data.dispatcher_id,
        tenant_id=data.tenant_id,
        role="ops",
        data_scope="all",
        team_id=data.team_id,
    )
    load_before = os.getloadavg()
    busy_before = cpu.machine_busy_cores()
    others = database.other_sessions(data.url)
    if busy_before > 0.2:
        say(
            f"note: the machine is not quiet ({busy_before:.2f} cores busy before the measurements, "
            f"{others} other client sessions on the database server): expect noise"
        )

    say(f"in-process: candidates() for one job among {data.technicians:,} technicians, {config.requests} calls")
    captured, in_process, ranked = asyncio.run(_in_process(settings, data, config.requests))
    say(f"  {in_process.requests_per_s:,.1f} calls/s, p50 {in_process.latency_ms['p50']:.1f} ms")
    sql_facts = _sql_decision(data, captured)
    names = _variable_names(captured.args, data)
    variables = {
        name: NULL_TEXT if value is None else _pgbench_text(value)
        for name, value in zip(names, captured.args, strict=True)
    }
    plan = database.explain(data.url, captured.sql, captured.args)
    generic = generic_plan(data.url, captured)
    timings = [
        next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Execution Time")), "")
        for text in (plan, generic)
    ]
    say(f"EXPLAIN ANALYZE of the candidates statement: custom plan {timings[0]}, generic plan {timings[1]}")

    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        script = Path(tmp) / "candidates.sql"
        script_text = pgbench_script(captured, names)
        script.write_text(script_text)
        say(f"pgbench warm-up, {config.warmup:.0f} s")
        loadgen.run_pgbench(
            conninfo=data.url, script=script, variables=variables, duration=config.warmup, log=False, connections=1
        )
        say(f"pgbench: the candidates statement, -M prepared, 1 connection, {config.duration:.0f} s")
        sql_side = loadgen.run_pgbench(
            conninfo=data.url,
            script=script,
            variables=variables,
            duration=config.duration,
            find_pids=lambda pid: {"postgres": database.backend_pids(data.url, "pgbench"), "load generator": [pid]},
            workload="pgbench: the candidates SQL (-M prepared)",
            connections=1,
        )
        say(f"  {sql_side.requests_per_s:,.1f} transactions/s")

    http_side: loadgen.Measurement | None = None
    http_problem: str | None = None
    path = f"/v1/jobs/{data.job_id}/dispatch"
    body = json.dumps({"dry_run": True}).encode()
    decision: dict[str, Any] = {}
    with (
        app_server(database_url=data.url, jwt_secret=BENCH_JWT_SECRET, port=config.port) as server,
        JsonClient(server.base_url, token) as client,
    ):
        answer = client.post(path, body)
        if answer.status != 200:
            http_problem = f"POST {path} answered {answer.status}: {answer.body[:500].decode(errors='replace')}"
            say(f"the dispatch endpoint does not work yet ({http_problem}); only the in-process figures count")
        else:
            first = answer.json()
            _check_decision(first, sql_facts, ranked[0] if ranked else None)
            chosen = next(view for view in first["candidates"] if view["technician_id"] == first["chosen"])
            decision = {
                "candidates": len(first["candidates"]),
                "eligible": sql_facts["eligible"],
                "full": sql_facts["full"],
                "chosen": chosen,
                "explanation": first["explanation"],
                "answer_bytes": len(answer.body),
            }
            say(f"checked the endpoint: {first['explanation']}")
            for _ in range(WARMUP_REQUESTS):
                client.post_json(path, {"dry_run": True})
            say(f"HTTP: POST {path} {{dry_run: true}}, {config.requests} requests one after another")
            pids = {
                "app": [server.pid],
                "postgres": database.backend_pids(data.url, "groundwork"),
                "load generator": [os.getpid()],
            }
            before = cpu.snapshot(pids)
            times = []
            for _ in range(config.requests):
                answer = client.post(path, body)
                if answer.status != 200 or json.loads(answer.body)["chosen"] != first["chosen"]:
                    raise BenchError(f"a dispatch answer changed: {answer.status} {answer.body[:300]!r}")
                times.append(answer.seconds)
            after = cpu.snapshot(pids)
            total = sum(times)
            http_side = loadgen.Measurement(
                workload=f"HTTP: POST /v1/jobs/{{id}}/dispatch (dry run, {len(first['candidates']):,} candidates)",
                requests=config.requests,
                seconds=total,
                requests_per_s=config.requests / total,
                latency_ms=loadgen.latency_summary_ms(times),
                cpu=cpu.window(before, after, config.requests / total, pids),
                details={"tool": "bench/client.py, one keep-alive connection, every answer checked"},
            )
            say(f"  {http_side.requests_per_s:,.1f} requests/s, p50 {http_side.latency_ms['p50']:.1f} ms")
    load_after = os.getloadavg()

    payload = {
        "benchmark": "dispatch",
        "config": {
            "requests": config.requests,
            "pgbench_duration_s": config.duration,
            "warmup_s": config.warmup,
            "connections": 1,
            "database": data.name,
            "technicians": data.technicians,
            "jobs_in_tenant": data.jobs,
            "history_days": dispatch_data.HISTORY_DAYS,
            "job": {"region": dispatch_data.JOB_REGION, "skills": list(dispatch_data.JOB_SKILLS)},
            "times": "per request as the client sees it on 127.0.0.1 (server time plus a loopback round trip)",
        },
        "measurements": [m.to_json() for m in (sql_side, in_process, http_side) if m is not None],
        "ratio_http_to_pgbench": round(http_side.requests_per_s / sql_side.requests_per_s, 4) if http_side else None,
        "ratio_in_process_to_pgbench": round(in_process.requests_per_s / sql_side.requests_per_s, 4),
        "http_problem": http_problem,
        "decision": decision,
        "noise": {
            "loadavg_before": [round(value, 2) for value in load_before],
            "loadavg_after": [round(value, 2) for value in load_after],
            "busy_cores_before": round(busy_before, 2),
            "other_client_sessions_before": others,
        },
        "sql": captured.sql,
        "sql_args": [str(value) if value is not None else None for value in captured.args],
        "pgbench_script": script_text,
        "pgbench_variables": variables,
        "plan": plan,  # planned for these values (a custom plan)
        "generic_plan": generic,  # what the app and pgbench run once the prepared statement goes generic
        "execution_time": {"custom_plan": timings[0], "generic_plan": timings[1]},
        "server": database.server_facts(data.url, ("jobs", "technician_profiles", "users")),
    }
    return DispatchResult(
        sql_side=sql_side,
        in_process=in_process,
        http_side=http_side,
        http_problem=http_problem,
        decision=decision,
        payload=payload,
    )


def print_result(result: DispatchResult, config: DispatchConfig, machine: dict[str, Any]) -> list[report.SummaryRow]:
    print()
    print(
        f"## dispatch: one job among {dispatch_data.TECHNICIANS:,} technicians, one request at a time, "
        f"{machine['nproc']} cores ({machine['cpu_model']})"
    )
    print()
    print(report.table(result.measurements()))
    print()
    sql, in_process, http = result.sql_side, result.in_process, result.http_side
    print(f"ratio: in-process candidates()/pgbench = {in_process.requests_per_s / sql.requests_per_s:.1%}")
    if http is not None:
        print(f"ratio: endpoint/pgbench = {http.requests_per_s / sql.requests_per_s:.1%}")
        decision = result.decision
        print(
            f"decision: {decision['candidates']:,} candidates, {decision['eligible']} eligible, {decision['full']} "
            f"full; answer {decision['answer_bytes'] / 1e3:.0f} kB; {decision['explanation']}"
        )
    else:
        print(f"the endpoint was not measured: {result.http_problem}")
    timing = result.payload["execution_time"]
    print(
        f"EXPLAIN ANALYZE of the statement: custom plan {timing['custom_plan']}, generic plan {timing['generic_plan']} "
        "(a prepared statement, the app's as pgbench's, runs the generic one after five executions)"
    )
    print()
    print(report.cpu_table(result.measurements()))
    print()
    headline = http or in_process
    return [
        report.SummaryRow(
            "dispatch",
            "dry-run dispatch, 2,000 technicians" if http else "candidates() in-process (endpoint not working)",
            f"p50 {headline.latency_ms['p50']:.1f} ms, p99 {headline.latency_ms['p99']:.1f} ms "
            f"({headline.requests_per_s:,.1f}/s, 1 connection)",
            f"pgbench {sql.requests_per_s:,.1f} tps: {headline.requests_per_s / sql.requests_per_s:.1%}",
        )
    ]
