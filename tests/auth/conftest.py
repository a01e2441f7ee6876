"""Shared pieces of the auth tests: the app's user-state cache with a clock the tests move, service handles."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from litestar.testing import AsyncTestClient

from backend.auth.passwords import Passwords
from backend.auth.tokens import TokenCodec
from backend.auth.userstate import UserStates
from backend.settings import Settings


class MovableClock:
    """A monotonic clock the test moves forward; it starts at the real one so entries made before still age."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def state_clock(client: AsyncTestClient) -> Iterator[MovableClock]:  # type: ignore[type-arg]
    user_states: UserStates = client.app.state.user_states
    clock = MovableClock()
    original = user_states.clock
    user_states.clock = clock
    yield clock
    user_states.clock = original


@pytest.fixture
def user_states(client: AsyncTestClient) -> UserStates:  # type: ignore[type-arg]
    states: UserStates = client.app.state.user_states
    return states


@pytest.fixture
def auth_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, argon2_fast=True)


@pytest.fixture
def codec(auth_settings: Settings) -> TokenCodec:
    return TokenCodec(auth_settings)


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(fast=True, concurrency=2, queue=16)


def utc(seconds: float = 0.0) -> datetime:
    """A fixed point in time for service-level tests (they pass `now`; nothing reads the wall clock)."""
    return datetime.fromtimestamp(1_900_000_000 + seconds, UTC)
