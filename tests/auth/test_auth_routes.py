"""Login, refresh rotation with reuse detection, and the ways a token can be bad."""

from __future__ import annotations

import time

import jwt
from litestar.testing import AsyncTestClient

from backend.auth.tokens import AUDIENCE, ISSUER
from tests.factories import PASSWORD, Factory

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_login_returns_tokens_that_open_the_api(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    response = await client.post(
        "/v1/auth/token", json={"username": user.username.upper(), "password": PASSWORD, "device_id": "phone-1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["user_id"] == str(user.id)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == user.username
    assert me.json()["data_scope"] == "self"


async def test_wrong_password_and_unknown_user_answer_alike(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    wrong = await client.post("/v1/auth/token", json={"username": user.username, "password": "x", "device_id": "d"})
    unknown = await client.post("/v1/auth/token", json={"username": "nobody@x", "password": "x", "device_id": "d"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    first = await factory.login(user.username, device_id="phone-1")
    second = await client.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"], "device_id": "phone-1"}
    )
    assert second.status_code == 200
    new_refresh = second.json()["refresh_token"]
    assert new_refresh != first["refresh_token"]
    # The old token is presented again from another device (stolen): the whole family dies.
    stolen = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"], "device_id": "evil"})
    assert stolen.status_code == 401
    assert stolen.json()["code"] == "refresh_token_reused"
    after = await client.post("/v1/auth/refresh", json={"refresh_token": new_refresh, "device_id": "phone-1"})
    assert after.status_code == 401
    assert after.json()["code"] == "refresh_token_invalid"


async def test_a_lost_refresh_answer_can_be_retried_from_the_same_device(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    first = await factory.login(user.username, device_id="phone-1")
    body = {"refresh_token": first["refresh_token"], "device_id": "phone-1"}
    lost = await client.post("/v1/auth/refresh", json=body)
    retried = await client.post("/v1/auth/refresh", json=body)
    assert lost.status_code == 200
    assert retried.status_code == 200
    # The retry answers the same successor: whichever answer reached the phone, it works, and nobody is signed out.
    assert retried.json()["refresh_token"] == lost.json()["refresh_token"]
    ok = await client.post("/v1/auth/refresh", json={**body, "refresh_token": retried.json()["refresh_token"]})
    assert ok.status_code == 200


async def test_refresh_token_of_another_device_is_refused(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    tokens = await factory.login(user.username, device_id="phone-1")
    response = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"], "device_id": "phone-2"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"


async def test_garbage_refresh_token(client: Client) -> None:
    response = await client.post("/v1/auth/refresh", json={"refresh_token": "nope", "device_id": "d"})
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"


async def test_missing_forged_expired_and_malformed_tokens(factory: Factory, client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    tenant = await factory.tenant()
    user = await factory.user(tenant)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user.id),
        "tid": str(tenant),
        "rol": "admin",
        "scp": "all",
        "tm": None,
        "dev": "d",
        "iat": now,
        "exp": now + 600,
    }
    forged = jwt.encode(claims, "an-attacker-guessing-the-signing-key-0123456789", algorithm="HS256")
    expired = jwt.encode({**claims, "iat": now - 1200, "exp": now - 600}, settings.jwt_secret, algorithm="HS256")
    cases = {
        None: "not_authenticated",
        "Basic abc": "not_authenticated",
        "Bearer ": "not_authenticated",
        f"Bearer {forged}": "token_invalid",
        f"Bearer {expired}": "token_expired",
        "Bearer not.a.jwt": "token_invalid",
        f"Bearer {jwt.encode({**claims, 'rol': 'king'}, settings.jwt_secret, algorithm='HS256')}": "token_invalid",
    }
    for header, code in cases.items():
        headers = {"Authorization": header} if header is not None else {}
        response = await client.get("/v1/me", headers=headers)
        assert response.status_code == 401, header
        assert response.json()["code"] == code, header
        assert response.headers["www-authenticate"] == "Bearer"


async def test_login_bad_input(client: Client) -> None:
    bad_bodies = [
        {},
        {"username": "a", "password": "b"},
        {"username": "a", "password": "b", "device_id": "d", "extra": 1},
        {"username": 1, "password": "b", "device_id": "d"},
        {"username": "", "password": "b", "device_id": "d"},
    ]
    for body in bad_bodies:
        response = await client.post("/v1/auth/token", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_failed"
    not_json = await client.post("/v1/auth/token", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 422
