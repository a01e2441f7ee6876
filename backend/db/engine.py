"""Connections: a SQLAlchemy async engine for ordinary reads and writes, and a lean asyncpg pool for hot reads.

The hot pool skips asyncpg's per-release reset (`SELECT pg_advisory_unlock_all()` and friends): its
connections never take advisory locks or change session state, and the reset cost ~19% of nearby's
throughput (research/perf-baseline.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from backend.settings import Settings


async def _no_reset(connection: asyncpg.Connection) -> None:
    """The hot pool's connections hold no session state worth resetting."""


@dataclass(slots=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hot: asyncpg.Pool

    @classmethod
    async def connect(cls, settings: Settings) -> Database:
        engine = create_async_engine(
            settings.sqlalchemy_url,
            pool_size=settings.orm_pool_size,
            max_overflow=4,
            pool_pre_ping=False,
            connect_args={"server_settings": {"application_name": "groundwork"}},
        )
        hot = await asyncpg.create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.hot_pool_size,
            reset=_no_reset,
            server_settings={"application_name": "groundwork-hot"},
        )
        return cls(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False), hot=hot)

    async def close(self) -> None:
        await self.hot.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session
