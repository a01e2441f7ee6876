"""The directory (users and teams within the caller's data scope) and tenant administration."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ColumnElement, literal, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import Team, User
from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.paging import decode_cursor, encode_cursor
from mobile_contract import admin as wire
from mobile_contract.auth import DataScope, Role

# -- the directory -------------------------------------------------------------------------------------------------


def _user_wire(user: User) -> wire.UserView:
    return wire.UserView(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        data_scope=DataScope(user.data_scope),
        team_id=user.team_id,
        is_active=user.is_active,
        created_at=user.created_at,
    )


async def list_users(
    session: AsyncSession,
    principal: Principal,
    *,
    role: Role | None,
    team_id: UUID | None,
    limit: int,
    cursor: str | None,
) -> wire.UserPage:
    """The users the caller's data scope covers (the same predicate as every list: auth/scopes.py), by name."""
    statement = select(User).where(
        User.tenant_id == principal.tenant_id, visible_to(effective_scope(principal), User.id)
    )
    if role is not None:
        statement = statement.where(User.role == role.value)
    if team_id is not None:
        statement = statement.where(User.team_id == team_id)
    if cursor:
        name, after = decode_cursor(cursor, tuple[str, UUID])
        statement = statement.where(tuple_(User.display_name, User.id) > tuple_(literal(name), literal(after)))
    rows = list(
        await session.scalars(statement.order_by(User.display_name, User.id).limit(limit + 1), scope_params(principal))
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].display_name, page[-1].id) if len(rows) > limit else None
    return wire.UserPage(items=[_user_wire(u) for u in page], next_cursor=next_cursor)


def _teams_visible(principal: Principal) -> ColumnElement[bool]:
    """Teams the caller's scope covers: every team (all), their team and those below it (team_and_below), their
    own team (team, self), none without a team."""
    scope = effective_scope(principal)
    if scope is DataScope.ALL:
        return true()
    if principal.team_id is None:
        return Team.id.is_(None)
    if scope is DataScope.TEAM_AND_BELOW:
        root = select(Team.path).where(Team.tenant_id == principal.tenant_id, Team.id == principal.team_id)
        return Team.path.startswith(root.scalar_subquery())
    return Team.id == principal.team_id


def team_depth(path: str) -> int:
    return path.strip("/").count("/")


def _team_wire(team: Team) -> wire.TeamView:
    return wire.TeamView(
        id=team.id, name=team.name, parent_id=team.parent_id, depth=team_depth(team.path), created_at=team.created_at
    )


async def list_teams(session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None) -> wire.TeamPage:
    """Teams within the caller's scope, in tree order (a parent before its children)."""
    statement = select(Team).where(Team.tenant_id == principal.tenant_id, _teams_visible(principal))
    if cursor:
        (after,) = decode_cursor(cursor, tuple[str])
        statement = statement.where(Team.path > after)
    rows = list(await session.scalars(statement.order_by(Team.path).limit(limit + 1)))
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].path) if len(rows) > limit else None
    return wire.TeamPage(items=[_team_wire(t) for t in page], next_cursor=next_cursor)
