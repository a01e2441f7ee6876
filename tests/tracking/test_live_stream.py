"""GET /v1/tracking/live/stream against a live server with a real HTTP client: a fix ingested for a team member
arrives as a Server-Sent Event; one of another team or another tenant does not; a rolled-back ingest announces
nothing (NOTIFY is delivered on commit only)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.settings import Settings
from backend.tracking import queries, stream
from geo.crs import Crs, from_wgs84
from mobile_contract.auth import DataScope, Role
from tests.factories import Factory, FieldUser, fix
from tests.live_server import LiveServer

Client = AsyncTestClient  # type: ignore[type-arg]
# A safeguard against a hang, not a timed assertion: events arrive within milliseconds.
READ_TIMEOUT_S = 30.0


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream, comments skipped."""
    name, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield name, msgspec.json.decode("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())


async def _report(http: httpx.AsyncClient, user: FieldUser, lat: float, lon: float) -> None:
    body = {"device_id": "p", "positions": [{"id": str(uuid.uuid4()), **fix(lat, lon, ago_s=3), "speed_mps": 1.2}]}
    answer = await http.post("/v1/tracking/positions", json=body, headers=user.headers)
    assert answer.status_code == 200, answer.text


async def test_a_team_members_fix_arrives_and_other_teams_and_tenants_do_not(
    factory: Factory, tracking_server: LiveServer
) -> None:
    tenant, other_tenant = await factory.tenant(), await factory.tenant()
    team, other_team = await factory.team(tenant), await factory.team(tenant)
    boss = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    member = await factory.user(tenant, Role.BD, team_id=team)
    outsider = await factory.user(tenant, Role.BD, team_id=other_team)
    stranger = await factory.user(other_tenant, Role.SUPERVISOR, team_id=await factory.team(other_tenant))

    timeout = httpx.Timeout(READ_TIMEOUT_S)
    async with (
        httpx.AsyncClient(base_url=tracking_server.url, timeout=timeout) as http,
        http.stream("GET", "/v1/tracking/live/stream", params={"crs": "gcj02"}, headers=boss.headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        assert (await anext(stream))[0] == "ready"
        # Sent first, never delivered: another team's BD and another tenant's person.
        await _report(http, outsider, 31.20, 121.40)
        await _report(http, stranger, 31.21, 121.41)
        await _report(http, member, 31.2304, 121.4737)
        name, update = await anext(stream)
    assert name == "position"
    assert update["user_id"] == str(member.id)  # the two before it were filtered out (delivery is in order)
    assert update["state"] == "moving"
    lat, lon = from_wgs84(31.2304, 121.4737, Crs.GCJ02)
    assert update["position"]["point"] == {"lat": round(lat, 7), "lon": round(lon, 7)}


async def test_a_bd_hears_only_themself_and_a_rolled_back_ingest_says_nothing(
    factory: Factory, settings: Settings, tracking_server: LiveServer
) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    bd = await factory.user(tenant, Role.BD, team_id=team)
    colleague = await factory.user(tenant, Role.BD, team_id=team)
    timeout = httpx.Timeout(READ_TIMEOUT_S)
    async with (
        httpx.AsyncClient(base_url=tracking_server.url, timeout=timeout) as http,
        http.stream("GET", "/v1/tracking/live/stream", headers=bd.headers) as response,
    ):
        stream = events(response)
        assert (await anext(stream))[0] == "ready"
        await _report(http, colleague, 31.20, 121.40)
        # The ingest statement run by hand in a transaction that is rolled back: its NOTIFY is never sent.
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = queries.IngestRows.empty()
            now = datetime.now(UTC)
            for column, value in (
                    ("fix_id", uuid.uuid4()), ("recorded_at", now), ("captured_at", now), ("lat", 10.0),
                    ("lon", 10.0), ("accuracy_m", 5.0), ("altitude_m", None), ("speed_mps", None),
                    ("bearing_deg", None), ("battery", None), ("charging", None), ("activity", None),
                    ("event", None), ("provider", None), ("mock", False), ("reasons", ""),
                ):  # fmt: skip
                getattr(rows, column).append(value)
            async with conn.transaction():
                await queries.ensure_partitions(conn, [now.date()])
            tx = conn.transaction()
            await tx.start()
            await queries.insert_fixes(
                conn, tenant_id=tenant, user_id=bd.id, device_id="p", received_at=now, source="app", rows=rows
            )
            await tx.rollback()
        finally:
            await conn.close()
        await _report(http, bd, 31.2304, 121.4737)
        name, update = await anext(stream)
    assert name == "position"
    assert update["user_id"] == str(bd.id)
    assert update["position"]["point"] == {"lat": 31.2304, "lon": 121.4737}  # not the rolled-back (10, 10)


async def test_the_stream_wants_a_token(client: Client) -> None:
    answer = await client.get("/v1/tracking/live/stream")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


TENANTS = [uuid.UUID(int=1), uuid.UUID(int=2)]
TEAMS = [None, uuid.UUID(int=10), uuid.UUID(int=11)]
USERS = [uuid.UUID(int=100), uuid.UUID(int=101)]
PATHS = {None: None, TEAMS[1]: f"/{TEAMS[1]}/", TEAMS[2]: f"/{TEAMS[1]}/{TEAMS[2]}/"}  # team 11 is below team 10


@given(
    tenant=st.sampled_from(TENANTS),
    user=st.sampled_from(USERS),
    team=st.sampled_from(TEAMS),
    scope=st.sampled_from(list(DataScope)),
    caller_team=st.sampled_from(TEAMS),
)
def test_a_subscriber_hears_exactly_what_its_scope_covers(
    tenant: uuid.UUID, user: uuid.UUID, team: uuid.UUID | None, scope: DataScope, caller_team: uuid.UUID | None
) -> None:
    audience = stream.Audience(TENANTS[0], USERS[0], scope, caller_team, PATHS[caller_team])
    notice = stream.Notice(
        tenant_id=tenant, user_id=user, team_id=team, team_path=PATHS[team], recorded_at=datetime.now(UTC),
        lat=0.0, lon=0.0, accuracy_m=5.0, speed_mps=None, bearing_deg=None, battery=None, charging=None,
        activity=None, source="app",
    )  # fmt: skip
    expected = tenant == TENANTS[0] and {
        DataScope.ALL: True,
        DataScope.SELF: user == USERS[0],
        DataScope.TEAM: caller_team is not None and team == caller_team,
        DataScope.TEAM_AND_BELOW: caller_team is not None and team is not None
        and (team == caller_team or (caller_team == TEAMS[1] and team == TEAMS[2])),
    }[scope]  # fmt: skip
    assert audience.sees(notice) == expected


async def test_a_subscriber_that_falls_behind_is_told_to_resync() -> None:
    audience = stream.Audience(TENANTS[0], USERS[0], DataScope.ALL, None, None)
    subscription = stream.Subscription(audience)
    for _ in range(stream.QUEUE_SIZE + 5):
        subscription.offer("x")
    assert subscription.queue.qsize() == 1
    assert await subscription.next(1.0) == stream.RESYNC
    subscription.offer("after")
    assert await subscription.next(1.0) == "after"


async def test_a_stream_ends_after_its_lifetime_and_lets_go_of_its_subscription(
    client: Client, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.tracking import live_routes

    monkeypatch.setattr(live_routes, "MAX_STREAM_S", 0.0)  # the lifetime is up at once
    tenant = await factory.tenant()
    boss = await factory.user(tenant, Role.SUPERVISOR, team_id=await factory.team(tenant))
    answer = await client.get("/v1/tracking/live/stream", headers=boss.headers)
    assert answer.status_code == 200
    events = [line for line in answer.text.splitlines() if line.startswith("event:")]
    assert events == ["event: ready", "event: reconnect"]
    assert client.app.state.live_hub.subscribers == 0
