"""Tables of tenants, teams (a tree), users, refresh tokens and the roles of each feature per tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Overrides of geo.verdict.VerdictPolicy's defaults plus the default geofence radius (see tenants/service.py).
    verification_policy: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()


class Team(Base):
    """A node of the tenant's team tree. `path` is the materialised path of ids from the root, so
    "this team and every team below it" is one prefix match (`path LIKE root_path || '%'`)."""

    __tablename__ = "teams"
    __table_args__ = (Index("ix_teams_tenant_path", "tenant_id", "path", postgresql_ops={"path": "text_pattern_ops"}),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('bd', 'technician', 'supervisor', 'ops', 'admin')", name="role"),
        CheckConstraint("data_scope IN ('self', 'team', 'team_and_below', 'all')", name="data_scope"),
        Index("ix_users_tenant_team", "tenant_id", "team_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    team_id: Mapped[UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # Usernames are unique across tenants (they are e-mail-like logins), stored lower-case.
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    data_scope: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(server_default="true")
    # Bumped by every change that must end the user's current access tokens at once (disabled, new password,
    # new role, team or data scope; see service.py). Access tokens carry the version they were issued under and
    # are refused once it differs (backend/auth/userstate.py), within the few seconds of its cache.
    auth_version: Mapped[int] = mapped_column(server_default="0")
    # Rule-based assignment passes over a user on leave until this moment (None: not on leave).
    on_leave_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()


class RefreshToken(Base):
    """One issued refresh token. Tokens of one login form a family; each refresh retires the presented token
    and issues its successor. Presenting a retired token again means it was stolen (or replayed): the whole
    family is revoked, so both the thief and the victim must log in again."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family", "family_id"),
        Index("ix_refresh_tokens_parent", "parent_id"),  # a retried refresh finds the successor it already made
        Index("ix_refresh_tokens_user", "user_id"),  # a new password revokes every family of the user
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[UUID]
    parent_id: Mapped[UUID | None]  # the token this one replaced
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token itself is never kept
    device_id: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Counters of login attempts per key (`account:<username>` or `source:<address>`), in fixed windows.

    Kept in PostgreSQL so that every API process sees the same counts (a lockout cannot be dodged by landing on
    another process). Not tenant-owned: the keys come from unauthenticated requests, before any tenant is known.
    `attempts` counts the window's failed attempts plus those still being verified; a successful login gives its
    own attempt back (see throttle.py).
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_started_at: Mapped[datetime]
    attempts: Mapped[int]
    locked_until: Mapped[datetime | None]


class RolePermission(Base):
    """The roles that may use one feature in one tenant. A feature without a row has its default roles
    (backend/auth/permissions.py DEFAULT_ROLES): a tenant stores only what it changed."""

    __tablename__ = "role_permissions"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    feature: Mapped[str] = mapped_column(String(64), primary_key=True)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    updated_at: Mapped[datetime] = updated_at_column()
