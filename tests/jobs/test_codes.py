"""The customer's code under abuse: forty entries at once, resends, offline claims of time, and the SMS that
leaves only after the commit, through the queue, and does not stay readable there."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.errors import DomainError
from backend.jobs import service
from backend.jobs.service import (
    CLOCK_DRIFT,
    CODE_ATTEMPTS,
    CODE_RESEND_INTERVAL,
    CODE_RESENDS_PER_DAY,
    believed_entry_time,
    resend_wait,
)
from backend.jobs.tasks import SMS_SEND, LogSms, SendSms, mask_phone
from backend.queue.service import Registry
from backend.queue.worker import run_due
from mobile_contract.auth import DataScope, Role
from mobile_contract.jobs import Transition
from mobile_contract.location import Fix
from tests.factories import Factory, FieldUser, fix
from tests.jobs.helpers import SITE, arrived_job, create_job, deliver_sms, sent_code, step, technician

Client = AsyncTestClient  # type: ignore[type-arg]
KEY = b"k" * 32
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


class ConnectionsPerTask:
    """Counts the ORM pool's connections each asyncio task holds at once: a request runs in one task, so a
    request that opens a second session while it holds one shows as a task holding two."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.held: dict[int, int] = {}
        self.most = 0

    def _task(self) -> int:
        task = asyncio.current_task()
        return id(task) if task is not None else 0

    def checkout(self, *_: Any) -> None:
        task = self._task()
        self.held[task] = self.held.get(task, 0) + 1
        self.most = max(self.most, self.held[task])

    def checkin(self, *_: Any) -> None:
        task = self._task()
        self.held[task] = self.held.get(task, 1) - 1

    def __enter__(self) -> ConnectionsPerTask:
        event.listen(self.engine, "checkout", self.checkout)
        event.listen(self.engine, "checkin", self.checkin)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "checkout", self.checkout)
        event.remove(self.engine, "checkin", self.checkin)


def _wrong(right: str) -> str:
    return "000000" if right != "000000" else "111111"


async def test_forty_parallel_wrong_codes_count_every_compared_code_lock_and_stall_no_other_tenant(
    factory: Factory, client: Client
) -> None:
    _, tech, job_id = await arrived_job(factory, client)
    right = await sent_code(factory.database, tech.tenant_id)
    other_tenant = await factory.tenant()
    other_ops = await factory.user(other_tenant, Role.OPS)
    other_job = await create_job(client, other_ops)

    entries = [
        client.post(f"/v1/jobs/{job_id}/code", json={"code": _wrong(right)}, headers=tech.headers) for _ in range(40)
    ]
    elsewhere = client.get(f"/v1/jobs/{other_job['id']}", headers=other_ops.headers)
    with ConnectionsPerTask(client.app.state.database.engine) as connections:
        *answers, other = await asyncio.gather(*entries, elsewhere)
    assert connections.most == 1  # no request held two connections (the old code opened a second session)

    assert all(a.status_code < 500 for a in answers), [a.text for a in answers if a.status_code >= 500]
    codes = sorted(a.json()["code"] for a in answers)
    assert codes.count("code_invalid") == CODE_ATTEMPTS - 1
    assert codes.count("code_attempts_exceeded") == 40 - (CODE_ATTEMPTS - 1)
    left = sorted(a.json()["attempts_left"] for a in answers if a.status_code == 422)
    assert left == list(range(1, CODE_ATTEMPTS))  # each wrong code saw the one before it: serialised
    assert other.status_code == 200, other.text  # another tenant was served meanwhile
    job = uuid.UUID(job_id)
    # Every compared code counted, in order, up to the lock; the entries after it were refused from the route's
    # memory of the lock (jobs/codelocks.py): nothing compared, so nothing to count.
    assert await factory.count("SELECT attempts FROM job_codes WHERE job_id = :j", j=job) == CODE_ATTEMPTS
    assert await factory.count("SELECT count(*) FROM job_codes WHERE job_id = :j AND locked_at IS NOT NULL", j=job)
    locked = await client.post(f"/v1/jobs/{job_id}/code", json={"code": right}, headers=tech.headers)
    assert locked.status_code == 423  # even the right code, once locked


