"""The directory (users and teams within the caller's data scope) and tenant administration."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
from sqlalchemy import ColumnElement, func, literal, select, text, true, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.admin.models import SetPasswordToken
from backend.auth import service as auth_service
from backend.auth.models import Team, User
from backend.auth.passwords import Passwords
from backend.auth.permissions import require
from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.errors import DomainError, not_found
from backend.paging import decode_cursor, encode_cursor
from mobile_contract import admin as wire
from mobile_contract.admin import Feature
from mobile_contract.auth import DataScope, Role
from mobile_contract.errors import ErrorCode

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
        on_leave_until=user.on_leave_until,
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
        root = aliased(Team)  # not correlated with the outer teams
        own_path = select(root.path).where(root.tenant_id == principal.tenant_id, root.id == principal.team_id)
        return Team.path.startswith(own_path.scalar_subquery())
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


# -- the team tree -------------------------------------------------------------------------------------------------


async def _lock_tree(session: AsyncSession, tenant_id: UUID) -> None:
    """One change of a tenant's team tree at a time: two concurrent moves could otherwise each pass the cycle check
    and together make a cycle. A transaction-scoped advisory lock keyed by the tenant."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('groundwork.teams:' || CAST(:tenant AS text), 0))"),
        {"tenant": str(tenant_id)},
    )


async def _team(session: AsyncSession, tenant_id: UUID, team_id: UUID) -> Team:
    team = await session.scalar(select(Team).where(Team.tenant_id == tenant_id, Team.id == team_id))
    if team is None:
        raise not_found("team")
    return team


async def create_team(session: AsyncSession, principal: Principal, data: wire.TeamCreate) -> tuple[wire.TeamView, bool]:
    """A new team (and True), or, for a retry of the same id and body, the team as stored (and False)."""
    await require(session, principal, Feature.MANAGE_TEAMS, "Your role cannot manage teams.")
    await _lock_tree(session, principal.tenant_id)
    if data.id is not None:
        existing = await session.scalar(select(Team).where(Team.tenant_id == principal.tenant_id, Team.id == data.id))
        if existing is not None:
            if (existing.name, existing.parent_id) == (data.name, data.parent_id):
                return _team_wire(existing), False
            raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, "This team id was already used.")
    parent_path = "/"
    if data.parent_id is not None:
        parent_path = (await _team(session, principal.tenant_id, data.parent_id)).path
    team_id = data.id or uuid4()
    team = Team(
        id=team_id,
        tenant_id=principal.tenant_id,
        parent_id=data.parent_id,
        name=data.name,
        path=f"{parent_path}{team_id}/",
    )
    session.add(team)
    await session.flush()
    await session.refresh(team)
    return _team_wire(team), True


