"""APNs delivery: the real aioapns client against a local TLS HTTP/2 server that answers like APNs."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from backend.db.engine import Database
from backend.push.apns import ApnsSettings, PushDelivery, classify
from backend.push.service import DELIVER
from backend.queue.service import Registry
from backend.queue.worker import run_due
from tests.factories import Factory
from tests.push.apns_server import Credentials, LocalApns
from tests.push.helpers import Client, apns_token, devices, jobs, notify, register


async def test_a_push_reaches_apns_as_apple_expects(
    factory: Factory,
    client: Client,
    database: Database,
    apns: LocalApns,
    push_registry: Registry,
    credentials: Credentials,
) -> None:
    await apns.start()
    tenant = await factory.tenant()
    bd, colleague = await factory.user(tenant), await factory.user(tenant)
    token = apns_token()
    await register(client, bd, token)
    await register(client, bd, "fcm-token", device_id="install-2", platform="android")  # no FCM yet: skipped
    await register(client, colleague, apns_token())  # not concerned
    record = uuid.uuid4()
    assert await notify(database, tenant, [bd.id], reason="assigned", collection="work_items", record_id=record) == 1
    [job] = await jobs(database, tenant)
    assert job["kind"] == DELIVER
    assert token not in json.dumps(job["payload"])  # the job names the device; the token is read at delivery

    assert await run_due(database, push_registry, tenant_id=tenant) == 1

    [request] = apns.received
    assert apns.refused == []  # path, method, JWT (ES256, kid, iss), topic, push type, priority all passed
    assert apns.alpn == ["h2"]
    assert request.token == token
    assert request.status == 200
    assert request.headers["apns-topic"] == credentials.topic
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    assert request.headers["apns-collapse-id"] == f"sync-{bd.id}"
    assert request.payload == {
        "aps": {"content-available": 1},
        "reason": "assigned",
        "collection": "work_items",
        "id": str(record),
    }
    [job] = await jobs(database, tenant)
    assert job["done_at"] is not None
    assert (job["attempts"], job["last_error"], job["failed_at"]) == (1, None, None)
    assert await run_due(database, push_registry, tenant_id=tenant) == 0

    # A new connection (the old one idled out) reuses the provider token: APNs refuses tokens renewed too often.
    delivery = push_registry.handler(DELIVER)
    assert isinstance(delivery, PushDelivery)
    assert delivery.sender is not None
    await delivery.sender.close()
    await notify(database, tenant, [bd.id], reason="changed", collection="work_items", record_id=record)
    assert await run_due(database, push_registry, tenant_id=tenant) == 1
    assert len(apns.alpn) == 2
    assert apns.received[1].headers["authorization"] == request.headers["authorization"]


async def test_tokens_apple_reports_invalid_are_retired(
    factory: Factory, client: Client, database: Database, apns: LocalApns, push_registry: Registry
) -> None:
    await apns.start()
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    answers = {
        "install-1": (410, "Unregistered"),
        "install-2": (400, "BadDeviceToken"),
        "install-3": (400, "DeviceTokenNotForTopic"),
        "install-4": (200, None),
    }
    for install, answer in answers.items():
        token = apns_token()
        apns.answer(token, answer)
        await register(client, bd, token, device_id=install)
    assert await notify(database, tenant, [bd.id]) == 4

    assert await run_due(database, push_registry, tenant_id=tenant) == 4

    assert all(job["done_at"] is not None for job in await jobs(database, tenant))
    rows = await devices(database, tenant)
    assert {install: rows[bd.id, install]["retired_reason"] for install in answers} == {
        "install-1": "apns:Unregistered",
        "install-2": "apns:BadDeviceToken",
        "install-3": "apns:DeviceTokenNotForTopic",
        "install-4": None,
    }
    assert await notify(database, tenant, [bd.id]) == 1  # only the live device is pushed to from now on


async def test_apns_down_loses_nothing(
    factory: Factory, client: Client, database: Database, apns: LocalApns, push_registry: Registry
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    token = apns_token()
    await register(client, bd, token)
    await notify(database, tenant, [bd.id], reason="removed", collection="jobs", record_id=uuid.uuid4())

    # APNs does not even listen: the job stays, with the reason, and comes back later.
    assert await run_due(database, push_registry, tenant_id=tenant) == 1
    [job] = await jobs(database, tenant)
    assert (job["done_at"], job["failed_at"], job["attempts"]) == (None, None, 1)
    assert f"APNs unreachable at 127.0.0.1:{apns.port}" in job["last_error"]
    assert job["run_at"] > job["created_at"]
    assert await run_due(database, push_registry, tenant_id=tenant) == 0  # backing off, not hammering

    # APNs is back; once the backoff has passed the push goes out.
    await apns.start()
    assert await run_due(database, push_registry, tenant_id=tenant, now=job["run_at"]) == 1
    assert [(r.token, r.status) for r in apns.received] == [(token, 200)]
    [job] = await jobs(database, tenant)
    assert job["done_at"] is not None
    assert job["attempts"] == 2


async def test_apns_busy_is_retried_and_a_refusal_is_final(
    factory: Factory, client: Client, database: Database, apns: LocalApns, push_registry: Registry
) -> None:
    await apns.start()
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    unavailable, throttled, refused = apns_token(), apns_token(), apns_token()
    apns.answer(unavailable, (503, "ServiceUnavailable"), (200, None))
    apns.answer(throttled, (429, "TooManyRequests"))
    apns.answer(refused, (403, "InvalidProviderToken"))  # e.g. the key was revoked: retrying cannot help
    for install, token in (("a", unavailable), ("b", throttled), ("c", refused)):
        await register(client, bd, token, device_id=install)
    await notify(database, tenant, [bd.id])

    assert await run_due(database, push_registry, tenant_id=tenant) == 3
    by_token = {job["payload"]["device"]: job for job in await jobs(database, tenant)}
    rows = await devices(database, tenant)
    first = {install: by_token[str(rows[bd.id, install]["id"])] for install in ("a", "b", "c")}
    assert "503 ServiceUnavailable" in first["a"]["last_error"]
    assert "429 TooManyRequests" in first["b"]["last_error"]
    assert first["a"]["failed_at"] is None
    assert first["b"]["failed_at"] is None
    assert first["c"]["failed_at"] is not None
    assert "403 InvalidProviderToken" in first["c"]["last_error"]

    later = max(first["a"]["run_at"], first["b"]["run_at"])
    assert await run_due(database, push_registry, tenant_id=tenant, now=later) == 2
    again = {job["id"]: job for job in await jobs(database, tenant)}
    assert again[first["a"]["id"]]["done_at"] is not None  # delivered on the second try
    assert again[first["b"]["id"]]["done_at"] is None  # still throttled: waits longer
    assert again[first["b"]["id"]]["attempts"] == 2
    assert again[first["b"]["id"]]["run_at"] > later
    assert all(row["retired_at"] is None for row in (await devices(database, tenant)).values())
    assert [r.status for r in apns.received if r.token == unavailable] == [503, 200]


async def test_without_apns_settings_pushes_are_dropped_with_a_clear_log(
    factory: Factory, client: Client, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    await register(client, bd, apns_token())
    await notify(database, tenant, [bd.id])
    registry = Registry()
    registry.register(DELIVER, PushDelivery(ApnsSettings()))
    with caplog.at_level(logging.INFO, logger="groundwork.push"):
        assert await run_due(database, registry, tenant_id=tenant) == 1
    assert "APNs not configured" in caplog.text
    [job] = await jobs(database, tenant)
    assert job["done_at"] is not None


def test_settings_from_the_environment(credentials: Credentials) -> None:
    env = {
        "GROUNDWORK_APNS_KEY_FILE": str(credentials.key_file),
        "GROUNDWORK_APNS_KEY_ID": credentials.key_id,
        "GROUNDWORK_APNS_TEAM_ID": credentials.team_id,
        "GROUNDWORK_APNS_TOPIC": credentials.topic,
        "GROUNDWORK_APNS_USE_SANDBOX": "1",
    }
    settings = ApnsSettings.from_env(env)
    assert settings.configured
    assert settings.address() == ("api.sandbox.push.apple.com", 443)
    assert ApnsSettings.from_env({**env, "GROUNDWORK_APNS_SERVER": "[::1]:2197"}).address() == ("::1", 2197)
    assert not ApnsSettings.from_env({}).configured
    with pytest.raises(ValueError, match="GROUNDWORK_APNS_TEAM_ID"):
        ApnsSettings.from_env({k: v for k, v in env.items() if k != "GROUNDWORK_APNS_TEAM_ID"})
    not_a_key = credentials.ca_file  # a certificate, not a signing key
    with pytest.raises(ValueError, match="not an APNs signing key"):
        PushDelivery(ApnsSettings.from_env({**env, "GROUNDWORK_APNS_KEY_FILE": str(not_a_key)}))


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        ("200", None, "delivered"),
        ("410", "Unregistered", "retire"),
        ("410", "ExpiredToken", "retire"),
        ("400", "BadDeviceToken", "retire"),
        ("400", "DeviceTokenNotForTopic", "retire"),
        ("429", "TooManyRequests", "retry"),
        ("429", "TooManyProviderTokenUpdates", "retry"),
        ("500", "InternalServerError", "retry"),
        ("503", "ServiceUnavailable", "retry"),
        ("403", "ExpiredProviderToken", "retry"),
        ("502", None, "retry"),
        ("400", "BadTopic", "fail"),
        ("403", "InvalidProviderToken", "fail"),
        ("413", "PayloadTooLarge", "fail"),
    ],
)
def test_how_apns_answers_are_read(status: str, reason: str | None, outcome: str) -> None:
    assert classify(status, reason) == outcome
