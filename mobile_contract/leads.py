"""Leads: the public pool, a BD's private pool, won leads; the tenant's lead policy and what it would do."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.auth import Role
from mobile_contract.base import AwareDatetime, Request, Response, ShortText
from mobile_contract.pois import Holder

Days = Annotated[int, msgspec.Meta(ge=0, le=3650)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
RoleCaps = Annotated[dict[Role, Count], msgspec.Meta(max_length=8)]


class LeadState(enum.StrEnum):
    POOL = "pool"  # the public pool: anyone may claim it
    PRIVATE = "private"  # one BD's private pool, claimed or assigned, protected for a while
    WON = "won"  # signed: locked to its holder, never released


class LeadHow(enum.StrEnum):
    CLAIMED = "claimed"
    ASSIGNED = "assigned"


class ReleaseCause(enum.StrEnum):
    """Which clock ends a private lead's protection first."""

    PROTECTION_ENDED = "protection_ended"  # protection_days from the claim (plus extensions)
    NO_VISIT = "no_visit"  # no believable visit for no_visit_days
    NO_SIGNING = "no_signing"  # no signing within no_signing_days of the claim


class LeadPolicy(Request):
    """A tenant's lead rules. Caps are by role (`bd`, `supervisor`, ...): a role without a cap may not claim."""

    protection_days: Days = 45
    no_visit_days: Days = 15
    no_signing_days: Days = 30
    warn_days: Days = 3
    max_held: RoleCaps = msgspec.field(default_factory=lambda: {Role.BD: 50, Role.SUPERVISOR: 200})
    max_claims_per_day: RoleCaps = msgspec.field(default_factory=lambda: {Role.BD: 10, Role.SUPERVISOR: 50})
    max_extensions: Annotated[int, msgspec.Meta(ge=0, le=100)] = 2
    max_extension_days: Days = 7
    cooldown_days: Days = 7


class LeadPolicyVersion(Response):
    version: int  # 0: the defaults, never adopted
    adopted_at: datetime | None
    adopted_by: UUID | None
    policy: LeadPolicy


class Lead(Response):
    """A merchant as a lead: who holds it and until when it stays theirs."""

    id: UUID  # the merchant's id: a lead is its merchant (also its record id in the `leads` sync collection)
    poi_name: str
    state: LeadState
    how: LeadHow | None
    holder: Holder | None
    since: datetime | None  # the claim or assignment
    last_visit_at: datetime | None  # the holder's latest believable visit since then
    extensions_used: int
    extended_days: int
    release_at: datetime | None  # None: in the pool, or won
    release_cause: ReleaseCause | None
    warn_from: datetime | None  # release_at - warn_days
    warning: bool  # the release is near (now >= warn_from)


class LeadPage(Response):
    items: list[Lead]


class LeadRelease(Request):
    reason: ShortText


class LeadAssign(Request):
    user_id: UUID
    reason: ShortText | None = None


class LeadExtend(Request):
    days: Annotated[int, msgspec.Meta(ge=1, le=365)]
    reason: ShortText | None = None


class LeadHandover(Request):
    """A BD leaves: their private leads go back to the pool (`to_user_id` omitted) or to another BD."""

    from_user_id: UUID
    reason: ShortText
    to_user_id: UUID | None = None


class HandoverResult(Response):
    released: int
    reassigned: int


class ClaimArgs(Request):
    """The `poi.claim` mutation's args."""

    poi_id: UUID


class LeadHistoryEntry(Response):
    at: datetime
    action: str  # claim, assign, extend, release, win
    actor_id: UUID | None  # None: the scheduler (a release by the policy)
    from_user_id: UUID | None
    to_user_id: UUID | None
    reason: str | None


class LeadHistory(Response):
    poi_id: UUID
    items: list[LeadHistoryEntry]


class PolicySimulation(Request):
    policy: LeadPolicy
    as_of: AwareDatetime


class SimulatedBd(Response):
    user_id: UUID
    display_name: str
    held: int
    would_release: list[UUID]
    would_warn: list[UUID]


class SimulationResult(Response):
    as_of: datetime
    would_release: int
    would_warn: int
    by_bd: list[SimulatedBd]
