"""Refresh rotation without a window a thief can use (issue 8), with the clock moved by the test.

Before: within the 60 s grace, anyone holding the old refresh token and the device id (readable in any access
token) got a new pair and silently signed the owner out. Now a retry within the grace answers the same pair, so
nobody is signed out, and any other second use raises the reuse alarm and revokes the family.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.auth import service
from backend.auth.passwords import Passwords
from backend.auth.tokens import TokenCodec
from backend.db.engine import Database
from backend.errors import DomainError
from backend.settings import Settings
from mobile_contract.auth import TokenPair
from tests.factories import Factory

Client = AsyncTestClient  # type: ignore[type-arg]


class Phone:
    """Refreshes through the service with an explicit clock, one session (and commit) per call, as a request."""

    def __init__(self, database: Database, codec: TokenCodec, settings: Settings, start: datetime) -> None:
        self.database, self.codec, self.settings, self.start = database, codec, settings, start

    async def refresh(self, token: str, *, at: float, device_id: str = "phone-1") -> TokenPair:
        async with self.database.sessions() as session:
            pair = await service.refresh(
                session,
                self.codec,
                self.settings,
                refresh_token=token,
                device_id=device_id,
                now=self.start + timedelta(seconds=at),
            )
            await session.commit()
            return pair

    async def refused(self, token: str, *, at: float, device_id: str = "phone-1") -> str:
        with pytest.raises(DomainError) as refused:
            await self.refresh(token, at=at, device_id=device_id)
        assert refused.value.status == 401
        return refused.value.code.value


@pytest.fixture
async def login(factory: Factory, database: Database, auth_settings: Settings, codec: TokenCodec) -> Any:
    tenant = await factory.tenant()
    user = await factory.user(tenant, login=False)
    start = datetime.now(UTC)
    async with database.sessions() as session:
        pair = await service.login(
            session,
            codec,
            Passwords(fast=True, concurrency=2, queue=4),
            auth_settings,
            username=user.username,
            password="correct horse battery staple",
            device_id="phone-1",
            source=f"test-{user.id}",
            now=start,
        )
        await session.commit()
    return Phone(database, codec, auth_settings, start), pair


async def test_a_lost_answer_retried_gets_the_same_pair_and_the_phone_keeps_working(login: Any) -> None:
    phone, first = login
    lost = await phone.refresh(first.refresh_token, at=60)
    retried = await phone.refresh(first.refresh_token, at=100)  # 40 s after the rotation: within the grace
    assert retried.refresh_token == lost.refresh_token
    assert retried.access_token == lost.access_token  # re-issued with its first `iat`: the very same token
    assert retried.expires_in == lost.expires_in - 40
    following = await phone.refresh(retried.refresh_token, at=900)
    assert following.refresh_token not in (first.refresh_token, lost.refresh_token)
    await phone.refresh(following.refresh_token, at=1800)


async def test_parallel_retries_all_get_the_same_pair(login: Any) -> None:
    phone, first = login
    pairs = await asyncio.gather(*(phone.refresh(first.refresh_token, at=10) for _ in range(4)))
    assert len({pair.refresh_token for pair in pairs}) == 1
    await phone.refresh(pairs[0].refresh_token, at=20)


async def test_a_thief_replaying_within_the_grace_signs_nobody_out_and_is_caught_later(login: Any) -> None:
    phone, first = login
    owner = await phone.refresh(first.refresh_token, at=0)
    thief = await phone.refresh(first.refresh_token, at=30)  # the old token and the device id, within the grace
    assert thief.refresh_token == owner.refresh_token  # nothing the owner does not already have
    # The owner is not signed out: their next refresh works.
    owner_next = await phone.refresh(owner.refresh_token, at=900)
    # The thief comes back with the shared successor after the owner used it: reuse, the family dies.
    assert await phone.refused(thief.refresh_token, at=1000) == "refresh_token_reused"
    assert await phone.refused(owner_next.refresh_token, at=1001) == "refresh_token_invalid"


async def test_when_the_thief_refreshes_first_the_owners_next_refresh_raises_the_alarm(login: Any) -> None:
    phone, first = login
    owner = await phone.refresh(first.refresh_token, at=0)
    thief = await phone.refresh(first.refresh_token, at=30)
    thief_next = await phone.refresh(thief.refresh_token, at=40)
    # The owner refreshes as usual a quarter of an hour later: a second use, after the grace, is the alarm.
    assert await phone.refused(owner.refresh_token, at=900) == "refresh_token_reused"
    assert await phone.refused(thief_next.refresh_token, at=901) == "refresh_token_invalid"


async def test_a_replay_after_the_successor_was_used_is_reuse_even_within_the_grace(login: Any) -> None:
    phone, first = login
    owner = await phone.refresh(first.refresh_token, at=0)
    owner_next = await phone.refresh(owner.refresh_token, at=10)
    assert await phone.refused(first.refresh_token, at=20) == "refresh_token_reused"
    assert await phone.refused(owner_next.refresh_token, at=21) == "refresh_token_invalid"


async def test_after_the_grace_a_second_use_revokes_the_family(login: Any) -> None:
    phone, first = login
    owner = await phone.refresh(first.refresh_token, at=0)
    assert await phone.refused(first.refresh_token, at=61) == "refresh_token_reused"
    assert await phone.refused(owner.refresh_token, at=62) == "refresh_token_invalid"


async def test_a_second_use_from_another_device_is_reuse_even_within_the_grace(login: Any) -> None:
    phone, first = login
    owner = await phone.refresh(first.refresh_token, at=0)
    assert await phone.refused(first.refresh_token, at=5, device_id="evil") == "refresh_token_reused"
    assert await phone.refused(owner.refresh_token, at=6) == "refresh_token_invalid"


async def test_an_unused_token_from_another_device_is_refused_and_stays_usable(login: Any) -> None:
    phone, first = login
    assert await phone.refused(first.refresh_token, at=0, device_id="evil") == "refresh_token_invalid"
    await phone.refresh(first.refresh_token, at=1)


async def test_an_expired_refresh_token_is_refused(login: Any, auth_settings: Settings) -> None:
    phone, first = login
    expired_at = auth_settings.refresh_token_ttl_s + 1
    assert await phone.refused(first.refresh_token, at=expired_at) == "refresh_token_invalid"


async def test_refresh_bad_input(client: Client) -> None:
    bodies: list[Any] = [
        {},
        {"refresh_token": "x"},
        {"refresh_token": "", "device_id": "d"},
        {"refresh_token": "x" * 513, "device_id": "d"},
        {"refresh_token": 1, "device_id": "d"},
        {"refresh_token": "x", "device_id": "d", "more": 1},
        [],
    ]
    for body in bodies:
        answer = await client.post("/v1/auth/refresh", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["code"] == "validation_failed"
    nul = await client.post("/v1/auth/refresh", json={"refresh_token": "a\u0000b", "device_id": "d"})
    assert nul.status_code in (401, 422)
    assert nul.json()["code"] in ("validation_failed", "refresh_token_invalid")
