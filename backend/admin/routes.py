"""HTTP routes of the directory (users and teams in the caller's scope) and of tenant administration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.admin import service
from backend.auth import permissions
from backend.auth.passwords import Passwords
from backend.auth.tokens import Principal
from backend.auth.userstate import UserStates
from backend.errors import problems
from backend.openapi import replayed
from mobile_contract import admin as wire
from mobile_contract.admin import Feature
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

    @post(
        "/",
        operation_id="createUser",
        responses={
            **replayed(wire.UserCreated, "A retry before the user chose a password: the user and a fresh token"),
            **problems(401, 403, 404, 409),
        },
        summary="Add a user (admins): the answer carries a one-time set-password token, shown once",
    )
    async def create_user(
        self,
        data: JSONBody[wire.UserCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Response[wire.UserCreated]:
        created, new = await service.create_user(session, principal, data, now=datetime.now(UTC))
        await session.commit()
        return Response(created, status_code=201 if new else 200)

    @get("/{user_id:uuid}", operation_id="getUser", responses=problems(401, 404), summary="One user in my scope")
    async def get_user(
        self, user_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.UserView:
        return await service.get_user(session, principal, user_id)

    @patch(
        "/{user_id:uuid}",
        operation_id="updateUser",
        responses=problems(401, 403, 404),
        summary="Edit a user (admins); a new role, team or scope takes effect at once",
    )
    async def update_user(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[wire.UserUpdate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        user_states: NamedDependency[UserStates],
    ) -> wire.UserView:
        user = await service.update_user(session, principal, user_id, data)
        await session.commit()
        user_states.forget(user_id, principal.tenant_id)
        return user

    @post(
        "/{user_id:uuid}/disable",
        operation_id="disableUser",
        status_code=200,
        responses=problems(401, 403, 404, 409),
        summary="Disable a user (admins): signed out everywhere at once",
    )
    async def disable(
        self,
        user_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        user_states: NamedDependency[UserStates],
    ) -> wire.UserView:
        user = await service.set_active(session, principal, user_id, active=False, now=datetime.now(UTC))
        await session.commit()
        user_states.forget(user_id, principal.tenant_id)
        return user

    @post(
        "/{user_id:uuid}/enable",
        operation_id="enableUser",
        status_code=200,
        responses=problems(401, 403, 404),
        summary="Enable a disabled user again (admins)",
    )
    async def enable(
        self,
        user_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        user_states: NamedDependency[UserStates],
    ) -> wire.UserView:
        user = await service.set_active(session, principal, user_id, active=True, now=datetime.now(UTC))
        await session.commit()
        user_states.forget(user_id, principal.tenant_id)
        return user

    @post(
        "/{user_id:uuid}/password-reset",
        operation_id="resetPassword",
        status_code=200,
        responses=problems(401, 403, 404),
        summary="A new one-time set-password token (admins); the old password and sessions end at once",
    )
    async def reset_password(
        self,
        user_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        user_states: NamedDependency[UserStates],
    ) -> wire.SetPasswordLink:
        link = await service.reset_password(session, principal, user_id, now=datetime.now(UTC))
        await session.commit()
        user_states.forget(user_id, principal.tenant_id)
        return link


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

    @post(
        "/",
        operation_id="createTeam",
        responses={
            **replayed(wire.TeamView, "A retry of the same id: the team as stored, nothing changed"),
            **problems(401, 403, 404, 409),
        },
        summary="Add a team (admins)",
    )
    async def create_team(
        self,
        data: JSONBody[wire.TeamCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Response[wire.TeamView]:
        team, created = await service.create_team(session, principal, data)
        await session.commit()
        return Response(team, status_code=201 if created else 200)

    @patch(
        "/{team_id:uuid}",
        operation_id="updateTeam",
        responses=problems(401, 403, 404, 409),
        summary="Rename a team or move it under another (admins); its subtree moves with it",
    )
    async def update_team(
        self,
        team_id: FromPath[UUID],
        data: JSONBody[wire.TeamUpdate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.TeamView:
        team = await service.update_team(session, principal, team_id, data)
        await session.commit()
        return team


class SetPasswordController(Controller):
    path = "/v1/auth/set-password"
    tags = ["auth"]

    @post(
        "/",
        operation_id="setPassword",
        status_code=204,
        responses=problems(400, 503),
        security=[{}],  # the one-time token is the credential
        summary="Choose a password with a one-time token (from an admin's invitation or reset)",
    )
    async def set_password(
        self,
        data: JSONBody[wire.SetPassword],
        session: NamedDependency[AsyncSession],
        passwords: NamedDependency[Passwords],
        user_states: NamedDependency[UserStates],
    ) -> None:
        tenant_id, user_id = await service.consume_set_password(
            session, passwords, token=data.token, password=data.password, now=datetime.now(UTC)
        )
        await session.commit()
        user_states.forget(user_id, tenant_id)


def _permissions_wire(found: dict[Feature, frozenset[Role]]) -> wire.Permissions:
    return wire.Permissions(
        features=[
            wire.FeatureRoles(
                feature=feature,
                roles=sorted(found[feature]),
                default=found[feature] == permissions.DEFAULT_ROLES[feature],
            )
            for feature in Feature
        ]
    )


class PermissionController(Controller):
    path = "/v1/admin/permissions"
    tags = ["admin"]

    @get("/", operation_id="getPermissions", responses=problems(401, 403), summary="What each role may do here")
    async def get_permissions(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.Permissions:
        await permissions.require(
            session, principal, Feature.MANAGE_PERMISSIONS, "Your role cannot see the permissions."
        )
        return _permissions_wire(await permissions.table(session, principal.tenant_id))

    @put(
        "/",
        operation_id="updatePermissions",
        responses=problems(401, 403),
        summary="Change the roles of some features (admins); the others keep theirs",
    )
    async def update_permissions(
        self,
        data: JSONBody[wire.PermissionsUpdate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.Permissions:
        await permissions.require(
            session, principal, Feature.MANAGE_PERMISSIONS, "Your role cannot change the permissions."
        )
        found = await permissions.update(
            session, principal.tenant_id, {f.feature: f.roles for f in data.features}, data.defaults
        )
        await session.commit()
        return _permissions_wire(found)
