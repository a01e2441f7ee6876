"""A database of its own holding the demo data (small: 2,000 merchants), for the README's examples and the
walkthrough, so their fixed ids never meet the other tests' rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from backend.db.admin import create_database, drop_database, with_database_name
from backend.db.migrate import upgrade
from backend.demo.seed import seed_demo
from backend.settings import Settings
from tests.conftest import TEST_DATABASE

DEMO_POIS = 2_000


@pytest.fixture(scope="session")
def demo_settings(settings: Settings) -> Iterator[Settings]:
    url = with_database_name(settings.database_url, f"{TEST_DATABASE}_demo")
    asyncio.run(create_database(url, drop_first=True))
    upgrade(url)
    asyncio.run(seed_demo(url, poi_count=DEMO_POIS))
    yield settings.with_database(url)
    asyncio.run(drop_database(url))
