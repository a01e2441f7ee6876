"""HTTP routes of the directory (users and teams in the caller's scope) and of tenant administration."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.admin import service
from backend.auth.tokens import Principal
from backend.errors import problems
from mobile_contract import admin as wire
from mobile_contract.auth import Role
from mobile_contract.base import SINGLE_LINE

Limit = Annotated[int, Parameter(ge=1, le=200)]
Cursor = Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)]


class UserController(Controller):
    path = "/v1/users"
    tags = ["admin"]

    @get("/", operation_id="listUsers", responses=problems(400, 401), summary="Users in the caller's data scope")
    async def list_users(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        role: FromQuery[Role | None] = None,
        team_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> wire.UserPage:
        return await service.list_users(session, principal, role=role, team_id=team_id, limit=limit, cursor=cursor)


class TeamController(Controller):
    path = "/v1/teams"
    tags = ["admin"]

    @get("/", operation_id="listTeams", responses=problems(400, 401), summary="Teams in the caller's data scope")
    async def list_teams(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> wire.TeamPage:
        return await service.list_teams(session, principal, limit=limit, cursor=cursor)
