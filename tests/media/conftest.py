"""Photos are written to a directory of this test run, not to the developer's .data/photos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import Settings


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("photos")


@pytest.fixture(scope="session")
async def media_client(settings: Settings, photo_dir: Path) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(replace(settings, photo_dir=photo_dir))
    async with AsyncTestClient(app=app, base_url="http://groundwork.test") as test_client:
        yield test_client
