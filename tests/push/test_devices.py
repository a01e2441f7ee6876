"""The device registry: registering, updating, unregistering, bad input, and tokens changing hands."""

from __future__ import annotations

import pytest

from backend.db.engine import Database
from mobile_contract.auth import Role
from tests.factories import Factory
from tests.push.helpers import Client, apns_token, devices, jobs, notify, register


async def test_register_update_and_unregister(factory: Factory, client: Client, database: Database) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    token = apns_token()
    first = await register(client, bd, token)
    assert first.status_code == 201, first.text
    device = first.json()
    assert set(device) == {"id", "device_id", "platform", "app_version", "created_at", "updated_at"}
    assert (device["device_id"], device["platform"]) == ("install-1", "ios")
    # Registering again (every app start does) answers 200 with the same registration.
    again = await register(client, bd, token)
    assert (again.status_code, again.json()["id"]) == (200, device["id"])
    # A new token and app version update the same row; the token is stored as lower-case hex.
    new_token = apns_token().upper()
    updated = await register(client, bd, new_token, app_version="1.5.0")
    assert (updated.status_code, updated.json()["id"], updated.json()["app_version"]) == (200, device["id"], "1.5.0")
    [row] = (await devices(database, tenant)).values()
    assert row["push_token"] == new_token.lower()
    assert await notify(database, tenant, [bd.id]) == 1

    # Logout: no more pushes; repeating the logout, or logging out an unknown install, is harmless.
    assert (await client.delete("/v1/devices/install-1", headers=bd.headers)).status_code == 204
    assert (await client.delete("/v1/devices/install-1", headers=bd.headers)).status_code == 204
    assert (await client.delete("/v1/devices/never-registered", headers=bd.headers)).status_code == 204
    [row] = (await devices(database, tenant)).values()
    assert row["retired_reason"] == "logged_out"
    assert await notify(database, tenant, [bd.id]) == 0
    # Logging in again brings the same registration back.
    back = await register(client, bd, new_token)
    assert (back.status_code, back.json()["id"]) == (200, device["id"])
    assert await notify(database, tenant, [bd.id]) == 1
    assert len(await jobs(database, tenant)) == 2


async def test_registration_refuses_bad_input(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    good = {"device_id": "install-1", "platform": "ios", "push_token": apns_token(), "app_version": "1.4.0"}
    bad = [
        {k: v for k, v in good.items() if k != "push_token"},
        {**good, "extra": 1},
        {**good, "platform": "windows"},
        {**good, "push_token": ""},
        {**good, "push_token": "<740f4707 bebcf74f 9b7c25d4 8e335894 5f6aa01d a5ddb387 462c7eaf 61bb78ad>"},
        {**good, "push_token": "abc"},
        {**good, "push_token": "zz" * 32},
        {**good, "device_id": ""},
        {**good, "device_id": "x" * 129},
        {**good, "app_version": ""},
    ]
    for body in bad:
        response = await client.post("/v1/devices", json=body, headers=bd.headers)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_failed", body
    assert (await client.post("/v1/devices", json=good)).status_code == 401
    assert (await client.delete("/v1/devices/install-1")).status_code == 401
    assert (await client.delete(f"/v1/devices/{'x' * 129}", headers=bd.headers)).status_code == 422
    # Android tokens (FCM) are opaque strings.
    android = {**good, "platform": "android", "push_token": "fcm:APA91b-Ex4mple_t0ken"}
    assert (await client.post("/v1/devices", json=android, headers=bd.headers)).status_code == 201


async def test_a_token_moves_to_whoever_registers_it_last(factory: Factory, client: Client, database: Database) -> None:
    tenant = await factory.tenant()
    alice, bob = await factory.user(tenant), await factory.user(tenant, Role.TECHNICIAN)
    token = apns_token()
    assert (await register(client, alice, token)).status_code == 201
    # The phone changes hands: Bob logs in on it, and the token leaves Alice's registration.
    assert (await register(client, bob, token)).status_code == 201
    rows = await devices(database, tenant)
    assert rows[alice.id, "install-1"]["retired_reason"] == "token_moved"
    assert rows[bob.id, "install-1"]["retired_at"] is None
    assert await notify(database, tenant, [alice.id, bob.id]) == 1
    [job] = await jobs(database, tenant)
    assert job["payload"]["user"] == str(bob.id)
    # Bob reinstalls the app (a new install id, the same token): the old install stops getting pushes.
    assert (await register(client, bob, token, device_id="install-2")).status_code == 201
    rows = await devices(database, tenant)
    assert rows[bob.id, "install-1"]["retired_reason"] == "token_moved"
    assert rows[bob.id, "install-2"]["retired_at"] is None


async def test_devices_belong_to_their_caller(factory: Factory, client: Client, database: Database) -> None:
    tenant = await factory.tenant()
    alice, bob = await factory.user(tenant), await factory.user(tenant)
    outsider = await factory.user(await factory.tenant())
    assert (await register(client, alice, apns_token())).status_code == 201
    # The same install id elsewhere is someone else's registration: unregistering it leaves Alice's alone.
    for other in (bob, outsider):
        assert (await client.delete("/v1/devices/install-1", headers=other.headers)).status_code == 204
    assert (await devices(database, tenant))[alice.id, "install-1"]["retired_at"] is None
    # Pushes only go to the users asked for, in the tenant asked for.
    assert await notify(database, tenant, [bob.id]) == 0
    assert await notify(database, outsider.tenant_id, [alice.id]) == 0
    assert await notify(database, tenant, [alice.id, bob.id]) == 1


async def test_push_hints_are_codes_not_text(factory: Factory, database: Database) -> None:
    tenant = await factory.tenant()
    with pytest.raises(ValueError, match="reason"):
        await notify(database, tenant, [], reason="Job for Mrs Chen at 88 Huaihai Rd")
    with pytest.raises(ValueError, match="collection"):
        await notify(database, tenant, [], collection="Work Items")
