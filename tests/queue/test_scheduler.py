"""The scheduler: each periodic task at most once per period across many workers, failures recorded without
stopping anything, leases that keep a long run from starting twice, the domains' real tasks, and the commands.

Several `Database` objects stand for several worker processes (each has its own connections). Clocks are pinned;
nothing sleeps. Test tasks get fresh names, since the `scheduled_runs` table is shared by the whole run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text

from backend.app import PERIODIC
from backend.cli import main
from backend.db.engine import Database
from backend.offline import tasks as offline_tasks
from backend.offline.models import WatermelonPull
from backend.queue.models import ScheduledRun
from backend.queue.scheduler import AlreadyRunning, Periodic, Scheduler, status
from backend.settings import Settings
from mobile_contract.auth import Role
from sync.feed import Change, record_changes
from tests.factories import Factory, FieldUser
from tests.live_server import REPO
from tests.tasks.helpers import assign, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]
T0 = datetime(2031, 3, 1, 8, 0, tzinfo=UTC)  # a pinned clock, far from the real one


@pytest.fixture(scope="session")
async def workers(settings: Settings) -> AsyncIterator[list[Database]]:
    """Three "worker processes": each its own engine and connections."""
    small = dataclasses.replace(settings, hot_pool_size=1, orm_pool_size=3)
    databases = [await Database.connect(small) for _ in range(3)]
    yield databases
    for database in databases:
        await database.close()


@pytest.fixture(autouse=True)
async def forget_test_tasks(database: Database) -> AsyncIterator[None]:
    """The test tasks' records go when the test ends: `schedule status` then shows the domains' tasks only."""
    yield
    async with database.sessions() as session:
        await session.execute(text("DELETE FROM scheduled_runs WHERE name LIKE 'test.%' OR name LIKE 'gone.%'"))
        await session.commit()


class Recorder:
    """Periodic tasks that write down every start: (task, clock)."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, datetime]] = []
        self.suffix = uuid.uuid4().hex[:8]

    def task(self, what: str, every: timedelta, *, fail: bool = False, **extra: Any) -> Periodic:
        name = f"test.{what}.{self.suffix}"

        async def run(database: Database, now: datetime) -> dict[str, Any]:
            self.starts.append((name, now))
            if fail:
                raise RuntimeError(f"{what} is broken")
            return {"runs": sum(1 for started, _ in self.starts if started == name)}

        return Periodic(name, every=every, run=run, **extra)

    def count(self, periodic: Periodic) -> int:
        return sum(1 for name, _ in self.starts if name == periodic.name)


async def row(database: Database, name: str) -> ScheduledRun:
    async with database.sessions() as session:
        found = await session.get(ScheduledRun, name)
    assert found is not None, name
    return found


# -- at most once per period ----------------------------------------------------------------------------------


async def test_two_workers_ticking_together_run_each_task_once_per_period(workers: list[Database]) -> None:
    recorder = Recorder()
    minutely, hourly = recorder.task("minutely", timedelta(minutes=1)), recorder.task("hourly", timedelta(hours=1))
    a, b = (Scheduler(database, [minutely, hourly], name=f"worker-{i}") for i, database in enumerate(workers[:2]))
    for _ in range(5):  # the same moment, over and over, from both processes at once
        await asyncio.gather(a.tick(now=T0), b.tick(now=T0))
    assert (recorder.count(minutely), recorder.count(hourly)) == (1, 1)

    just_before = T0 + timedelta(minutes=1) - timedelta(microseconds=1)
    await asyncio.gather(a.tick(now=just_before), b.tick(now=just_before))
    assert (recorder.count(minutely), recorder.count(hourly)) == (1, 1)

    for _ in range(3):
        await asyncio.gather(a.tick(now=T0 + timedelta(minutes=1)), b.tick(now=T0 + timedelta(minutes=1)))
    assert (recorder.count(minutely), recorder.count(hourly)) == (2, 1)

    await asyncio.gather(a.tick(now=T0 + timedelta(hours=1)), b.tick(now=T0 + timedelta(hours=1)))
    assert (recorder.count(minutely), recorder.count(hourly)) == (3, 2)
    record = await row(workers[0], minutely.name)
    assert (record.runs, record.last_status, record.last_result) == (3, "ok", {"runs": 3})
    assert record.last_started_at == record.last_finished_at == T0 + timedelta(hours=1)
    assert record.lease_until is None
    assert record.last_worker in ("worker-0", "worker-1")


