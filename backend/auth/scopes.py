"""Data scopes compiled into one SQL predicate.

A scope says whose records a caller sees: their own (self), their team's, their team's and every team's below
it, or the whole tenant's. `visible_to` turns a principal's scope into a predicate on a column holding a user id
(the record's owner, holder or author); lists, sync, exports and background jobs all use it, so "what may I
see" has one answer. The predicate's parameters are bound, not inlined, so a statement built with it can be
compiled once and reused for every caller with the same scope kind (see pois/queries.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from backend.auth.models import Team, User
from backend.auth.tokens import Principal
from mobile_contract.auth import DataScope

CALLER_ID = "caller_user_id"
CALLER_TEAM_ID = "caller_team_id"
CALLER_TENANT_ID = "caller_tenant_id"


def effective_scope(principal: Principal) -> DataScope:
    """A user without a team sees only their own records, whatever scope their role would give."""
    if principal.data_scope in (DataScope.TEAM, DataScope.TEAM_AND_BELOW) and principal.team_id is None:
        return DataScope.SELF
    return principal.data_scope


def visible_to(scope: DataScope, user_column: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """Predicate: the user in `user_column` is within `scope` of the caller (tenant filtering is separate).

    Binds `caller_user_id` and/or `caller_team_id`, and `caller_tenant_id` for the subqueries over users and
    teams (every statement is tenant-scoped, the subqueries included); supply them with `scope_params`.
    """
    if scope is DataScope.ALL:
        return true()
    if scope is DataScope.SELF:
        return user_column == bindparam(CALLER_ID)
    if scope is DataScope.TEAM:
        return user_column.in_(
            select(User.id).where(
                User.tenant_id == bindparam(CALLER_TENANT_ID), User.team_id == bindparam(CALLER_TEAM_ID)
            )
        )
    root = aliased(Team)
    below = (
        select(User.id)
        .join(Team, Team.id == User.team_id)
        .where(
            User.tenant_id == bindparam(CALLER_TENANT_ID),
            Team.tenant_id == bindparam(CALLER_TENANT_ID),
            Team.path.startswith(
                select(root.path)
                .where(root.tenant_id == bindparam(CALLER_TENANT_ID), root.id == bindparam(CALLER_TEAM_ID))
                .scalar_subquery()
            ),
        )
    )
    return user_column.in_(below)


def scope_params(principal: Principal) -> dict[str, Any]:
    return {CALLER_ID: principal.user_id, CALLER_TEAM_ID: principal.team_id, CALLER_TENANT_ID: principal.tenant_id}


async def users_in_scope(
    session: AsyncSession, principal: Principal, user_ids: Iterable[UUID], *, active_only: bool = False
) -> set[UUID]:
    """Which of these users the caller's data scope covers, in the caller's tenant (and, if asked, still active):
    the one answer to "is this person mine to manage" for reassigning, dispatching and reviewing."""
    wanted = list(set(user_ids))
    if not wanted:
        return set()
    statement = select(User.id).where(
        User.tenant_id == principal.tenant_id,
        User.id.in_(wanted),
        visible_to(effective_scope(principal), User.id),
    )
    if active_only:
        statement = statement.where(User.is_active.is_(True))
    return set(await session.scalars(statement, scope_params(principal)))
