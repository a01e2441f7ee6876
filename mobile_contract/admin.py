"""Directory and tenant administration: users and teams as a console and a phone list them, and what an admin
sends to build the team tree, add users and set what each role may do."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from mobile_contract.auth import DataScope, Role
from mobile_contract.base import Response


class UserView(Response):
    id: UUID
    username: str
    display_name: str
    role: Role
    data_scope: DataScope
    team_id: UUID | None
    is_active: bool
    created_at: datetime


class UserPage(Response):
    items: list[UserView]
    next_cursor: str | None


class TeamView(Response):
    id: UUID
    name: str
    parent_id: UUID | None
    depth: int  # 0 for a root team
    created_at: datetime


class TeamPage(Response):
    items: list[TeamView]
    next_cursor: str | None