async def test_a_refused_queued_code_entry_still_counts_its_attempt(factory: Factory, client: Client) -> None:
    _, tech, job_id = await arrived_job(factory, client)
    right = await sent_code(factory.database, tech.tenant_id)
    now = datetime.now(UTC).isoformat()
    queued = [
        {"id": i, "name": "job.verify", "args": {"job_id": job_id, "code": _wrong(right)}, "created_at": now}
        for i in range(1, 4)
    ]
    results = (
        await client.post("/v1/sync/push", json={"client_id": "p", "mutations": queued}, headers=tech.headers)
    ).json()["results"]
    assert [r["code"] for r in results] == ["code_invalid"] * 3
    assert await factory.count("SELECT attempts FROM job_codes WHERE job_id = :j", j=uuid.UUID(job_id)) == 3


async def test_only_dispatch_resends_a_code_and_resends_are_rate_limited(factory: Factory, client: Client) -> None:
    ops, tech, job_id = await arrived_job(factory, client)
    await sent_code(factory.database, tech.tenant_id)
    by_tech = await client.post(f"/v1/jobs/{job_id}/code/resend", headers=tech.headers)
    assert by_tech.status_code == 403  # a resend unlocks: the one guessing may not ask for one
    too_soon = await client.post(f"/v1/jobs/{job_id}/code/resend", headers=ops.headers)
    assert too_soon.status_code == 429, too_soon.text
    assert too_soon.json()["code"] == "code_resend_limited"
    assert 1 <= int(too_soon.headers["retry-after"]) <= CODE_RESEND_INTERVAL.total_seconds()
    assert too_soon.json()["retry_after_s"] == int(too_soon.headers["retry-after"])
    assert (await deliver_sms(factory.database, tech.tenant_id)).sent == []  # nothing left for the customer


async def test_resends_follow_the_clock_a_minute_apart_and_five_a_day(factory: Factory, client: Client) -> None:
    ops, _, job_id = await arrived_job(factory, client)
    principal = Principal(ops.id, ops.tenant_id, Role.OPS, DataScope.ALL, None, "test", 0.0)
    now = datetime.now(UTC)
    outcomes = []
    for minutes in (0.5, 2, 4, 6, 8, 10, 12, 24 * 60 + 3):
        async with factory.database.sessions() as session:
            try:
                await service.resend_code(
                    session, principal, uuid.UUID(job_id), code_key=KEY, now=now + timedelta(minutes=minutes)
                )
                await session.commit()
                outcomes.append("sent")
            except DomainError as exc:
                outcomes.append(f"{exc.status}")
    # 30 s after arrival: too soon; then five a minute or more apart; the sixth within 24 h waits; a day later ok.
    assert outcomes == ["429", "sent", "sent", "sent", "sent", "sent", "429", "sent"]


_offsets = st.lists(st.integers(min_value=0, max_value=3 * 86_400), min_size=1, max_size=25).map(sorted)


@given(_offsets)
@settings(max_examples=200, deadline=None)
def test_resend_wait_matches_the_rule_for_any_sequence_of_requests(offsets: list[int]) -> None:
    """Generated request times against a plain model of the rule: a request is served iff a minute has passed
    since the last code and fewer than five were resent in the 24 hours before it; a refusal's wait is enough."""
    issued_at = T0
    resent: list[datetime] = []
    for offset in offsets:
        now = T0 + timedelta(seconds=offset)
        in_day = [at for at in resent if now - timedelta(days=1) < at <= now]
        allowed = now >= issued_at + CODE_RESEND_INTERVAL and len(in_day) < CODE_RESENDS_PER_DAY
        wait = resend_wait(issued_at, resent, now)
        assert (wait is None) == allowed
        if wait is None:
            issued_at = now
            resent.append(now)
        else:
            assert wait > timedelta(0)
            assert resend_wait(issued_at, resent, now + wait) is None  # waiting as told is enough


