"""Login, token refresh and the caller's own profile."""

from __future__ import annotations

import enum
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.base import NO_NUL, SINGLE_LINE, Request, Response

DeviceId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=SINGLE_LINE, description="stable per app install")
]


class Role(enum.StrEnum):
    BD = "bd"
    TECHNICIAN = "technician"
    SUPERVISOR = "supervisor"
    OPS = "ops"
    ADMIN = "admin"


class DataScope(enum.StrEnum):
    """Whose records a user sees: their own, their team's, their team's and all teams below, or the tenant's."""

    SELF = "self"
    TEAM = "team"
    TEAM_AND_BELOW = "team_and_below"
    ALL = "all"


class TokenRequest(Request):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=SINGLE_LINE)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=NO_NUL)]
    device_id: DeviceId


class RefreshRequest(Request):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=SINGLE_LINE)]
    device_id: DeviceId


class TokenPair(Response):
    access_token: str
    expires_in: int  # seconds until the access token expires
    refresh_token: str  # rotating: each refresh returns a new one and retires the old
    refresh_expires_in: int
    user_id: UUID
    tenant_id: UUID
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


class Me(Response):
    id: UUID
    tenant_id: UUID
    username: str
    display_name: str
    role: Role
    data_scope: DataScope
    team_id: UUID | None
