"""The pull route's fast path (backend/offline/fastpull.py) answers exactly as the route does, for any body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from backend.db.engine import Database
from backend.offline import fastpull
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.sync.test_sync import SHOP, Client, pull_all
from tests.tasks.helpers import assign, create_campaign

PULL = "/v1/sync/pull"


async def both(client: Client, monkeypatch: pytest.MonkeyPatch, body: bytes, headers: dict[str, str]) -> Any:
    """The answer of the fast path, then the route's (the fast path told to hand every request on)."""
    fast = await client.post(PULL, content=body, headers={"content-type": "application/json", **headers})

    async def never(scope: Any, body: bytes, pages: Any) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(fastpull, "_answer", never)
        slow = await client.post(PULL, content=body, headers={"content-type": "application/json", **headers})
    return fast, slow


def comparable(response: Any) -> Any:
    body = response.json()
    if response.status_code == 200:
        body.pop("cursor")  # made of the snapshot's xmin: may move between two requests
    return response.status_code, body, response.headers.get("content-type")


async def test_pages_of_a_sync_are_the_same_by_both_paths(
    factory: Factory, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    pois = [await factory.poi(tenant, SHOP[0] + i * 1e-4, SHOP[1], name=f"Shop {i}") for i in range(12)]
    await assign(client, ops, await create_campaign(client, ops), [(p, bd.id) for p in pois])
    cursor = None
    for _ in range(4):
        body = json.dumps({"limit": 2, **({"cursor": cursor} if cursor else {})}).encode()
        fast, slow = await both(client, monkeypatch, body, bd.headers)
        assert comparable(fast) == comparable(slow)
        cursor = fast.json()["cursor"]
    # A page large enough to be gzipped is gzipped by both.
    fast, slow = await both(client, monkeypatch, b'{"limit": 5000}', {**bd.headers, "accept-encoding": "gzip"})
    assert comparable(fast) == comparable(slow)
    assert fast.headers["content-encoding"] == slow.headers["content-encoding"] == "gzip"


bodies = st.one_of(
    st.binary(max_size=40),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "limit": st.integers(-5, 6000) | st.text(max_size=3),
            "cursor": st.text(max_size=30) | st.none(),
            "extra": st.integers(),
        },
    ).map(lambda value: json.dumps(value).encode()),
)
tokens = st.sampled_from(["good", "none", "garbage", "basic"])


@given(body=bodies, token=tokens)
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_body_and_token_get_the_same_answer_by_both_paths(
    database: Database, client: Client, monkeypatch: pytest.MonkeyPatch, body: bytes, token: str
) -> None:
    user = await _user(database, client)
    headers = {
        "good": user.headers,
        "none": {},
        "garbage": {"authorization": "Bearer not-a-token"},
        "basic": {"authorization": "Basic dXNlcjpwYXNz"},
    }[token]
    fast, slow = await both(client, monkeypatch, body, headers)
    assert comparable(fast) == comparable(slow)


_USERS: list[FieldUser] = []


async def _user(database: Database, client: Client) -> FieldUser:
    if not _USERS:
        factory = Factory(database, client)
        tenant = await factory.tenant()
        _USERS.append(await factory.user(tenant))
        await pull_all(client, _USERS[0])
    return _USERS[0]


async def test_a_body_over_the_limit_is_refused_by_the_route(factory: Factory, client: Client) -> None:
    bd = await factory.user(await factory.tenant())
    response = await client.post(PULL, content=b'{"limit": 1' + b" " * 2_000_000 + b"}", headers=bd.headers)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
