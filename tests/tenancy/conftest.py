"""One client for every create endpoint, photos included (written to a directory of this test run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import Settings


@pytest.fixture(scope="session")
async def keyed_client(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(replace(settings, photo_dir=tmp_path_factory.mktemp("tenancy-photos")))
    async with AsyncTestClient(app=app, base_url="http://groundwork.test") as test_client:
        yield test_client
