"""Poison-proof pushes: a mutation's bug is stored as `failed` and the queue goes on; an operator re-runs it;
refusals and failures bump what they name; a refusal may keep its effects; outages fail the request; batch
claims stay exactly-once under concurrent identical pushes, for any mix of outcomes (hypothesis)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from backend import cli
from backend.app import SYNC_REGISTRY as REGISTRY
from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.errors import DomainError
from backend.settings import Settings
from mobile_contract.auth import DataScope, Role
from mobile_contract.errors import ErrorCode
from mobile_contract.sync import Mutation, MutationStatus
from sync import engine
from sync.feed import Change, record_changes
from sync.registry import MutationMeta, MutationSpec, touching
from tests.factories import Factory, FieldUser
from tests.sync.test_sync import SHOP, Client, check_in_mutation, pull_all
from tests.tasks.helpers import assign, create_campaign


class MarkArgs(msgspec.Struct, forbid_unknown_fields=True):
    visit_id: UUID  # what the mutation is about (bumped on refusal or failure)
    marker: UUID  # where its effect is written


BROKEN: dict[str, Any] = {"flaky": True, "outage": "SELECT 1"}


async def _mark(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> None:
    # A non-idempotent effect: one new feed row per application, so applying twice would show as two rows.
    await record_changes(
        session, principal.tenant_id, [Change(principal.user_id, f"t:{args.marker.hex[:28]}", uuid.uuid4())]
    )


async def _good(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> dict[str, Any]:
    await _mark(session, principal, args, meta)
    return {"marker": str(args.marker)}


async def _flaky(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> dict[str, Any]:
    await _mark(session, principal, args, meta)  # written, then the bug: must be rolled back
    if BROKEN["flaky"]:
        raise KeyError("a bug in the handler")
    return {"marker": str(args.marker)}


async def _refuse(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> None:
    await _mark(session, principal, args, meta)
    raise DomainError(ErrorCode.CONFLICT, "refused after writing")


async def _refuse_keeping(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> None:
    await _mark(session, principal, args, meta)
    raise DomainError(ErrorCode.CODE_INVALID, "refused, the attempt counts", keep_effects=True)


async def _sql_error(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> None:
    await _mark(session, principal, args, meta)
    await session.execute(text("SELECT 1 / 0"))  # a statement error: only the savepoint is lost


async def _outage(session: AsyncSession, principal: Principal, args: MarkArgs, meta: MutationMeta) -> None:
    await session.execute(text(str(BROKEN["outage"])))


TEST_MUTATIONS = {
    "test.good": _good,
    "test.flaky": _flaky,
    "test.refuse": _refuse,
    "test.refuse_keeping": _refuse_keeping,
    "test.sql_error": _sql_error,
    "test.outage": _outage,
}


@pytest.fixture(scope="module", autouse=True)
def test_mutations() -> Iterator[None]:
    for name, handler in TEST_MUTATIONS.items():
        REGISTRY.mutation(MutationSpec(name, MarkArgs, handler, touches=touching(("visits", "visit_id"))))
    yield
    for name in TEST_MUTATIONS:
        del REGISTRY.mutations[name]


def mark(mutation_id: int, name: str, marker: UUID | None = None, visit_id: UUID | None = None) -> dict[str, Any]:
    return {
        "id": mutation_id,
        "name": name,
        "args": {"visit_id": str(visit_id or uuid.uuid4()), "marker": str(marker or uuid.uuid4())},
        "created_at": datetime.now(UTC).isoformat(),
    }


async def applications(factory: Factory, user: FieldUser, marker: str) -> int:
    return await factory.count(
        "SELECT count(*) FROM sync_changes WHERE user_id = :u AND collection = :c",
        u=user.id,
        c=f"t:{UUID(marker).hex[:28]}",
    )


async def push(
    client: Client, user: FieldUser, mutations: list[dict[str, Any]], client_id: str = "phone-f", **headers: str
) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/sync/push",
        json={"client_id": client_id, "mutations": mutations},
        headers={**user.headers, **headers},
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert [r["id"] for r in results] == [m["id"] for m in mutations]
    return results


async def test_a_failing_mutation_is_stored_and_the_queue_goes_on_then_an_operator_reruns_it(
    factory: Factory, client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    visit_id = uuid.uuid4()
    failing = mark(2, "test.flaky", visit_id=visit_id)
    BROKEN["flaky"] = True
    first = await pull_all(client, bd)
    with caplog.at_level(logging.ERROR, logger="groundwork.sync"):
        results = await push(client, bd, [check_in_mutation(1, poi), failing, check_in_mutation(3, poi)])
    assert [(r["status"], r.get("code")) for r in results] == [
        ("applied", None),
        ("failed", "internal_error"),
        ("applied", None),
    ]
    assert await factory.count("SELECT count(*) FROM visits WHERE user_id = :u", u=bd.id) == 2
    assert await applications(factory, bd, failing["args"]["marker"]) == 0  # its half-done write rolled back
    stored = await factory.count(
        "SELECT count(*) FROM sync_mutations WHERE user_id = :u AND status = 'failed' AND args->>'marker' = :m",
        u=bd.id,
        m=failing["args"]["marker"],
    )
    assert stored == 1
    assert any("KeyError" in (r.exc_text or "") and "test.flaky" in r.getMessage() for r in caplog.records)
    # The phone learns of it on its next pull (the record it named is bumped).
    after = await pull_all(client, bd, first["cursor"])
    assert str(visit_id) in after["removed"]["visits"]
    # A replay answers from the stored outcome, and does not run it again.
    replay = await push(client, bd, [failing])
    assert replay[0]["status"] == "duplicate"
    assert replay[0]["original_status"] == "failed"

    # The bug is fixed; an operator re-runs it with the command line.
    BROKEN["flaky"] = False
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    outcome = await asyncio.to_thread(CliRunner().invoke, cli.main, ["sync", "rerun", "--user", str(bd.id)])
    assert outcome.exit_code == 0, outcome.output
    assert "[1/1] test.flaky #2" in outcome.output
    assert "applied" in outcome.output
    assert await applications(factory, bd, failing["args"]["marker"]) == 1
    replay = await push(client, bd, [failing])
    assert replay[0]["original_status"] == "applied"
    assert replay[0]["result"] == {"marker": failing["args"]["marker"]}
    # Nothing left to re-run; and the command needs a filter.
    again = await asyncio.to_thread(CliRunner().invoke, cli.main, ["sync", "rerun", "--user", str(bd.id)])
    assert "re-ran 0" in again.output
    bare = await asyncio.to_thread(CliRunner().invoke, cli.main, ["sync", "rerun"])
    assert bare.exit_code != 0


async def test_a_statement_error_in_a_mutation_fails_only_that_mutation(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    bad = mark(1, "test.sql_error")
    results = await push(client, bd, [bad, check_in_mutation(2, poi)])
    assert [r["status"] for r in results] == ["failed", "applied"]
    assert await applications(factory, bd, bad["args"]["marker"]) == 0


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT pg_terminate_backend(pg_backend_pid())",  # connection lost
        "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'serialization' USING ERRCODE = 'serialization_failure'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'lock timeout' USING ERRCODE = 'lock_not_available'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'shutdown' USING ERRCODE = 'admin_shutdown'; END $$",
    ],
)
async def test_outages_fail_the_request_so_the_phone_retries(
    factory: Factory, database: Database, statement: str
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    principal = Principal(bd.id, tenant, bd.role, DataScope.SELF, None, "d", 1e12)
    BROKEN["outage"] = statement
    good = Mutation(id=1, name="test.good", args=mark(1, "x")["args"], created_at=datetime.now(UTC))
    outage = Mutation(id=2, name="test.outage", args=mark(2, "x")["args"], created_at=datetime.now(UTC))
    with pytest.raises(DBAPIError):
        await engine.push(
            sessions=database.sessions,
            registry=REGISTRY,
            actor=principal,
            tenant_id=tenant,
            user_id=bd.id,
            client_id="outage",
            base_xid=None,
            mutations=[good, outage],
            received_at=datetime.now(UTC),
        )
    # Nothing of the chunk was committed, so the retry applies it all.
    assert await factory.count("SELECT count(*) FROM sync_mutations WHERE user_id = :u", u=bd.id) == 0


async def test_a_refusal_may_keep_its_effects(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    kept, dropped = mark(1, "test.refuse_keeping"), mark(2, "test.refuse")
    results = await push(client, bd, [kept, dropped])
    assert [(r["status"], r["code"]) for r in results] == [("rejected", "code_invalid"), ("rejected", "conflict")]
    assert await applications(factory, bd, kept["args"]["marker"]) == 1
    assert await applications(factory, bd, dropped["args"]["marker"]) == 0


@given(
    lat=st.one_of(st.floats(min_value=90.0001, max_value=1e9), st.floats(max_value=-90.0001, min_value=-1e9)),
    garbage=st.sampled_from(["", "not-a-uuid", "1", "0" * 100]),
)
@hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_validation_refusals_bump_the_record_they_name(
    database: Database, client: Client, lat: float, garbage: str
) -> None:
    factory = Factory(database, client)
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    cursor = (await pull_all(client, bd))["cursor"]
    visit_id = uuid.uuid4()
    at_999 = check_in_mutation(1, poi, visit_id=visit_id)
    at_999["args"]["fix"]["lat"] = lat
    unnamed = check_in_mutation(2, poi)
    unnamed["args"]["id"] = garbage  # an id that is no id: ignored, the push still answers
    results = await push(client, bd, [at_999, unnamed])
    assert [(r["status"], r["code"]) for r in results] == [("rejected", "validation_failed")] * 2
    after = await pull_all(client, bd, cursor)
    assert after["removed"]["visits"] == {str(visit_id)}


async def test_identical_pushes_at_once_apply_each_mutation_once(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    mutations = [mark(i, "test.good") for i in range(1, 251)]  # more than one chunk
    batches = await asyncio.gather(*(push(client, bd, mutations) for _ in range(6)))
    statuses = [r["status"] for batch in batches for r in batch]
    assert statuses.count("applied") == 250
    assert statuses.count("duplicate") == 5 * 250
    for m in mutations[::25]:
        assert await applications(factory, bd, m["args"]["marker"]) == 1


KINDS = ["test.good", "test.refuse", "test.flaky", "test.sql_error", "test.refuse_keeping", "visit.teleport"]
EXPECTED = {
    "test.good": "applied",
    "test.refuse": "rejected",
    "test.flaky": "failed",
    "test.sql_error": "failed",
    "test.refuse_keeping": "rejected",
    "visit.teleport": "rejected",
}


@given(
    plan=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 3)), min_size=1, max_size=40),
    copies=st.integers(1, 3),
    chunk=st.sampled_from([1, 3, 100]),
)
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_mix_of_outcomes_applies_each_at_most_once_and_answers_in_order(
    database: Database, client: Client, plan: list[tuple[str, int]], copies: int, chunk: int
) -> None:
    """Random mutations (good, refused, failing, unknown), some repeating earlier ids, pushed as several
    concurrent copies and then replayed: every id has one outcome, the results line up with the ids, and
    nothing is applied twice."""
    BROKEN["flaky"] = True
    factory = Factory(database, client)
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    principal = Principal(bd.id, tenant, bd.role, DataScope.SELF, None, "d", 1e12)
    mutations: list[Mutation] = []
    for index, (kind, back) in enumerate(plan):
        if back and index >= back:
            mutations.append(mutations[index - back])  # the same id again, within the push
        else:
            args = mark(index + 1, kind)["args"]
            mutations.append(Mutation(id=index + 1, name=kind, args=args, created_at=datetime.now(UTC)))

    async def once() -> list[Any]:
        return await engine.push(
            sessions=database.sessions,
            registry=REGISTRY,
            actor=principal,
            tenant_id=tenant,
            user_id=bd.id,
            client_id="mix",
            base_xid=None,
            mutations=mutations,
            received_at=datetime.now(UTC),
            chunk_size=chunk,
        )

    answers = await asyncio.gather(*(once() for _ in range(copies)))
    answers.append(await once())  # and a replay after all of them
    first_seen: set[int] = set()
    ran: dict[int, int] = {}
    for results in answers:
        assert [r.id for r in results] == [m.id for m in mutations]
        for mutation, result in zip(mutations, results, strict=True):
            expected = EXPECTED[mutation.name]
            if result.status is MutationStatus.DUPLICATE:
                assert result.original_status == expected
            else:
                assert result.status == expected
                assert mutation.id not in first_seen
                ran[mutation.id] = ran.get(mutation.id, 0) + 1
                first_seen.add(mutation.id)
    assert set(ran) == {m.id for m in mutations}  # each ran exactly once across every copy
    for mutation in {m.id: m for m in mutations}.values():
        if mutation.name == "visit.teleport":
            continue
        kept = 1 if mutation.name in ("test.good", "test.refuse_keeping") else 0
        assert await applications(factory, bd, mutation.args["marker"]) == kept


async def test_mutations_of_one_chunk_see_each_others_writes(factory: Factory, client: Client) -> None:
    """The mutations of a chunk share a transaction and a session: an edit after a check-in sees the work item
    the check-in moved to in progress, not an ORM copy loaded before it."""
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    [item] = await assign(client, ops, await create_campaign(client, ops), [(poi, bd.id)])
    now = datetime.now(UTC).isoformat()
    results = await push(
        client,
        bd,
        [
            {"id": 1, "name": "task.update", "created_at": now, "args": {"id": item, "notes": "before"}},
            check_in_mutation(2, poi),
            {"id": 3, "name": "task.update", "created_at": now, "args": {"id": item, "notes": "after"}},
        ],
    )
    assert [r["status"] for r in results] == ["applied"] * 3
    assert results[0]["result"]["work_item"]["status"] == "assigned"
    assert results[2]["result"]["work_item"]["status"] == "in_progress"
    assert results[2]["result"]["work_item"]["notes"] == "after"


async def test_a_failure_is_logged_with_the_request_id(
    factory: Factory, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    principal = Principal(bd.id, tenant, bd.role, DataScope.SELF, None, "d", 1e12)
    BROKEN["flaky"] = True
    failing = Mutation(id=1, name="test.flaky", args=mark(1, "x")["args"], created_at=datetime.now(UTC))
    with caplog.at_level(logging.ERROR, logger="groundwork.sync"):
        [result] = await engine.push(
            sessions=database.sessions,
            registry=REGISTRY,
            actor=principal,
            tenant_id=tenant,
            user_id=bd.id,
            client_id="logged",
            base_xid=None,
            mutations=[failing],
            received_at=datetime.now(UTC),
            request_id="req-7f3a",
        )
    assert result.status is MutationStatus.FAILED
    assert result.detail is not None
    assert "req-7f3a" in result.detail
    [record] = [r for r in caplog.records if r.name == "groundwork.sync"]
    assert "req-7f3a" in record.getMessage()
    assert record.exc_info is not None
