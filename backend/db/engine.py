"""Connections: a SQLAlchemy async engine for ordinary reads and writes, and a lean pool of asyncpg
connections for the hot reads (see hotpool.py for why not asyncpg's own pool)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from backend.db.hotpool import HotPool
from backend.settings import Settings


@dataclass(slots=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hot: HotPool

    @classmethod
    async def connect(cls, settings: Settings) -> Database:
        engine = create_async_engine(
            settings.sqlalchemy_url,
            pool_size=settings.orm_pool_size,
            max_overflow=4,
            pool_pre_ping=False,
            connect_args={"server_settings": {"application_name": "groundwork"}},
        )
        hot = await HotPool.open(
            settings.database_url, settings.hot_pool_size, server_settings={"application_name": "groundwork-hot"}
        )
        return cls(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False), hot=hot)

    async def close(self) -> None:
        await self.hot.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session
