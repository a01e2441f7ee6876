"""The platform admin's commands: make a tenant with its first admin, and a few user operations by username.

They run the same service functions as the API (backend/admin/service.py). A change made here reaches the API
processes within their user-state cache's seconds (auth/userstate.py), since no process here can forget for them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

import click
import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.admin import service
from backend.auth import service as auth_service
from backend.auth.models import Tenant, User
from backend.db.engine import Database
from backend.errors import DomainError
from mobile_contract import admin as wire
from mobile_contract.auth import Role

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


def _shown(link: wire.SetPasswordLink, username: str) -> str:
    return (
        f"{username}: one-time set-password token (shown once, until {link.expires_at.isoformat()}):\n"
        f"  {link.token}\n"
        f'  POST /v1/auth/set-password {{"token": "{link.token}", "password": "..."}}'
    )


async def _tenant_id(session: AsyncSession, slug: str) -> UUID:
    tenant_id = await session.scalar(
        select(Tenant.id).prefix_with("/* all-tenants: the operator names the tenant */").where(Tenant.slug == slug)
    )
    if tenant_id is None:
        raise click.ClickException(f"no tenant {slug!r}")
    return tenant_id


async def _user_id(session: AsyncSession, tenant_id: UUID, username: str) -> UUID:
    user_id = await session.scalar(
        select(User.id).where(User.tenant_id == tenant_id, User.username == auth_service.login_name(username))
    )
    if user_id is None:
        raise click.ClickException(f"no user {username!r} in this tenant")
    return user_id


def _user_create(username: str, display_name: str, role: Role) -> wire.UserCreate:
    try:
        return msgspec.convert(
            {"username": username, "display_name": display_name, "role": role.value}, wire.UserCreate
        )
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from exc


async def create_tenant(database: Database, slug: str, name: str, admin: str) -> str:
    if not SLUG.match(slug):
        raise click.ClickException("a slug is 2-64 lower-case letters, digits and dashes")
    data = _user_create(admin, admin, Role.ADMIN)
    async with database.sessions() as session:
        exists = await session.scalar(
            select(Tenant.id).prefix_with("/* all-tenants: slugs are unique */").where(Tenant.slug == slug)
        )
        if exists is not None:
            raise click.ClickException(f"a tenant {slug!r} exists already")
        tenant = Tenant(slug=slug, name=name, verification_policy={})
        session.add(tenant)
        await session.flush()
        try:
            created, _ = await service.add_user(
                session, tenant_id=tenant.id, data=data, now=datetime.now(UTC), created_by=None
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
        await session.commit()
    return f"tenant {slug} ({tenant.id}) with its admin\n" + _shown(created.set_password, created.user.username)


async def create_user(database: Database, slug: str, username: str, role: Role, display_name: str | None) -> str:
    data = _user_create(username, display_name or username, role)
    async with database.sessions() as session:
        tenant_id = await _tenant_id(session, slug)
        try:
            created, _ = await service.add_user(
                session, tenant_id=tenant_id, data=data, now=datetime.now(UTC), created_by=None
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
        await session.commit()
    return _shown(created.set_password, created.user.username)


async def user_action(database: Database, slug: str, username: str, action: str) -> str:
    """disable, enable or reset-password, by username."""
    now = datetime.now(UTC)
    async with database.sessions() as session:
        tenant_id = await _tenant_id(session, slug)
        user_id = await _user_id(session, tenant_id, username)
        answer = f"{username}: {action}d"
        if action == "disable":
            await auth_service.disable_user(session, tenant_id=tenant_id, user_id=user_id, now=now)
        elif action == "enable":
            await auth_service.enable_user(session, tenant_id=tenant_id, user_id=user_id)
        else:
            link = await service.reset_user_password(session, tenant_id, user_id, now=now, created_by=None)
            answer = _shown(link, username)
        await session.commit()
    return answer