@given(
    claimed=st.none()
    | st.datetimes(
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; the zone comes from timezones
        max_value=datetime(2030, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    issued=st.integers(min_value=0, max_value=10 * 3600),
    arrived=st.none() | st.integers(min_value=-3600, max_value=10 * 3600),
    received=st.integers(min_value=0, max_value=20 * 3600),
)
def test_an_entry_time_is_never_believed_before_the_code_or_after_receipt(
    claimed: datetime | None, issued: int, arrived: int | None, received: int
) -> None:
    issued_at = T0 + timedelta(seconds=issued)
    arrived_at = T0 + timedelta(seconds=arrived) if arrived is not None else None
    received_at = issued_at + timedelta(seconds=received)  # a code is entered after it was issued
    at = believed_entry_time(claimed, issued_at=issued_at, arrived_at=arrived_at, received=received_at)
    floor = max(issued_at, arrived_at) if arrived_at is not None else issued_at
    assert at >= min(floor, received_at)
    assert at <= received_at
    if claimed is not None and floor <= claimed <= received_at:
        assert at == claimed  # an honest offline time is kept
    if claimed is not None and claimed < floor - CLOCK_DRIFT:
        assert at == max(received_at, floor) or at == received_at  # a false claim: judged as typed on receipt


async def test_an_sms_leaves_only_after_commit_and_is_scrubbed_from_the_queue(
    factory: Factory, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops)
    await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    await step(client, tech, job["id"], "accept")
    principal = Principal(tech.id, tenant, Role.TECHNICIAN, DataScope.SELF, None, "test", 0.0)
    # An arrival (which issues the code) rolled back: no code stored, no SMS to send.
    async with factory.database.sessions() as session:
        await service.transition(
            session,
            principal,
            uuid.UUID(job["id"]),
            "arrive",
            Transition(fix=msgspec.convert(fix(*SITE), Fix)),
            code_key=KEY,
        )
        await session.rollback()
    assert await factory.count("SELECT count(*) FROM job_codes WHERE job_id = :j", j=uuid.UUID(job["id"])) == 0
    assert (await deliver_sms(factory.database, tenant)).sent == []
    # Committed: one SMS, to the customer; then the queue keeps neither the code nor the number.
    assert (await step(client, tech, job["id"], "arrive", fix=fix(*SITE))).status_code == 200
    outbox = await deliver_sms(factory.database, tenant)
    [(phone, message)] = outbox.sent
    assert phone == "+86 138 0000 1234"
    code = message.split("is ")[1][:6]
    left = await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND kind = 'sms.send'"
        " AND (payload::text LIKE :c OR payload::text LIKE '%1234%')",
        t=tenant,
        c=f"%{code}%",
    )
    assert left == 0
    assert code not in caplog.text


class _Down:
    async def send(self, phone: str, text: str) -> None:
        raise OSError("gateway down")


async def test_an_sms_that_never_goes_out_is_scrubbed_after_its_last_attempt(factory: Factory, client: Client) -> None:
    _, tech, _ = await arrived_job(factory, client)
    registry = Registry()
    registry.register(SMS_SEND, SendSms(_Down()))
    async with factory.database.sessions() as session:  # the last attempt, now
        await session.execute(
            text("UPDATE background_jobs SET attempts = max_attempts - 1 WHERE tenant_id = :t"), {"t": tech.tenant_id}
        )
        await session.commit()
    assert await run_due(factory.database, registry, tenant_id=tech.tenant_id) == 1
    scrubbed = await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND payload = '{\"scrubbed\": true}'::jsonb"
        " AND failed_at IS NOT NULL",
        t=tech.tenant_id,
    )
    assert scrubbed == 1


async def test_the_default_sms_gateway_logs_neither_the_code_nor_the_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await LogSms().send("+86 138 0000 1234", "Your Groundwork code for today's visit is 424242.")
    assert "424242" not in caplog.text
    assert "138 0000" not in caplog.text
    assert mask_phone("+86 138 0000 1234") in caplog.text


async def test_code_entries_of_another_tenant_or_a_bd_are_not_found(factory: Factory, client: Client) -> None:
    ops, tech, job_id = await arrived_job(factory, client)
    bd = await factory.user(ops.tenant_id, Role.BD)
    other = await factory.tenant()
    strangers: list[FieldUser] = [
        bd,
        await factory.user(other, Role.TECHNICIAN),
        await factory.user(other, Role.OPS),
    ]
    for user in strangers:
        for path, body in ((f"/v1/jobs/{job_id}/code", {"code": "123456"}), (f"/v1/jobs/{job_id}/code/resend", None)):
            answer = await client.post(path, json=body, headers=user.headers)
            assert answer.status_code == 404, (user.role, path, answer.text)
    assert await factory.count("SELECT attempts FROM job_codes WHERE job_id = :j", j=uuid.UUID(job_id)) == 0
    for bad in ({"code": "12345"}, {"code": "1234567"}, {"code": "12345a"}, {"code": "123456", "at": "yesterday"}):
        answer = await client.post(f"/v1/jobs/{job_id}/code", json=bad, headers=tech.headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_failed"


async def test_the_connection_count_sees_a_second_session(database: Database) -> None:
    """The instrument of the test above, shown to catch what it looks for: a session opened inside another (on
    the tests' own engine: the app's belongs to the test client's event loop)."""
    with ConnectionsPerTask(database.engine) as connections:
        async with database.sessions() as outer, database.sessions() as inner:
            await outer.execute(text("SELECT 1"))
            await inner.execute(text("SELECT 1"))
    assert connections.most == 2
