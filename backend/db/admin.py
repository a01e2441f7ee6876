"""Creating and dropping databases on a server (embedded or DATABASE_URL), with the extensions we rely on."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.db.embedded import EmbeddedCluster, say
from backend.settings import Settings


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _maintenance(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(with_database_name(url, "postgres"))


async def create_database(url: str, *, drop_first: bool = False, template: str | None = None) -> bool:
    """Create the database of `url` unless it exists. Returns True when it was created."""
    name = database_name(url)
    conn = await _maintenance(url)
    try:
        if drop_first:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    conn = await _maintenance(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
    finally:
        await conn.close()


def prepare_server(settings: Settings) -> None:
    """Make sure a server is there to talk to: start the embedded cluster, or trust DATABASE_URL."""
    if settings.embedded:
        EmbeddedCluster(settings.data_dir, settings.embedded_pg_port).ensure_running()


def ensure_database(settings: Settings, *, reset: bool = False) -> None:
    prepare_server(settings)
    created = asyncio.run(create_database(settings.database_url, drop_first=reset))
    if created:
        say(f"created database {database_name(settings.database_url)}")
