"""A check-in judged against the trail in whatever order the two arrive: at once when the fixes came first, again
(a queue job) when they come later; the same final verdict for every delivery order, each change in the history,
the visit bumped for the phone, another tenant's fixes and ids never involved."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.evidence.trail import REJUDGE, request_rejudge
from backend.queue.service import Registry, enqueue
from backend.queue.worker import run_due
from backend.visits import service
from backend.visits.verdicts import rejudge, rejudge_handler
from geo.distance import destination
from geo.stored_fix import StoredFix
from mobile_contract.auth import DataScope, Role
from mobile_contract.visits import CheckIn
from tests.factories import Factory, FieldUser
from tests.geo.test_geo_trail import _stay, _walk

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)
CLOCK = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # what the re-judging job stamps history with


def _registry() -> Registry:
    registry = Registry()
    registry.register(REJUDGE, rejudge_handler(lambda: CLOCK))
    return registry


def _scenario(kind: str, seed: int, at: datetime) -> tuple[tuple[float, float], list[StoredFix]]:
    """Where the check-in's fix says the person is at `at`, and the trail of the hour around it."""
    rng = random.Random(seed)
    if kind == "stay":
        start = destination(*SHOP, rng.uniform(0, 360), 400.0)
        walk, arrived = _walk(
            rng, start, SHOP, begin=at - timedelta(minutes=10), speed_mps=1.2, every_s=20.0, accuracy_m=8.0
        )
        stay = _stay(rng, SHOP, begin=arrived, end=at + timedelta(minutes=8), every_s=20.0, accuracy_m=8.0)
        return SHOP, walk + stay
    if kind == "teleport":  # the phone is 30 km away around the check-in's time
        far = destination(*SHOP, rng.uniform(0, 360), 30_000.0)
        return SHOP, _stay(
            rng, far, begin=at - timedelta(minutes=15), end=at + timedelta(minutes=8), every_s=30.0, accuracy_m=10.0
        )
    # quick exit: at the shop, checks in, drives off at once
    stay = _stay(
        rng, SHOP, begin=at - timedelta(minutes=5), end=at + timedelta(seconds=20), every_s=10.0, accuracy_m=8.0
    )
    drive, _ = _walk(
        rng,
        SHOP,
        destination(*SHOP, rng.uniform(0, 360), 3000.0),
        begin=at + timedelta(seconds=20),
        speed_mps=10.0,
        every_s=10.0,
        accuracy_m=8.0,
    )
    return SHOP, [fix for fix in stay + drive if fix.recorded_at <= at + timedelta(minutes=8)]


def _wire_fix(fix: StoredFix) -> dict[str, Any]:
    # No monotonic age: the trusted time is the phone's own, so a delivery that is a few seconds later than
    # another stores the very same trail.
    return {
        "id": str(fix.fix_id),
        "lat": fix.lat,
        "lon": fix.lon,
        "accuracy_m": fix.accuracy_m,
        "captured_at": fix.recorded_at.isoformat(),
        "provider": "gps",
    }


def _check_in_body(visit_id: UUID, poi: UUID, where: tuple[float, float], at: datetime) -> dict[str, Any]:
    return {
        "id": str(visit_id),
        "poi_id": str(poi),
        "fix": {"lat": where[0], "lon": where[1], "accuracy_m": 8.0, "captured_at": at.isoformat(), "provider": "gps"},
        "checked_in_at": at.isoformat(),
    }


