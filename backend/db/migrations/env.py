"""Alembic environment: migrates with the async engine; GeoAlchemy2's helpers keep spatial indexes single."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from backend.tables import Base, sync_metadata
from backend.tracking.models import PARTITION_NAME

config = context.config
target_metadata = [Base.metadata, sync_metadata]


def _database_url() -> str:
    url: str = config.attributes["database_url"]
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """GeoAlchemy2's filter, and no day partitions of the trail: they are made at run time, not by migrations
    (backend/tracking/models.py)."""
    if type_ == "table" and reflected and name is not None and PARTITION_NAME.match(name):
        return False
    table_name = getattr(getattr(obj, "table", None), "name", None)
    if type_ == "index" and reflected and table_name is not None and PARTITION_NAME.match(table_name):
        return False
    included: bool = alembic_helpers.include_object(obj, name, type_, reflected, compare_to)  # type: ignore[no-untyped-call]
    return included


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
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
