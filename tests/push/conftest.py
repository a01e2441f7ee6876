"""Fixtures of the push tests: made-up Apple credentials, a local APNs per test, the real delivery pointed at it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.push.apns import ApnsSettings, PushDelivery
from backend.push.service import DELIVER
from backend.queue.service import Registry
from tests.push.apns_server import Credentials, LocalApns, make_credentials


@pytest.fixture(scope="session")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return make_credentials(Path(tmp_path_factory.mktemp("apns")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def apns(credentials: Credentials) -> AsyncIterator[LocalApns]:
    """A local APNs on a port of its own, not yet listening: a test starts it (or leaves it down)."""
    server = LocalApns(credentials, port=free_port())
    yield server
    await server.stop()


def apns_settings(credentials: Credentials, port: int) -> ApnsSettings:
    return ApnsSettings(
        key_file=credentials.key_file,
        key_id=credentials.key_id,
        team_id=credentials.team_id,
        topic=credentials.topic,
        server=f"127.0.0.1:{port}",
        ca_file=credentials.ca_file,
    )


@pytest.fixture
async def push_registry(credentials: Credentials, apns: LocalApns) -> AsyncIterator[Registry]:
    """The real `push.deliver` handler, its aioapns client pointed at the local APNs."""
    delivery = PushDelivery(apns_settings(credentials, apns.port))
    registry = Registry()
    registry.register(DELIVER, delivery)
    yield registry
    await delivery.close()