async def _send_fixes(client: Client, user: FieldUser, fixes: list[StoredFix]) -> None:
    body = {"device_id": "phone-1", "positions": [_wire_fix(fix) for fix in fixes]}
    answer = await client.post("/v1/tracking/positions", json=body, headers=user.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["refused"] == 0, answer.text


async def _check_in(client: Client, user: FieldUser, body: dict[str, Any], *, by_sync: bool) -> dict[str, Any]:
    if by_sync:
        mutation = {"id": 1, "name": "visit.check_in", "args": body, "created_at": body["checked_in_at"]}
        answer = await client.post(
            "/v1/sync/push", json={"client_id": f"phone-{user.id}", "mutations": [mutation]}, headers=user.headers
        )
        assert answer.status_code == 200, answer.text
        result = answer.json()["results"][0]
        assert result["status"] == "applied", result
        return dict(result["result"]["check_in"]["verdict"])
    answer = await client.post("/v1/visits", json=body, headers=user.headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json()["check_in"]["verdict"])


async def _verdict(client: Client, user: FieldUser, visit_id: UUID) -> dict[str, Any]:
    answer = await client.get(f"/v1/visits/{visit_id}", headers=user.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["check_in"]["verdict"])


async def _history(client: Client, user: FieldUser, visit_id: UUID) -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/visits/{visit_id}/verdicts", headers=user.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["visit_id"] == str(visit_id)
    return list(answer.json()["items"])


async def _pending_jobs(factory: Factory, tenant: UUID, user: UUID) -> int:
    return await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND kind = :k AND payload->>'user_id' = :u"
        " AND done_at IS NULL AND failed_at IS NULL",
        t=tenant,
        k=REJUDGE,
        u=str(user),
    )


def _status_and_reasons(verdict: dict[str, Any]) -> tuple[str, list[str]]:
    return verdict["status"], verdict["reasons"]


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["stay", "teleport", "quick_exit"]),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
async def test_any_delivery_order_ends_at_the_in_order_verdict_with_each_change_in_history(
    factory: Factory, client: Client, database: Database, kind: str, seed: int, data: st.DataObject
) -> None:
    tenant = await factory.tenant()
    poi = await factory.poi(tenant, *SHOP)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    where, trail = _scenario(kind, seed, at)
    registry = _registry()

    # In order: the whole trail, then the check-in. Judged at once; nothing to judge again.
    steady = await factory.user(tenant)
    await _send_fixes(client, steady, trail)
    steady_visit = uuid.uuid4()
    expected = await _check_in(client, steady, _check_in_body(steady_visit, poi, where, at), by_sync=False)
    await run_due(database, registry, tenant_id=tenant)
    assert await _verdict(client, steady, steady_visit) == expected
    assert await _history(client, steady, steady_visit) == []

    # Any order: the trail shuffled, resent in part, split into batches, the check-in somewhere among them (online
    # or from the offline queue), the queue run now and then and at the end.
    bd = await factory.user(tenant)
    # The same positions and times under fix ids of their own: a fix id is unique within the tenant.
    trail = [replace(fix, fix_id=uuid.uuid4()) for fix in trail]
    resent = data.draw(st.lists(st.sampled_from(trail), max_size=10), label="resent")
    fixes = data.draw(st.permutations(trail + resent), label="order")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(fixes)), max_size=5), label="cuts"))
    batches = [fixes[a:b] for a, b in zip([0, *cuts], [*cuts, len(fixes)], strict=True) if fixes[a:b]]
    check_in_at = data.draw(st.integers(0, len(batches)), label="check-in position")
    by_sync = data.draw(st.booleans(), label="by sync")
    visit = uuid.uuid4()
    first: dict[str, Any] | None = None
    for index in range(len(batches) + 1):
        if index == check_in_at:
            first = await _check_in(client, bd, _check_in_body(visit, poi, where, at), by_sync=by_sync)
        if index < len(batches):
            await _send_fixes(client, bd, batches[index])
            assert await _pending_jobs(factory, tenant, bd.id) <= 1  # one waiting job per user, widened
        if data.draw(st.booleans(), label="run the queue"):
            await run_due(database, registry, tenant_id=tenant)
    await run_due(database, registry, tenant_id=tenant)
    assert await _pending_jobs(factory, tenant, bd.id) == 0

    final = await _verdict(client, bd, visit)
    assert _status_and_reasons(final) == _status_and_reasons(expected)
    assert final == expected
    history = await _history(client, bd, visit)
    assert first is not None
    # The history is the chain of every change: from the first answer to the final verdict, no step a no-op.
    chain = [_status_and_reasons(first)]
    for change in history:
        assert (change["old_status"], change["old_reasons"]) == chain[-1]
        assert (change["new_status"], change["new_reasons"]) != chain[-1]
        assert change["why"] == "late_fixes"
        assert change["claim"] == "check_in"
        assert change["changed_at"] == CLOCK.isoformat().replace("+00:00", "Z")
        chain.append((change["new_status"], change["new_reasons"]))
    assert chain[-1] == _status_and_reasons(final)
    event(f"{kind}: {len(history)} change(s), final {final['status']}")


