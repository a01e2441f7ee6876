"""A disabled, deleted or changed user's access tokens stop working within the user-state cache's seconds.

Issue 8: a disabled user kept working until the access token expired (15 min). The token now carries the user's
auth version; every request compares it with the user's current version and active flag, read at most once per
user per few seconds (backend/auth/userstate.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from backend.auth import service
from backend.auth.passwords import Passwords
from backend.auth.tokens import AUDIENCE, ISSUER
from backend.auth.userstate import UserStates
from backend.db.engine import Database
from backend.errors import DomainError
from backend.settings import Settings
from mobile_contract.auth import DataScope, Role
from tests.auth.conftest import MovableClock
from tests.factories import PASSWORD, Factory, FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]
NEARBY = "/v1/pois/nearby?lat=31.23&lon=121.47"


async def _me(client: Client, user: FieldUser) -> Any:
    return await client.get("/v1/me", headers=user.headers)


async def test_a_disabled_user_is_refused_within_the_cache_seconds(
    factory: Factory, client: Client, database: Database, state_clock: MovableClock
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    refresh_token = (await factory.login(bd.username))["refresh_token"]
    assert (await client.get(NEARBY, headers=bd.headers)).status_code == 200
    async with database.sessions() as session:
        await service.disable_user(session, tenant_id=tenant, user_id=bd.id, now=datetime.now(UTC))
        await session.commit()
    state_clock.advance(6)  # past the cache's 5 s: every process has re-read the user by now
    for answer in (await client.get(NEARBY, headers=bd.headers), await _me(client, bd)):
        assert answer.status_code == 401
        assert answer.json()["code"] == "account_disabled"
        assert answer.headers["www-authenticate"] == "Bearer"
    sync = await client.post("/v1/sync/pull", json={}, headers=bd.headers)
    assert sync.status_code == 401
    assert sync.json()["code"] == "account_disabled"
    # Refresh is refused too (saying why, so the phone stops), and so is a new login.
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": refresh_token, "device_id": "device-1"})
    assert refresh.status_code == 401
    assert refresh.json()["code"] == "account_disabled"
    login = await client.post(
        "/v1/auth/token", json={"username": bd.username, "password": PASSWORD, "device_id": "device-1"}
    )
    assert login.status_code == 401


async def test_the_process_that_made_the_change_sees_it_at_once(
    factory: Factory, client: Client, database: Database, user_states: UserStates
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    assert (await _me(client, bd)).status_code == 200
    async with database.sessions() as session:
        await service.disable_user(session, tenant_id=tenant, user_id=bd.id, now=datetime.now(UTC))
        await session.commit()
    user_states.forget(bd.id, tenant)  # what an admin route does after its commit
    assert (await _me(client, bd)).json()["code"] == "account_disabled"


async def test_a_new_role_makes_the_token_stale_and_a_refresh_brings_the_new_role(
    factory: Factory, client: Client, database: Database, state_clock: MovableClock
) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    user = await factory.user(tenant, login=False)
    tokens = await factory.login(user.username, device_id="phone-1")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/v1/me", headers=headers)).json()["role"] == "bd"
    async with database.sessions() as session:
        await service.change_role(session, tenant_id=tenant, user_id=user.id, role=Role.SUPERVISOR)
        await service.move_to_team(session, tenant_id=tenant, user_id=user.id, team_id=team)
        await session.commit()
    state_clock.advance(6)
    stale = await client.get("/v1/me", headers=headers)
    assert stale.status_code == 401
    assert stale.json()["code"] == "token_stale"
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"], "device_id": "phone-1"}
    )
    assert refreshed.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "supervisor"
    assert me.json()["data_scope"] == DataScope.TEAM_AND_BELOW.value
    assert me.json()["team_id"] == str(team)


async def test_a_new_password_ends_every_session_and_needs_a_new_login(
    factory: Factory, client: Client, database: Database, state_clock: MovableClock
) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    tokens = await factory.login(user.username, device_id="phone-1")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with database.sessions() as session:
        await service.set_password(
            session,
            Passwords(fast=True, concurrency=1, queue=1),
            tenant_id=tenant,
            user_id=user.id,
            new_password="a brand new secret",
            now=datetime.now(UTC),
        )
        await session.commit()
    state_clock.advance(6)
    assert (await client.get("/v1/me", headers=headers)).json()["code"] == "token_stale"
    refused = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"], "device_id": "phone-1"}
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "refresh_token_invalid"
    old = await client.post("/v1/auth/token", json={"username": user.username, "password": PASSWORD, "device_id": "d"})
    assert old.status_code == 401
    new = await client.post(
        "/v1/auth/token", json={"username": user.username, "password": "a brand new secret", "device_id": "d"}
    )
    assert new.status_code == 200
    again = await client.get("/v1/me", headers={"Authorization": f"Bearer {new.json()['access_token']}"})
    assert again.status_code == 200


async def test_a_deleted_users_token_is_refused_before_any_write(
    factory: Factory, client: Client, database: Database, state_clock: MovableClock
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    assert (await _me(client, bd)).status_code == 200
    async with database.sessions() as session:
        await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": bd.id})
        await session.commit()
    state_clock.advance(6)
    body = {
        "id": str(uuid.uuid4()),
        "name": "Noodles",
        "category": "restaurant",
        "address": "1 Rd",
        "location": {"lat": 31.23, "lon": 121.47},
    }
    write = await client.post("/v1/pois", json=body, headers=bd.headers)
    assert write.status_code == 401  # not a foreign-key 500
    assert write.json()["code"] == "account_disabled"
    push = await client.post("/v1/sync/push", json={"client_id": "c", "mutations": []}, headers=bd.headers)
    assert push.status_code == 401


async def test_the_hot_paths_read_a_users_state_once_per_few_seconds(
    factory: Factory, client: Client, user_states: UserStates, state_clock: MovableClock
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    await client.get(NEARBY, headers=bd.headers)
    before = user_states.loads
    for _ in range(20):
        assert (await client.get(NEARBY, headers=bd.headers)).status_code == 200
        assert (await client.post("/v1/sync/pull", json={}, headers=bd.headers)).status_code == 200
    assert user_states.loads == before  # 40 requests within the cache's seconds: no read at all
    state_clock.advance(6)
    for _ in range(5):
        await client.get(NEARBY, headers=bd.headers)
    assert user_states.loads == before + 1


async def test_a_token_with_another_tenants_id_or_a_bad_version_is_refused(
    factory: Factory, client: Client, settings: Settings
) -> None:
    tenant, other = await factory.tenant(), await factory.tenant()
    bd = await factory.user(tenant)
    claims = jwt.decode(
        bd.headers["Authorization"].split()[1], settings.jwt_secret, algorithms=["HS256"], audience=AUDIENCE
    )
    assert claims["iss"] == ISSUER
    cases = {
        "token_invalid": [{**claims, "ver": "1"}, {**claims, "ver": True}, {**claims, "ver": 1.5}],
        "account_disabled": [{**claims, "tid": str(other)}, {**claims, "sub": str(uuid.uuid4())}],
        "token_stale": [{**claims, "ver": 7}],
    }
    for code, variants in cases.items():
        for variant in variants:
            token = jwt.encode(variant, settings.jwt_secret, algorithm="HS256")
            answer = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, variant
            assert answer.json()["code"] == code, variant


async def test_account_changes_with_another_tenants_ids_change_nothing(factory: Factory, database: Database) -> None:
    tenant, other = await factory.tenant(), await factory.tenant()
    bd = await factory.user(tenant, login=False)
    foreign_team = await factory.team(other)
    now = datetime.now(UTC)
    async with database.sessions() as session:
        for attempt in (
            lambda: service.disable_user(session, tenant_id=other, user_id=bd.id, now=now),
            lambda: service.enable_user(session, tenant_id=other, user_id=bd.id),
            lambda: service.change_role(session, tenant_id=other, user_id=bd.id, role=Role.ADMIN),
            lambda: service.move_to_team(session, tenant_id=tenant, user_id=bd.id, team_id=foreign_team),
            lambda: service.move_to_team(session, tenant_id=other, user_id=bd.id, team_id=None),
            lambda: service.set_password(
                session,
                Passwords(fast=True, concurrency=1, queue=1),
                tenant_id=other,
                user_id=bd.id,
                new_password="long enough password",
                now=now,
            ),
        ):
            with pytest.raises(DomainError) as refused:
                await attempt()
            assert refused.value.status == 404
        await session.commit()
        row = (
            await session.execute(
                text("SELECT is_active, role, auth_version, team_id FROM users WHERE id = :id"), {"id": bd.id}
            )
        ).one()
    assert tuple(row) == (True, "bd", 0, None)


_CHANGES = st.lists(st.sampled_from(["disable", "enable", "role", "team", "password", "token"]), max_size=6)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=_CHANGES)
async def test_generated_change_sequences_a_token_works_iff_nothing_changed_since(
    factory: Factory, client: Client, database: Database, user_states: UserStates, changes: list[str]
) -> None:
    """Any sequence of account changes and new logins: a token is accepted iff the user is active and no change
    happened after it was issued; a disabled user's token answers account_disabled, a changed one token_stale."""
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    user = await factory.user(tenant, login=False)
    tokens: list[tuple[str, int]] = [((await factory.login(user.username))["access_token"], 0)]
    changed, active = 0, True  # changes so far; whether the user is active now
    now = datetime.now(UTC)
    for change in changes:
        if change == "token":
            if active:
                tokens.append(((await factory.login(user.username))["access_token"], changed))
            continue
        async with database.sessions() as session:
            if change == "disable":
                await service.disable_user(session, tenant_id=tenant, user_id=user.id, now=now)
                active = False
            elif change == "enable":
                await service.enable_user(session, tenant_id=tenant, user_id=user.id)
                active = True
            elif change == "role":
                await service.change_role(session, tenant_id=tenant, user_id=user.id, role=Role.TECHNICIAN)
            elif change == "team":
                await service.move_to_team(session, tenant_id=tenant, user_id=user.id, team_id=team)
            else:
                await service.set_password(
                    session,
                    Passwords(fast=True, concurrency=1, queue=1),
                    tenant_id=tenant,
                    user_id=user.id,
                    new_password=PASSWORD,
                    now=now,
                )
            await session.commit()
        changed += 1
    user_states.forget(user.id, tenant)
    for token, issued_after in tokens:
        answer = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        if not active:
            assert answer.json()["code"] == "account_disabled"
        elif issued_after == changed:
            assert answer.status_code == 200
        else:
            assert answer.json()["code"] == "token_stale"