async def update_team(
    session: AsyncSession, principal: Principal, team_id: UUID, data: wire.TeamUpdate
) -> wire.TeamView:
    """Rename and/or move a team. A move rewrites the path of the team and of every team below it in one statement
    (the path is a prefix of theirs), so "team and below" scopes follow the move at once."""
    await require(session, principal, Feature.MANAGE_TEAMS, "Your role cannot manage teams.")
    await _lock_tree(session, principal.tenant_id)
    team = await _team(session, principal.tenant_id, team_id)
    if data.name is not msgspec.UNSET:
        team.name = data.name
    if data.parent_id is not msgspec.UNSET and data.parent_id != team.parent_id:
        new_parent_path = "/"
        if data.parent_id is not None:
            parent = await _team(session, principal.tenant_id, data.parent_id)
            if parent.path.startswith(team.path):
                raise DomainError(ErrorCode.TEAM_CYCLE, "A team cannot move under itself or a team below it.")
            new_parent_path = parent.path
        old_path, new_path = team.path, f"{new_parent_path}{team.id}/"
        team.parent_id = data.parent_id
        await session.flush()
        await session.execute(
            update(Team)
            .where(Team.tenant_id == principal.tenant_id, Team.path.startswith(old_path, autoescape=True))
            .values(path=literal(new_path) + func.substr(Team.path, len(old_path) + 1))
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    await session.refresh(team)
    return _team_wire(team)


# -- users ---------------------------------------------------------------------------------------------------------

SET_PASSWORD_TTL = timedelta(hours=72)  # long enough for an invitation sent on a Friday
# Not an argon2 hash: no password verifies against it (passwords.verify_password answers False), so a new user
# logs in only after choosing a password with their one-time token.
NO_PASSWORD = "!unset"  # noqa: S105 - a marker that no password matches


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_set_password(
    session: AsyncSession,
    *,
    tenant_id: UUID,
    user_id: UUID,
    purpose: str,
    now: datetime,
    created_by: UUID | None,
) -> wire.SetPasswordLink:
    """A new one-time token for the user; earlier unused ones die (only the latest link works)."""
    await session.execute(
        update(SetPasswordToken)
        .where(
            SetPasswordToken.tenant_id == tenant_id,
            SetPasswordToken.user_id == user_id,
            SetPasswordToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    expires_at = now + SET_PASSWORD_TTL
    session.add(
        SetPasswordToken(
            tenant_id=tenant_id,
            user_id=user_id,
            token_hash=_token_hash(token),
            purpose=purpose,
            expires_at=expires_at,
            created_by=created_by,
        )
    )
    await session.flush()
    return wire.SetPasswordLink(user_id=user_id, token=token, expires_at=expires_at)


async def _team_in_tenant(session: AsyncSession, tenant_id: UUID, team_id: UUID | None) -> None:
    if team_id is not None:
        await _team(session, tenant_id, team_id)


async def add_user(
    session: AsyncSession,
    *,
    tenant_id: UUID,
    data: wire.UserCreate,
    now: datetime,
    created_by: UUID | None,
) -> tuple[wire.UserCreated, bool]:
    """A user without a password yet, and the one-time token that lets them choose it (the API and the CLI).
    A retry of the same create before the user chose a password answers the user and a fresh token (False)."""
    username = auth_service.login_name(data.username)
    scope = data.data_scope or auth_service.DEFAULT_SCOPE_BY_ROLE[data.role]
    taken = await session.scalar(
        select(User)
        .prefix_with("/* all-tenants: usernames are unique across tenants */")
        .where(User.username == username)
    )
    if taken is not None:
        same = (taken.tenant_id, taken.display_name, taken.role, taken.team_id, taken.data_scope, taken.phone) == (
            tenant_id,
            data.display_name,
            data.role.value,
            data.team_id,
            scope.value,
            data.phone,
        )
        if not same or taken.password_hash != NO_PASSWORD:
            raise DomainError(ErrorCode.USERNAME_TAKEN, "This username is taken; choose another.")
        link = await issue_set_password(
            session, tenant_id=tenant_id, user_id=taken.id, purpose="invite", now=now, created_by=created_by
        )
        return wire.UserCreated(user=_user_wire(taken), set_password=link), False
    await _team_in_tenant(session, tenant_id, data.team_id)
    user = User(
        tenant_id=tenant_id,
        team_id=data.team_id,
        username=username,
        display_name=data.display_name,
        phone=data.phone,
        role=data.role.value,
        data_scope=scope.value,
        password_hash=NO_PASSWORD,
    )
    session.add(user)
    await session.flush()
    await session.refresh(user)
    link = await issue_set_password(
        session, tenant_id=tenant_id, user_id=user.id, purpose="invite", now=now, created_by=created_by
    )
    return wire.UserCreated(user=_user_wire(user), set_password=link), True


async def create_user(
    session: AsyncSession, principal: Principal, data: wire.UserCreate, *, now: datetime
) -> tuple[wire.UserCreated, bool]:
    await require(session, principal, Feature.MANAGE_USERS, "Your role cannot manage users.")
    return await add_user(session, tenant_id=principal.tenant_id, data=data, now=now, created_by=principal.user_id)


async def _user(session: AsyncSession, tenant_id: UUID, user_id: UUID) -> User:
    user = await session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None:
        raise not_found("user")
    return user


async def get_user(session: AsyncSession, principal: Principal, user_id: UUID) -> wire.UserView:
    visible = await session.scalar(
        select(User).where(
            User.tenant_id == principal.tenant_id,
            User.id == user_id,
            visible_to(effective_scope(principal), User.id),
        ),
        scope_params(principal),
    )
    if visible is None:
        raise not_found("user")
    return _user_wire(visible)


async def update_user(
    session: AsyncSession, principal: Principal, user_id: UUID, data: wire.UserUpdate
) -> wire.UserView:
    """Edit a user. A new role, team or data scope bumps their auth version (auth/service.py): their access
    tokens are refused at once and the next refresh carries the change."""
    await require(session, principal, Feature.MANAGE_USERS, "Your role cannot manage users.")
    user = await _user(session, principal.tenant_id, user_id)
    values: dict[str, Any] = {}
    if data.display_name is not msgspec.UNSET:
        user.display_name = data.display_name
    if data.on_leave_until is not msgspec.UNSET:  # who is away says nothing of what they may do: no version bump
        user.on_leave_until = data.on_leave_until
    if data.role is not msgspec.UNSET and data.role.value != user.role:
        values["role"] = data.role.value
        if data.data_scope is msgspec.UNSET:  # a new role brings its default scope unless one is given
            values["data_scope"] = auth_service.DEFAULT_SCOPE_BY_ROLE[data.role].value
    if data.data_scope is not msgspec.UNSET and data.data_scope.value != user.data_scope:
        values["data_scope"] = data.data_scope.value
    if data.team_id is not msgspec.UNSET and data.team_id != user.team_id:
        await _team_in_tenant(session, principal.tenant_id, data.team_id)
        values["team_id"] = data.team_id
    if user_id == principal.user_id and {"role", "data_scope"} & set(values):
        # so no admin demotes themselves out of the powers that could undo it (the last admin included)
        raise DomainError(ErrorCode.CONFLICT, "You cannot change your own role or scope; ask another admin.")
    await session.flush()
    if values:
        await auth_service.bump_user(session, tenant_id=principal.tenant_id, user_id=user_id, **values)
    await session.refresh(user)
    return _user_wire(user)


async def set_active(
    session: AsyncSession, principal: Principal, user_id: UUID, *, active: bool, now: datetime
) -> wire.UserView:
    """Disable (signed out everywhere at once: access tokens refused, refresh tokens revoked) or enable a user."""
    await require(session, principal, Feature.MANAGE_USERS, "Your role cannot manage users.")
    if not active and user_id == principal.user_id:
        raise DomainError(ErrorCode.CONFLICT, "You cannot disable yourself; ask another admin.")
    await _user(session, principal.tenant_id, user_id)
    if active:
        await auth_service.enable_user(session, tenant_id=principal.tenant_id, user_id=user_id)
    else:
        await auth_service.disable_user(session, tenant_id=principal.tenant_id, user_id=user_id, now=now)
    return _user_wire(await _user(session, principal.tenant_id, user_id))


async def reset_password(
    session: AsyncSession, principal: Principal, user_id: UUID, *, now: datetime
) -> wire.SetPasswordLink:
    await require(session, principal, Feature.MANAGE_USERS, "Your role cannot manage users.")
    await _user(session, principal.tenant_id, user_id)
    return await reset_user_password(session, principal.tenant_id, user_id, now=now, created_by=principal.user_id)


async def reset_user_password(
    session: AsyncSession, tenant_id: UUID, user_id: UUID, *, now: datetime, created_by: UUID | None
) -> wire.SetPasswordLink:
    """A new one-time token for the user. Their current password stops working and every session ends at once:
    a reset is what an admin does when a password is lost or known to someone else."""
    await auth_service.bump_user(session, tenant_id=tenant_id, user_id=user_id, password_hash=NO_PASSWORD)
    await auth_service.revoke_user_tokens(session, tenant_id, user_id, now)
    return await issue_set_password(
        session, tenant_id=tenant_id, user_id=user_id, purpose="reset", now=now, created_by=created_by
    )


async def consume_set_password(
    session: AsyncSession, passwords: Passwords, *, token: str, password: str, now: datetime
) -> tuple[UUID, UUID]:
    """Spend a one-time token and set the password: (tenant_id, user_id). Unknown, expired or used: refused alike."""
    row = (
        await session.execute(
            update(SetPasswordToken)
            .prefix_with("/* all-tenants: an unauthenticated caller's token names its tenant */")
            .where(
                SetPasswordToken.token_hash == _token_hash(token),
                SetPasswordToken.used_at.is_(None),
                SetPasswordToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(SetPasswordToken.tenant_id, SetPasswordToken.user_id)
        )
    ).first()
    if row is None:
        raise DomainError(
            ErrorCode.SET_PASSWORD_TOKEN_INVALID, "This link is unknown, expired or already used; ask for a new one."
        )
    tenant_id, user_id = row
    await auth_service.set_password(
        session, passwords, tenant_id=tenant_id, user_id=user_id, new_password=password, now=now
    )
    return tenant_id, user_id
