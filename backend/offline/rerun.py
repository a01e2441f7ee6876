"""Re-running the mutations stored as `failed` (a bug of ours), once the bug is fixed: `groundwork sync rerun`."""

from __future__ import annotations

import math
from collections.abc import Callable
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User
from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.offline.registry import SyncRegistry
from backend.settings import Settings
from mobile_contract.auth import DataScope, Role
from sync import engine


async def principal_for(session: AsyncSession, user_id: UUID) -> Principal | None:
    """The user who pushed the mutation, acting with their role and scope of today (None: gone or deactivated)."""
    user = await session.scalar(
        select(User)
        .prefix_with("/* all-tenants: an operator's rerun names the user, and the user the tenant */")
        .where(User.id == user_id, User.is_active.is_(True))
    )
    if user is None:
        return None
    return Principal(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=Role(user.role),
        data_scope=DataScope(user.data_scope),
        team_id=user.team_id,
        device_id="operator-rerun",
        expires_at=math.inf,
    )


async def rerun(
    settings: Settings,
    registry: SyncRegistry,
    *,
    user_id: UUID | None,
    mutation_id: int | None,
    progress: Callable[[engine.Rerun, int, int], None] | None = None,
) -> list[engine.Rerun]:
    database = await Database.connect(settings)
    try:
        return await engine.rerun_failed(
            sessions=database.sessions,
            registry=registry,
            actor_for=principal_for,
            user_id=user_id,
            mutation_id=mutation_id,
            progress=progress,
            context=settings,
        )
    finally:
        await database.close()