@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=150),  # seconds the clock moves before the tick
            st.sets(st.integers(min_value=0, max_value=2), min_size=1),  # which workers tick, concurrently
        ),
        min_size=1,
        max_size=12,
    )
)
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_random_clock_moves_and_ticks_run_each_task_exactly_once_per_period(
    workers: list[Database], steps: list[tuple[int, set[int]]]
) -> None:
    """Whatever the ticks of several workers: a task starts when (and only when) its period has passed since its
    previous start, once, whoever ticks. A failing task keeps the same rhythm and stops nothing."""
    recorder = Recorder()
    periodics = [
        recorder.task("fast", timedelta(seconds=45)),
        recorder.task("slow", timedelta(seconds=100)),
        recorder.task("broken", timedelta(seconds=60), fail=True),
    ]
    schedulers = [Scheduler(database, periodics, name=f"w{i}") for i, database in enumerate(workers)]
    last_start: dict[str, datetime] = {}
    now = T0
    for advance, ticking in steps:
        now += timedelta(seconds=advance)
        due = {p.name for p in periodics if p.name not in last_start or now - last_start[p.name] >= p.every}
        before = len(recorder.starts)
        outcomes = await asyncio.gather(*(schedulers[i].tick(now=now) for i in sorted(ticking)))
        started = [name for name, _ in recorder.starts[before:]]
        assert sorted(started) == sorted(due), (now, last_start)
        assert sorted(o.name for batch in outcomes for o in batch) == sorted(due)
        assert all(o.status == ("failed" if "broken" in o.name else "ok") for batch in outcomes for o in batch)
        last_start.update(dict.fromkeys(due, now))
    for periodic in periodics:
        assert (await row(workers[0], periodic.name)).runs == recorder.count(periodic)


async def test_a_long_run_is_not_started_twice(workers: list[Database]) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    name = f"test.long.{uuid.uuid4().hex[:8]}"

    async def long_task(database: Database, now: datetime) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"done": True}

    periodic = Periodic(name, every=timedelta(minutes=1), run=long_task, timeout=timedelta(minutes=10))
    a, b = Scheduler(workers[0], [periodic], name="a"), Scheduler(workers[1], [periodic], name="b")
    first = asyncio.create_task(a.tick(now=T0))
    await started.wait()
    # Three periods later, the first run still holds its lease: nobody starts a second one, not even by hand.
    assert await b.tick(now=T0 + timedelta(minutes=3)) == []
    with pytest.raises(AlreadyRunning) as refused:
        await b.run_now(name, now=T0 + timedelta(minutes=3))
    assert refused.value.worker == "a"
    assert (await row(workers[1], name)).last_status == "running"
    release.set()
    [outcome] = await first
    assert (outcome.status, outcome.result, outcome.recorded) == ("ok", {"done": True}, True)
    [again] = await b.tick(now=T0 + timedelta(minutes=3))  # finished: due again at once, its period has passed
    assert again.status == "ok"


async def test_a_dead_workers_run_is_taken_over_when_its_lease_ends(workers: list[Database]) -> None:
    recorder = Recorder()
    periodic = recorder.task("orphan", timedelta(minutes=1), timeout=timedelta(minutes=5))  # lease: 10 minutes
    dead, alive = Scheduler(workers[0], [periodic], name="dead"), Scheduler(workers[1], [periodic], name="alive")
    [claim] = await dead.claim(now=T0)  # ... and the process is killed before it runs the task
    assert await alive.tick(now=T0 + timedelta(minutes=9)) == []
    [outcome] = await alive.tick(now=T0 + timedelta(minutes=10))
    assert outcome.status == "ok"
    assert recorder.count(periodic) == 1
    # Were the "dead" worker only frozen, its late finish must not overwrite the run that took over.
    late = await dead.run(claim, now=T0 + timedelta(minutes=11))
    assert not late.recorded
    record = await row(workers[0], periodic.name)
    assert (record.last_worker, record.last_started_at, record.runs) == ("alive", T0 + timedelta(minutes=10), 2)


