"""The app in a real server process, for the live stream's tests (a real HTTP client on a real socket)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.settings import Settings
from tests.live_server import LiveServer


@pytest.fixture(scope="session")
def tracking_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(settings, log=tmp_path_factory.mktemp("tracking-server") / "uvicorn.log")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