async def test_late_fixes_reject_a_verified_check_in_and_the_phone_pulls_the_new_verdict(
    factory: Factory, client: Client, database: Database
) -> None:
    tenant = await factory.tenant()
    poi = await factory.poi(tenant, *SHOP)
    bd = await factory.user(tenant)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    where, trail = _scenario("teleport", 1, at)
    visit = uuid.uuid4()
    first = await _check_in(client, bd, _check_in_body(visit, poi, where, at), by_sync=False)
    assert first["status"] == "verified"
    pulled = await client.post("/v1/sync/pull", json={}, headers=bd.headers)
    cursor = pulled.json()["cursor"]

    await _send_fixes(client, bd, trail)
    assert await _pending_jobs(factory, tenant, bd.id) == 1
    assert await _verdict(client, bd, visit) == first  # the job has not run: nothing moved yet
    await run_due(database, _registry(), tenant_id=tenant)

    final = await _verdict(client, bd, visit)
    assert final["status"] == "rejected"
    assert final["reasons"] == ["trail_contradicts"]
    assert final["confidence"] == first["confidence"]  # the fix's own judgment stands
    history = await _history(client, bd, visit)
    assert [(h["old_status"], h["new_status"], h["new_reasons"]) for h in history] == [
        ("verified", "rejected", ["trail_contradicts"])
    ]
    # The next pull carries the visit with its new verdict.
    pulled = await client.post("/v1/sync/pull", json={"cursor": cursor}, headers=bd.headers)
    visits = pulled.json()["changes"]["visits"]["upserted"]
    assert [(v["id"], v["check_in"]["verdict"]["status"]) for v in visits] == [(str(visit), "rejected")]
    # Never dropped or hidden: the visit is still listed, with its evidence.
    listed = await client.get("/v1/visits", headers=bd.headers)
    assert [item["id"] for item in listed.json()["items"]] == [str(visit)]
    # A second run has nothing to do and changes nothing.
    await request_rejudge(database.hot, tenant, bd.id, [at])
    await run_due(database, _registry(), tenant_id=tenant)
    assert len(await _history(client, bd, visit)) == 1


async def test_fixes_first_judge_the_check_in_at_once(factory: Factory, client: Client, database: Database) -> None:
    tenant = await factory.tenant()
    poi = await factory.poi(tenant, *SHOP)
    bd = await factory.user(tenant)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    where, trail = _scenario("quick_exit", 2, at)
    await _send_fixes(client, bd, trail)
    assert await _pending_jobs(factory, tenant, bd.id) == 0  # no check-in near yet: nothing to judge again
    visit = uuid.uuid4()
    verdict = await _check_in(client, bd, _check_in_body(visit, poi, where, at), by_sync=True)
    assert (verdict["status"], verdict["reasons"]) == ("uncertain", ["short_dwell"])
    assert await _history(client, bd, visit) == []


async def test_another_tenants_fixes_never_judge_my_check_in(
    factory: Factory, client: Client, database: Database
) -> None:
    mine, theirs = await factory.tenant(), await factory.tenant()
    poi = await factory.poi(mine, *SHOP)
    bd = await factory.user(mine)
    stranger = await factory.user(theirs)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    where, trail = _scenario("teleport", 3, at)
    visit = uuid.uuid4()
    assert (await _check_in(client, bd, _check_in_body(visit, poi, where, at), by_sync=False))["status"] == "verified"
    await _send_fixes(client, stranger, trail)
    # A job naming the other tenant with my user's id judges nothing of mine either.
    await request_rejudge(database.hot, theirs, bd.id, [at])
    assert await _pending_jobs(factory, theirs, bd.id) == 0  # they have no check-in of that user: nothing queued
    async with database.sessions() as session:
        assert await rejudge(session, theirs, bd.id, at - timedelta(hours=1), at + timedelta(hours=1), now=CLOCK) == 0
        await session.commit()
    await run_due(database, _registry(), tenant_id=mine)
    await run_due(database, _registry(), tenant_id=theirs)
    assert (await _verdict(client, bd, visit))["status"] == "verified"
    assert await _history(client, bd, visit) == []
    # Their user cannot read my visit's history; nor can a BD of my tenant whose scope does not cover it.
    assert (await client.get(f"/v1/visits/{visit}/verdicts", headers=stranger.headers)).status_code == 404
    colleague = await factory.user(mine)
    assert (await client.get(f"/v1/visits/{visit}/verdicts", headers=colleague.headers)).status_code == 404
    supervisor = await factory.user(mine, Role.OPS)
    assert (await client.get(f"/v1/visits/{visit}/verdicts", headers=supervisor.headers)).status_code == 200


