"""Directory and tenant administration: users and teams as a console and a phone list them, and what an admin
sends to build the team tree, add users and set what each role may do."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.auth import DataScope, Role
from mobile_contract.base import NO_NUL, SINGLE_LINE, AwareDatetime, Phone, Request, Response, ShortText


class UserView(Response):
    id: UUID
    username: str
    display_name: str
    role: Role
    data_scope: DataScope
    team_id: UUID | None
    is_active: bool
    created_at: datetime
    on_leave_until: datetime | None = None  # rule-based assignment skips them until then


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


Username = Annotated[
    str, msgspec.Meta(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+\-]*$", description="a login")
]


class TeamCreate(Request):
    name: ShortText
    id: UUID | None = None  # a client-chosen id makes a retried create the same team (200, nothing changed)
    parent_id: UUID | None = None  # none: a root team


class TeamUpdate(Request):
    """Rename and/or move a team (its whole subtree moves with it). `parent_id: null` makes it a root team."""

    name: ShortText | msgspec.UnsetType = msgspec.UNSET
    parent_id: UUID | msgspec.UnsetType | None = msgspec.UNSET


class UserCreate(Request):
    """A retry of the same create (same username, same fields) while the user has not chosen a password yet
    answers 200 with the user and a fresh one-time token (the earlier one stops working)."""

    username: Username
    display_name: ShortText
    role: Role
    team_id: UUID | None = None
    data_scope: DataScope | None = None  # default: the role's (bd, technician: self; supervisor: team_and_below)
    phone: Phone | None = None


class UserUpdate(Request):
    """Edit a user; a new role, team or data scope takes effect at once (their access tokens go stale)."""

    display_name: ShortText | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET
    team_id: UUID | msgspec.UnsetType | None = msgspec.UNSET
    data_scope: DataScope | msgspec.UnsetType = msgspec.UNSET
    # On leave until then (null: back): assignment rules skip them with `on_leave` (backend/assignment/rules.py).
    on_leave_until: AwareDatetime | msgspec.UnsetType | None = msgspec.UNSET


class SetPasswordLink(Response):
    """A one-time token that sets the user's password (`POST /v1/auth/set-password`): shown once, never stored."""

    user_id: UUID
    token: str
    expires_at: datetime


class UserCreated(Response):
    user: UserView
    set_password: SetPasswordLink


class SetPassword(Request):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=SINGLE_LINE)]
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=1024, pattern=NO_NUL)]


class Feature(enum.StrEnum):
    """What a role may do, as a tenant configures it (`GET/PUT /v1/admin/permissions`). What a user may *see* is
    separate: their data scope. The defaults equal the behaviour before permissions were configurable."""

    MANAGE_USERS = "manage_users"  # create, edit, disable users; reset passwords
    MANAGE_TEAMS = "manage_teams"  # create, rename, move teams
    MANAGE_PERMISSIONS = "manage_permissions"  # this table itself (always kept for admin)
    MANAGE_CAMPAIGNS = "manage_campaigns"  # create campaigns and target merchants
    REASSIGN_WORK_ITEMS = "reassign_work_items"
    ADD_MERCHANTS = "add_merchants"
    ADOPT_LEAD_POLICY = "adopt_lead_policy"
    SIMULATE_LEAD_POLICY = "simulate_lead_policy"
    EDIT_VERIFICATION_POLICY = "edit_verification_policy"
    MANAGE_TECHNICIANS = "manage_technicians"  # list technicians, edit their dispatch profiles
    MANAGE_TERRITORIES = "manage_territories"  # draw, redraw and delete territories
    MANAGE_ASSIGNMENT_RULES = "manage_assignment_rules"  # save and dry-run the assignment rules
    IMPORT_MERCHANTS = "import_merchants"  # bulk imports of merchants and their reports
    REVIEW_DUPLICATES = "review_duplicates"  # the review queue of likely duplicate merchants: merge, dismiss
    MANAGE_INTEGRATION_KEYS = "manage_integration_keys"  # issue and revoke the keys order systems sign events with
    READ_BUSINESS_EVENTS = "read_business_events"  # events, their attribution, campaign progress, event settings
    MANAGE_JOB_TYPES = "manage_job_types"  # add job types and change what proves them done


class FeatureRoles(Response):
    feature: Feature
    roles: list[Role]
    default: bool  # true while the tenant keeps the default roles


class Permissions(Response):
    features: list[FeatureRoles]


class FeatureRolesIn(Request):
    feature: Feature
    roles: Annotated[list[Role], msgspec.Meta(max_length=5)]


class PermissionsUpdate(Request):
    """The features to change (their roles replaced); the others keep theirs. `defaults`: features back to their
    default roles."""

    features: Annotated[list[FeatureRolesIn], msgspec.Meta(max_length=64)] = []
    defaults: Annotated[list[Feature], msgspec.Meta(max_length=64)] = []  # back to the default roles