async def test_the_loop_runs_tasks_side_by_side_and_a_stop_lets_runs_in_hand_finish(workers: list[Database]) -> None:
    stop, long_started, quick_ran = asyncio.Event(), asyncio.Event(), asyncio.Event()
    suffix = uuid.uuid4().hex[:8]

    async def long_task(database: Database, now: datetime) -> dict[str, Any]:
        long_started.set()
        await stop.wait()  # still busy when the worker is told to stop ...
        async with database.sessions() as session:  # ... and it still has work to do after that
            await session.execute(text("SELECT 1"))
        return {"finished": True}

    async def quick_task(database: Database, now: datetime) -> dict[str, Any]:
        quick_ran.set()
        return {}

    long = Periodic(f"test.long.{suffix}", every=timedelta(hours=1), run=long_task)
    quick = Periodic(f"test.quick.{suffix}", every=timedelta(hours=1), run=quick_task)
    scheduler = Scheduler(workers[0], [long, quick], name="loop", poll_interval_s=0.01)
    loop = asyncio.create_task(scheduler.run_forever(stop))
    async with asyncio.timeout(30):  # a guard against a hang, not a timing assertion
        await long_started.wait()
        await quick_ran.wait()  # the long run does not hold the quick one up
        stop.set()
        await loop
    record = await row(workers[0], long.name)  # the stop waited for the run in hand, which was recorded
    assert (record.last_status, record.last_result) == ("ok", {"finished": True})


# -- failures --------------------------------------------------------------------------------------------------


