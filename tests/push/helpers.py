"""Registering phones through the API and reading what the queue and the registry hold."""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID

from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from backend.db.engine import Database
from backend.push.service import notify_users
from tests.factories import FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]


def apns_token() -> str:
    return secrets.token_hex(32)


async def register(
    client: Client,
    user: FieldUser,
    push_token: str,
    *,
    device_id: str = "install-1",
    platform: str = "ios",
    app_version: str = "1.4.0",
) -> Response:
    body = {"device_id": device_id, "platform": platform, "push_token": push_token, "app_version": app_version}
    return await client.post("/v1/devices", json=body, headers=user.headers)


async def notify(database: Database, tenant_id: UUID, users: list[UUID], **hints: Any) -> int:
    hints.setdefault("reason", "assigned")
    async with database.sessions() as session:
        queued = await notify_users(session, tenant_id, users, **hints)
        await session.commit()
    return queued


async def jobs(database: Database, tenant_id: UUID) -> list[dict[str, Any]]:
    async with database.sessions() as session:
        rows = await session.execute(
            text("SELECT * FROM background_jobs WHERE tenant_id = :tenant ORDER BY id"), {"tenant": tenant_id}
        )
        return [dict(row._mapping) for row in rows]


async def devices(database: Database, tenant_id: UUID) -> dict[tuple[UUID, str], dict[str, Any]]:
    """The tenant's device rows by (user, install id)."""
    async with database.sessions() as session:
        rows = await session.execute(text("SELECT * FROM devices WHERE tenant_id = :tenant"), {"tenant": tenant_id})
        return {(row.user_id, row.device_id): dict(row._mapping) for row in rows}
