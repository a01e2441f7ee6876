"""Test harness: a real PostgreSQL + PostGIS database built by the migrations, and the app served in-process.

The database is created once per run (`groundwork_test_<pid>`, dropped at the end) on the embedded cluster, or on the
server of DATABASE_URL. Tests isolate themselves by tenant: each builds its own tenant with the factories, and
every query in the app is tenant-scoped, so tests never see each other's rows and nothing needs truncating.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

os.environ.setdefault("GROUNDWORK_ARGON2_FAST", "1")
os.environ.setdefault("GROUNDWORK_REFUSAL_DELAY_S", "0")  # no tarpit: the lockout tests would only wait
os.environ.setdefault("GROUNDWORK_GC_FREEZE", "0")  # the suite builds many apps: freezing each would keep its garbage

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.admin import create_database, drop_database, prepare_server, with_database_name
from backend.db.embedded import EmbeddedCluster
from backend.db.engine import Database
from backend.db.migrate import upgrade
from backend.settings import Settings, get_settings
from tests.factories import Factory
from tests.tenant_scope import TenantScopePlugin

# One database per test run, so runs in parallel (two checkouts, two engineers) never drop each other's.
TEST_DATABASE = os.environ.get("GROUNDWORK_TEST_DATABASE", f"groundwork_test_{os.getpid()}")


def pytest_configure(config: pytest.Config) -> None:
    # Every statement the suite sends is checked for a tenant_id predicate (tests/tenant_scope.py).
    config.pluginmanager.register(TenantScopePlugin(), "tenant-scope")


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    base = get_settings()
    cluster = EmbeddedCluster(base.data_dir, base.embedded_pg_port) if base.embedded else None
    started_here = cluster is not None and not cluster.is_running()
    prepare_server(base)
    url = with_database_name(base.database_url, TEST_DATABASE)
    asyncio.run(create_database(url, drop_first=True))
    upgrade(url)
    yield base.with_database(url)
    asyncio.run(drop_database(url))
    if cluster is not None and started_here:
        cluster.stop()  # leave the machine as we found it


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://groundwork.test") as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = await Database.connect(settings)
    yield db
    await db.close()


@pytest.fixture
async def factory(database: Database, client: AsyncTestClient) -> Factory:  # type: ignore[type-arg]
    return Factory(database, client)
