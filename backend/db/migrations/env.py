"""Alembic environment: migrates with the async engine; GeoAlchemy2's helpers keep spatial indexes single."""

from __future__ import annotations

import asyncio

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from backend.tables import Base, sync_metadata

config = context.config
target_metadata = [Base.metadata, sync_metadata]


def _database_url() -> str:
    url: str = config.attributes["database_url"]
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run() -> None:
    engine = create_async_engine(_database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


asyncio.run(_run())
