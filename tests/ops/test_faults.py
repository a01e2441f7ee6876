"""Restarting PostgreSQL under traffic: 503 problems while it is away, never a hang or a bare 500, and the app
recovers by itself, both pools (SQLAlchemy's and the hot pool), without being restarted.

The restart is of a cluster of this test's own (under `.data/faults/`, on a free port), so the rest of the
suite, sharing the test cluster, is not disturbed. The app runs in a real server process (uvicorn).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest

from backend.auth.tokens import TokenCodec
from backend.db.admin import create_database, with_database_name
from backend.db.embedded import EmbeddedCluster
from backend.db.engine import Database
from backend.db.migrate import upgrade
from backend.settings import Settings, embedded_database_url
from tests.factories import Factory
from tests.live_server import LiveServer, free_port


@dataclass
class FaultRig:
    cluster: EmbeddedCluster
    server: LiveServer
    headers: dict[str, str]


async def _seed(settings: Settings) -> dict[str, str]:
    database = await Database.connect(settings)
    try:
        factory = Factory(database, client=None)  # type: ignore[arg-type]  # no logins: the token is minted
        tenant = await factory.tenant()
        bd = await factory.user(tenant, login=False)
        await factory.poi(tenant)
    finally:
        await database.close()
    token = TokenCodec(settings).issue(
        user_id=bd.id, tenant_id=tenant, role=bd.role.value, data_scope="self", team_id=None, device_id="faults"
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def rig(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultRig]:
    if not settings.embedded:
        pytest.skip("restarting PostgreSQL needs the embedded cluster (DATABASE_URL points at a server we do not run)")
    cluster = EmbeddedCluster(settings.data_dir / "faults", free_port())
    cluster.stop()  # left running by an interrupted run, perhaps on another port
    cluster.ensure_running()
    url = with_database_name(embedded_database_url(cluster.port), "groundwork_faults")
    asyncio.run(create_database(url, drop_first=True))
    upgrade(url)
    fault_settings = replace(settings, database_url=url)
    headers = asyncio.run(_seed(fault_settings))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GROUNDWORK_POOL_TIMEOUT_S", "1")  # a wait for a connection gives up after a second
        env.setenv("GROUNDWORK_RETRY_AFTER_S", "1")
        server = LiveServer(fault_settings, log=tmp_path_factory.mktemp("faults") / "server.log").start()
    try:
        yield FaultRig(cluster, server, headers)
    finally:
        server.stop()
        cluster.stop()


ROUTES = {
    "hot": "/v1/pois/nearby?lat=31.2304&lon=121.4737",  # the hot pool
    "orm": "/v1/me",  # SQLAlchemy's pool
    "ready": "/readyz",
}


@dataclass
class Answer:
    route: str
    phase: str
    status: int
    code: str | None
    retry_after: str | None
    content_type: str


async def _traffic(rig: FaultRig, phase: list[str], answers: list[Answer], stop: asyncio.Event) -> None:
    # A generous per-request bound: a pool waits 1 s at most, so only a hang could reach it (and fails the test).
    async with httpx.AsyncClient(base_url=rig.server.url, timeout=30) as client:
        while not stop.is_set():
            for name, path in ROUTES.items():
                response = await client.get(path, headers=rig.headers)
                is_problem = response.headers.get("content-type", "").startswith("application/problem+json")
                answers.append(
                    Answer(
                        route=name,
                        phase=phase[0],
                        status=response.status_code,
                        code=response.json().get("code") if is_problem else None,
                        retry_after=response.headers.get("retry-after"),
                        content_type=response.headers.get("content-type", ""),
                    )
                )
            await asyncio.sleep(0.02)


def _served_since(answers: list[Answer], phase: str, route: str) -> bool:
    return any(a.phase == phase and a.route == route and a.status == 200 for a in answers)


async def _until(condition: object, what: str, rig: FaultRig) -> None:
    """Wait for the traffic to show something (a progress condition, not a timing assertion: the bound only
    stops a broken app from hanging the suite)."""
    deadline = time.monotonic() + 120
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for: {what}\nserver log:\n{rig.server.log_tail()}")
        await asyncio.sleep(0.1)


async def test_a_postgres_restart_answers_503_then_the_app_recovers_by_itself(rig: FaultRig) -> None:
    phase = ["before"]
    answers: list[Answer] = []
    stop = asyncio.Event()
    traffic = asyncio.ensure_future(_traffic(rig, phase, answers, stop))
    try:
        await _until(lambda: all(_served_since(answers, "before", r) for r in ROUTES), "traffic served", rig)

        phase[0] = "down"
        await asyncio.to_thread(rig.cluster.stop)
        down_from = len(answers)
        await _until(
            lambda: {a.route for a in answers[down_from:] if a.status == 503} == set(ROUTES),
            "a 503 from every route while PostgreSQL is stopped",
            rig,
        )

        phase[0] = "restarted"
        await asyncio.to_thread(rig.cluster.ensure_running)
        await _until(
            lambda: all(_served_since(answers, "restarted", r) for r in ROUTES),
            "every route served again after the restart, by the same server process",
            rig,
        )
        # And it stays recovered: the next rounds are all served.
        phase[0] = "after"
        await _until(lambda: sum(a.phase == "after" for a in answers) >= 3 * len(ROUTES), "three more rounds", rig)
    finally:
        stop.set()
        await traffic

    assert rig.server.process is not None
    assert rig.server.process.poll() is None
    seen = Counter((a.phase, a.route, a.status) for a in answers)
    assert {a.status for a in answers} <= {200, 503}, seen
    for failed in (a for a in answers if a.status == 503):
        assert failed.content_type.startswith("application/problem+json"), failed
        assert failed.code == "service_unavailable", failed
        assert failed.retry_after == "1", failed
    assert all(a.status == 200 for a in answers if a.phase == "after"), seen
    async with httpx.AsyncClient(base_url=rig.server.url) as client:
        assert (await client.get("/healthz")).status_code == 200
