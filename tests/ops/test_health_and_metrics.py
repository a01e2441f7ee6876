"""Liveness, readiness (database and migrations) and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import replace
from typing import Any

import asyncpg
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from backend.app import create_app, openapi_document
from backend.db.admin import create_database, drop_database, with_database_name
from backend.health import code_heads
from backend.observability import HTTP_REQUESTS, RequestContext
from backend.queue.service import enqueue
from backend.settings import Settings
from tests.factories import Factory

# Every route template of the app: the only route label values besides `unmatched`.
TEMPLATES = set(openapi_document()["paths"]) | {"/metrics"}


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def test_liveness_and_readiness_answer_without_a_token(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "migrations": ", ".join(sorted(code_heads()))}


def test_health_and_readiness_are_in_the_openapi_document_and_metrics_is_not() -> None:
    paths = openapi_document()["paths"]
    assert paths["/healthz"]["get"]["operationId"] == "health"
    assert paths["/readyz"]["get"]["operationId"] == "ready"
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert paths["/healthz"]["get"]["security"] == [{}]  # no token needed (OpenAPI: an empty requirement)
    assert "/metrics" not in paths


async def test_a_database_behind_the_code_is_not_ready(settings: Settings) -> None:
    url = with_database_name(settings.database_url, f"groundwork_unmigrated_{os.getpid()}")
    await create_database(url, drop_first=True)
    try:
        app = create_app(replace(settings, database_url=url))
        async with AsyncTestClient(app=app) as unmigrated:
            assert (await unmigrated.get("/healthz")).status_code == 200  # alive: a restart would not help
            ready = await unmigrated.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["code"] == "service_unavailable"
            assert "groundwork db migrate" in ready.json()["detail"]
            assert ready.headers["retry-after"]
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
                await conn.execute("INSERT INTO alembic_version VALUES ('0000older0000')")
            finally:
                await conn.close()
            behind = await unmigrated.get("/readyz")
            assert behind.status_code == 503
            assert "0000older0000" in behind.json()["detail"]
    finally:
        await drop_database(url)


async def test_requests_are_counted_and_timed_by_route_template(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    before = _samples((await client.get("/metrics")).text)
    await client.get("/v1/pois/nearby?lat=31.23&lon=121.47", headers=bd.headers)
    await client.get(f"/v1/pois/{uuid.uuid4()}", headers=bd.headers)
    await client.get("/no/such/route")
    after = _samples((await client.get("/metrics")).text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    total = "groundwork_http_requests_total"
    assert grew(total, method="GET", route="/v1/pois/nearby", status="200") == 1
    assert grew(total, method="GET", route="/v1/pois/{poi_id}", status="404") == 1
    assert grew(total, method="GET", route="unmatched", status="404") == 1
    assert grew("groundwork_http_request_duration_seconds_count", method="GET", route="/v1/pois/nearby") == 1


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for Litestar's router when nothing matched: no `path_template` in the scope."""
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    path=st.text(alphabet=st.characters(codec="ascii", exclude_characters='"\\'), min_size=1, max_size=60),
    method=st.one_of(
        st.sampled_from(["GET", "POST", "DELETE"]),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12),
    ),
)
def test_no_path_or_method_a_client_sends_becomes_a_label_value(path: str, method: str) -> None:
    """Probes must not grow the metrics without bound: routes are templates or `unmatched`, odd methods `OTHER`."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_message: Any) -> None:
        return None

    scope = {"type": "http", "method": method, "path": "/" + path, "headers": [], "state": {}}
    asyncio.run(RequestContext(_not_found)(scope, receive, send))  # type: ignore[arg-type]
    labels = [sample.labels for metric in HTTP_REQUESTS.collect() for sample in metric.samples]
    assert {label["method"] for label in labels} <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "OTHER",
    }
    # The docs pages and their assets are under /schema, the supervisor console's under /console: the document
    # lists neither (their routes are templates all the same).
    assert all(
        label["route"] in TEMPLATES
        or label["route"] == "unmatched"
        or label["route"].startswith(("/schema", "/console"))
        for label in labels
    )


async def test_the_queue_depth_and_the_sync_lag_are_read_at_scrape_time(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
    settings: Settings,
) -> None:
    kind = f"ops.test.{uuid.uuid4().hex[:8]}"  # a kind no worker handles, so the job stays due
    async with factory.database.sessions() as session:
        await enqueue(session, kind, {})
        await enqueue(session, kind, {})
        await session.commit()
    writer = await asyncpg.connect(settings.database_url)
    transaction = writer.transaction()
    await transaction.start()
    try:
        await writer.fetchval("SELECT pg_current_xact_id()")  # a writing transaction: it holds the cursors back
        async with factory.database.sessions() as session:  # and a later one commits: a pull would re-send it
            await session.execute(text("SELECT pg_current_xact_id()"))
            await session.commit()
        samples = _samples((await client.get("/metrics")).text)
    finally:
        await transaction.rollback()
        await writer.close()
        async with factory.database.sessions() as session:
            await session.execute(text("UPDATE background_jobs SET done_at = now() WHERE kind = :k"), {"k": kind})
            await session.commit()
    assert samples[("groundwork_queue_depth", (("kind", kind),))] == 2
    assert samples[("groundwork_queue_oldest_due_seconds", (("kind", kind),))] >= 0
    assert samples[("groundwork_database_up", ())] == 1
    assert samples[("groundwork_sync_lag_seconds", ())] >= 0
    assert samples[("groundwork_sync_lag_xids", ())] >= 1
    for name in ("groundwork_db_pool_connections",):
        assert any(key[0] == name for key in samples), name
    assert samples[("groundwork_db_pool_connections", (("pool", "hot"), ("state", "idle")))] >= 0
    assert any(key[0] == "process_resident_memory_bytes" for key in samples)