async def test_a_failing_task_is_recorded_and_the_others_still_run(
    workers: list[Database], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    good = recorder.task("good", timedelta(minutes=1))
    broken = recorder.task("broken", timedelta(minutes=1), fail=True)
    hanging_name = f"test.hanging.{recorder.suffix}"
    not_json_name = f"test.not_json.{recorder.suffix}"

    async def hangs(database: Database, now: datetime) -> dict[str, Any]:
        await asyncio.Event().wait()  # never set: cut off by its timeout
        return {}

    async def not_json(database: Database, now: datetime) -> dict[str, Any]:
        return {"when": now}

    periodics = [
        good,
        broken,
        Periodic(hanging_name, every=timedelta(minutes=1), run=hangs, timeout=timedelta(milliseconds=50)),
        Periodic(not_json_name, every=timedelta(minutes=1), run=not_json),
    ]
    scheduler = Scheduler(workers[0], periodics, name="w")
    outcomes = {o.name: o for o in await scheduler.tick(now=T0)}
    assert {name: o.status for name, o in outcomes.items()} == {
        good.name: "ok",
        broken.name: "failed",
        hanging_name: "failed",
        not_json_name: "failed",
    }
    assert "RuntimeError: broken is broken" in (outcomes[broken.name].error or "")
    assert "timed out" in (outcomes[hanging_name].error or "")
    assert "Traceback" in caplog.text
    assert "broken is broken" in caplog.text
    failed = await row(workers[0], broken.name)
    assert (failed.last_status, failed.last_result, failed.last_finished_at) == ("failed", None, T0)
    assert "RuntimeError: broken is broken" in (failed.last_error or "")
    async with workers[0].sessions() as session:  # SQL NULL, not a JSON null
        sql_null = "SELECT last_result IS NULL FROM scheduled_runs WHERE name = :name"
        assert await session.scalar(text(sql_null), {"name": broken.name})
    assert (await row(workers[0], good.name)).last_status == "ok"

    # A failure is retried a period later, not at once (no hot loop on a broken task) ...
    assert await scheduler.tick(now=T0 + timedelta(seconds=30)) == []
    later = {o.name: o.status for o in await scheduler.tick(now=T0 + timedelta(minutes=1))}
    assert later[broken.name] == "failed"
    assert later[good.name] == "ok"
    # ... and once it is fixed, the record says so and forgets the error.
    fixed = Periodic(broken.name, every=broken.every, run=good.run)
    [outcome] = await Scheduler(workers[0], [fixed], name="w").tick(now=T0 + timedelta(minutes=2))
    assert outcome.status == "ok"
    record = await row(workers[0], broken.name)
    assert (record.last_status, record.last_error) == ("ok", None)


async def test_declarations_are_checked() -> None:
    async def nothing(database: Database, now: datetime) -> None:
        return None

    for bad in ({"every": timedelta(0)}, {"every": timedelta(minutes=1), "timeout": timedelta(0)}):
        with pytest.raises(ValueError, match="must be positive"):
            Periodic("x.y", run=nothing, **bad)
    with pytest.raises(ValueError, match="name"):
        Periodic("", every=timedelta(minutes=1), run=nothing)
    twice = Periodic("x.y", every=timedelta(minutes=1), run=nothing)
    with pytest.raises(ValueError, match="unique"):
        Scheduler(None, [twice, twice])  # type: ignore[arg-type]


# -- the domains' tasks ----------------------------------------------------------------------------------------


def test_every_domain_task_is_declared_once() -> None:
    names = [p.name for p in PERIODIC]
    assert sorted(names) == [
        "leads.release",
        "leads.warn",
        "offline.prune_watermelon_pulls",
        "sync.tombstones",
        "tasks.expire_work_items",
        "tracking.partitions",
        "tracking.retention",
    ]


async def pull_cursor(client: Client, user: FieldUser) -> str:
    response = await client.post("/v1/sync/pull", json={"limit": 1000}, headers=user.headers)
    assert response.status_code == 200, response.text
    assert not response.json()["has_more"]
    cursor: str = response.json()["cursor"]
    return cursor


async def test_the_tombstone_task_makes_an_old_cursor_resync(
    factory: Factory, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    kept = await factory.poi(tenant, holder_id=bd.id)
    released = [await factory.poi(tenant, holder_id=bd.id) for _ in range(3)]
    old_cursor = await pull_cursor(client, bd)
    async with factory.database.sessions() as session:  # the leads are released, long ago: past the retention
        await session.execute(text("UPDATE pois SET holder_id = NULL WHERE id = ANY(:ids)"), {"ids": released})
        await record_changes(session, tenant, [Change(bd.id, "pois", poi, "remove") for poi in released])
        await session.execute(
            text("UPDATE sync_changes SET changed_at = now() - interval '31 days' WHERE record_id = ANY(:ids)"),
            {"ids": released},
        )
        await session.commit()
    fresh_cursor = await pull_cursor(client, bd)
    assert (await client.post("/v1/sync/pull", json={"cursor": old_cursor}, headers=bd.headers)).status_code == 200

    monkeypatch.setattr(offline_tasks, "BATCH", 1)  # one removal per transaction: the batching loop runs
    outcome = await Scheduler(factory.database, PERIODIC).run_now("sync.tombstones")
    assert outcome.status == "ok"
    assert outcome.result is not None
    assert outcome.result["collected"] >= 3

    remaining = "SELECT count(*) FROM sync_changes WHERE record_id = ANY(:ids)"
    assert await factory.count(remaining, ids=released) == 0
    stale = await client.post("/v1/sync/pull", json={"cursor": old_cursor}, headers=bd.headers)
    assert stale.status_code == 410
    assert stale.json()["code"] == "resync_required"
    # A cursor taken after the removals still works; a full resync is consistent again.
    assert (await client.post("/v1/sync/pull", json={"cursor": fresh_cursor}, headers=bd.headers)).status_code == 200
    full = await client.post("/v1/sync/pull", json={"limit": 1000}, headers=bd.headers)
    assert [p["id"] for p in full.json()["changes"]["pois"]["upserted"]] == [str(kept)]
    # Run again: nothing left to collect, nothing breaks.
    again = await Scheduler(factory.database, PERIODIC).run_now("sync.tombstones")
    assert again.status == "ok"


@given(limit=st.integers(min_value=1, max_value=4))
@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_first_sync_pages_through_after_removals_were_collected(
    factory: Factory, client: Client, limit: int
) -> None:
    """Collected removals refuse an old incremental cursor, never the pages of a first sync (which sends no
    removals): before this was fixed, once anything was collected every first sync that paged got a 410 on its
    second page, and a new phone could never finish syncing."""
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    kept = {await factory.poi(tenant, holder_id=bd.id) for _ in range(5)}
    released = await factory.poi(tenant, holder_id=bd.id)
    old_cursor = await pull_cursor(client, bd)
    async with factory.database.sessions() as session:
        await session.execute(text("UPDATE pois SET holder_id = NULL WHERE id = :id"), {"id": released})
        await record_changes(session, tenant, [Change(bd.id, "pois", released, "remove")])
        await session.execute(
            text("UPDATE sync_changes SET changed_at = now() - interval '31 days' WHERE record_id = :id"),
            {"id": released},
        )
        await session.commit()
    assert (await Scheduler(factory.database, PERIODIC).run_now("sync.tombstones")).status == "ok"

    seen: set[str] = set()
    cursor: str | None = None
    while True:
        body: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await client.post("/v1/sync/pull", json=body, headers=bd.headers)
        assert page.status_code == 200, page.text
        seen |= {p["id"] for p in page.json()["changes"]["pois"]["upserted"]}
        cursor = page.json()["cursor"]
        if not page.json()["has_more"]:
            break
    assert seen == {str(poi) for poi in kept}
    assert (await client.post("/v1/sync/pull", json={"cursor": cursor}, headers=bd.headers)).status_code == 200
    assert (await client.post("/v1/sync/pull", json={"cursor": old_cursor}, headers=bd.headers)).status_code == 410
    watermelon = await client.get("/v1/sync/watermelon", headers=bd.headers)
    assert watermelon.status_code == 200, watermelon.text


async def test_the_expiry_task_expires_a_work_item_whose_campaign_ended(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    now = datetime.now(UTC)
    ending = await create_campaign(
        client, ops, starts_at=(now - timedelta(days=3)).isoformat(), ends_at=(now + timedelta(seconds=1)).isoformat()
    )
    running = await create_campaign(client, ops, title="Still running")
    [ended_item] = await assign(client, ops, ending, [(await factory.poi(tenant), bd.id)])
    [open_item] = await assign(client, ops, running, [(await factory.poi(tenant), bd.id)])

    scheduler = Scheduler(factory.database, PERIODIC)
    outcome = await scheduler.run_now("tasks.expire_work_items", now=now + timedelta(seconds=5))
    assert outcome.status == "ok"
    assert outcome.result is not None
    assert outcome.result["expired"] >= 1
    item = (await client.get(f"/v1/work-items/{ended_item}", headers=bd.headers)).json()
    assert item["status"] == "expired"
    assert (await client.get(f"/v1/work-items/{open_item}", headers=bd.headers)).json()["status"] != "expired"
    # Safe to run twice: the second run finds nothing of ours to expire.
    await scheduler.run_now("tasks.expire_work_items", now=now + timedelta(seconds=6))
    assert (await client.get(f"/v1/work-items/{ended_item}", headers=bd.headers)).json()["status"] == "expired"


async def test_the_prune_task_forgets_old_watermelon_pulls_only(
    factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = uuid.uuid4()
    now = datetime.now(UTC)
    async with factory.database.sessions() as session:
        for timestamp, age in ((1, 40), (2, 31), (3, 29), (4, 0)):
            session.add(
                WatermelonPull(
                    user_id=user, device_id="d", timestamp=timestamp, base=0, created_at=now - timedelta(days=age)
                )
            )
        await session.commit()
    monkeypatch.setattr(offline_tasks, "BATCH", 1)
    outcome = await Scheduler(factory.database, PERIODIC).run_now("offline.prune_watermelon_pulls", now=now)
    assert outcome.status == "ok"
    assert outcome.result is not None
    assert outcome.result["pruned"] >= 2
    async with factory.database.sessions() as session:
        left = await session.scalars(select(WatermelonPull.timestamp).where(WatermelonPull.user_id == user))
        assert sorted(left) == [3, 4]


# -- the commands, and the worker process ----------------------------------------------------------------------


def invoke(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), obj=settings)


async def test_schedule_run_and_status_commands(settings: Settings, database: Database) -> None:
    ran = await asyncio.to_thread(invoke, settings, "schedule", "run", "tasks.expire_work_items")
    assert ran.exit_code == 0, ran.output
    assert "running tasks.expire_work_items now" in ran.output
    assert "tasks.expire_work_items: ok in" in ran.output
    assert '{"expired": ' in ran.output

    shown = await asyncio.to_thread(invoke, settings, "schedule", "status")
    assert shown.exit_code == 0, shown.output
    block = shown.output.split("tasks.expire_work_items  (every 5 min")[1].split("\n\n")[0]
    assert "last run   ok: started " in block
    assert 'result     {"expired": ' in block
    assert "next due   " in block
    assert "(in 4 min)" in block or "(in 5 min)" in block
    for name in ("sync.tombstones", "offline.prune_watermelon_pulls"):
        assert f"{name}  (every 1 h" in shown.output

    # A failed run is shown with its error and what to do next.
    async with database.sessions() as session:
        await session.execute(
            text(
                "INSERT INTO scheduled_runs (name, every, last_started_at, last_finished_at, last_status, last_error,"
                " last_worker, runs) VALUES (:name, interval '1 hour', now(), now(), 'failed',"
                " 'Traceback ...\nRuntimeError: the disk is full', 'host:1', 1)"
            ),
            {"name": f"gone.{uuid.uuid4().hex[:8]}"},
        )
        await session.commit()
    shown = await asyncio.to_thread(invoke, settings, "schedule", "status")
    assert "no longer declared by any domain" in shown.output
    assert "error      RuntimeError: the disk is full" in shown.output
    assert "`groundwork schedule run gone." in shown.output

    unknown = await asyncio.to_thread(invoke, settings, "schedule", "run", "sync.nope")
    assert unknown.exit_code == 2
    assert "no periodic task 'sync.nope'" in unknown.output
    assert "sync.tombstones" in unknown.output


async def test_a_command_on_an_unmigrated_database_says_what_to_do(settings: Settings) -> None:
    from backend.db.admin import create_database, drop_database, with_database_name

    url = with_database_name(settings.database_url, f"groundwork_empty_{os.getpid()}")
    await create_database(url, drop_first=True)
    try:
        shown = await asyncio.to_thread(invoke, settings.with_database(url), "schedule", "status")
    finally:
        await drop_database(url)
    assert shown.exit_code == 1
    assert "the database is not migrated yet: run `groundwork db migrate`" in shown.output


async def test_the_worker_process_runs_the_schedule_and_stops_on_sigterm(
    settings: Settings, database: Database
) -> None:
    async with database.sessions() as session:  # make the domains' tasks due, whatever ran before
        await session.execute(text("DELETE FROM scheduled_runs WHERE name = ANY(:names)"), {"names": _names()})
        await session.commit()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "GROUNDWORK_JWT_SECRET": settings.jwt_secret,
        "GROUNDWORK_SCHEDULER_POLL_S": "3600",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from backend.cli import main; main()",
        "worker",
        "--concurrency",
        "1",
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    waiting = set(_names())
    try:
        async with asyncio.timeout(60):  # a guard against a hang, not a timing assertion
            while waiting:
                line = (await process.stderr.readline()).decode()
                assert line, "the worker exited:\n" + "".join(lines)
                lines.append(line)
                waiting -= {name for name in waiting if f"{name}: run " in line and " ok: " in line}
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rest = (await process.stderr.read()).decode()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, "".join(lines) + rest
    stopped = [line for line in rest.splitlines() if line.endswith(" stopped")]
    assert any("groundwork.scheduler" in line and " stopped" in line for line in stopped), rest
    assert any("groundwork.queue" in line and " stopped" in line for line in stopped), rest
    statuses = (await status(database, PERIODIC))[1]
    assert {t.name: t.last_status for t in statuses if t.declared} == dict.fromkeys(_names(), "ok")
    assert all(json.dumps(t.last_result) for t in statuses if t.declared)


def _names() -> list[str]:
    return sorted(p.name for p in PERIODIC)