async def test_the_history_route_refuses_bad_input(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    for path in ("/v1/visits/not-a-uuid/verdicts", f"/v1/visits/{uuid.uuid4()}/verdicts"):
        answer = await client.get(path, headers=bd.headers)
        assert answer.status_code in (400, 404), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/v1/visits/{uuid.uuid4()}/verdicts")).status_code == 401


async def test_a_bad_job_payload_fails_for_good(factory: Factory, database: Database) -> None:
    tenant = await factory.tenant()
    async with database.sessions() as session:
        await enqueue(session, REJUDGE, {"user_id": "nope"}, tenant_id=tenant)
        await session.commit()
    assert await run_due(database, _registry(), tenant_id=tenant) == 1
    failed = await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND kind = :k AND failed_at IS NOT NULL",
        t=tenant,
        k=REJUDGE,
    )
    assert failed == 1


async def test_a_batch_committing_while_the_check_in_is_open_is_not_missed(
    factory: Factory, client: Client, database: Database
) -> None:
    """The check-in reads the trail, a batch commits (and finds no committed check-in to re-judge), then the
    check-in commits: the job the check-in queued for itself judges it against the batch."""
    tenant = await factory.tenant()
    poi = await factory.poi(tenant, *SHOP)
    bd = await factory.user(tenant)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    where, trail = _scenario("teleport", 4, at)
    earlier = destination(*SHOP, 0.0, 50_000.0)  # the user tracks: a fix this morning, far from all this
    await _send_fixes(
        client,
        bd,
        [
            StoredFix(
                fix_id=uuid.uuid4(), recorded_at=at - timedelta(hours=5), lat=earlier[0], lon=earlier[1], accuracy_m=9.0
            )
        ],
    )
    principal = Principal(bd.id, tenant, bd.role, DataScope.SELF, None, "d", 1e12)
    body = msgspec.convert(_check_in_body(uuid.uuid4(), poi, where, at), CheckIn)
    async with database.sessions() as session:
        visit, created = await service.check_in(session, principal, body, received_at=datetime.now(UTC))
        assert created
        assert visit.check_in.verdict.status.value == "verified"  # the trail it read had nothing near
        await _send_fixes(client, bd, trail)  # commits now, while the check-in's transaction is open
        await session.commit()
    await run_due(database, _registry(), tenant_id=tenant)
    final = await _verdict(client, bd, visit.id)
    assert (final["status"], final["reasons"]) == ("rejected", ["trail_contradicts"])
    assert len(await _history(client, bd, visit.id)) == 1


def test_the_trail_read_names_the_tracking_table_and_columns() -> None:
    """evidence sits below tracking and names its table in SQL: tie the names to tracking's metadata."""
    from backend.evidence import trail
    from backend.tables import Base
    from backend.tracking.models import POSITIONS

    assert trail._POSITIONS == POSITIONS
    columns = set(Base.metadata.tables[POSITIONS].c.keys())
    assert {"tenant_id", "user_id", "fix_id", "recorded_at", "lat", "lon", "accuracy_m", "mock"} <= columns
    assert {"tenant_id", "user_id", "received_at"} <= set(Base.metadata.tables["tracking_latest"].c.keys())
    assert {"tenant_id", "user_id", "check_in_trusted_at"} <= set(Base.metadata.tables["visits"].c.keys())
