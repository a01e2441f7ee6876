"""Rule-based assignment on the wire: territories, the tenant's rule set, dry runs and decisions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from mobile_contract.base import AwareDatetime, Request, Response, ShortText
from mobile_contract.location import Point, PointIn

Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\u0000-\u001f\u007f]*$")]


class TerritoryIn(Request):
    """A territory: its exterior ring (at least 3 distinct points, closed or not; no self-intersection). `id`: the
    client's, so a retried create is the same territory (omitted: the server picks one)."""

    name: ShortText
    ring: Annotated[list[PointIn], msgspec.Meta(min_length=3, max_length=2000)]
    team_id: UUID | None = None
    id: UUID | None = None


class TerritoryView(Response):
    id: UUID
    name: str
    team_id: UUID | None
    ring: list[Point]
    updated_at: datetime


class Strategy(enum.StrEnum):
    ROUND_ROBIN = "round_robin"  # take turns; the position is kept in PostgreSQL
    LEAST_LOADED = "least_loaded"  # fewest open leads (or open jobs)
    CAPACITY = "capacity"  # most room under the cap (`cap` open items each)


class RecordKind(enum.StrEnum):
    LEAD = "lead"  # a merchant (POI) to put in someone's private pool
    JOB = "job"  # a job to dispatch within a group


# Request shapes spell the two enums above as literals: their defaults then read the same in msgspec's schema and
# in the OpenAPI document.
StrategyName = Literal["round_robin", "least_loaded", "capacity"]
KindName = Literal["lead", "job"]


class Conditions(Request):
    """All given conditions must hold (a list: any of its values). Empty conditions match every record."""

    categories: Annotated[list[Tag], msgspec.Meta(max_length=100)] = []
    sources: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []
    territories: Annotated[list[UUID], msgspec.Meta(max_length=100)] = []
    job_types: Annotated[list[Tag], msgspec.Meta(max_length=100)] = []
    skills: Annotated[list[Tag], msgspec.Meta(max_length=50)] = []  # a job matches when it requires any of them
    regions: Annotated[list[Tag], msgspec.Meta(max_length=100)] = []


class Group(Request):
    """Who may be chosen: a team's active members, or a list of users (one of the two)."""

    team_id: UUID | None = None
    user_ids: Annotated[list[UUID], msgspec.Meta(max_length=500)] = []


class Rule(Request):
    name: ShortText
    group: Group
    kind: KindName = "lead"
    when: Conditions = msgspec.field(default_factory=Conditions)
    strategy: StrategyName = "round_robin"
    cap: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None  # open items per person; None: no cap


class Fallback(Request):
    group: Group
    strategy: StrategyName = "round_robin"
    cap: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None


class RuleSetIn(Request):
    """The tenant's rules, in the order they are tried, and the group that takes what none matches."""

    rules: Annotated[list[Rule], msgspec.Meta(max_length=200)]
    fallback: Fallback | None = None


class RuleSetView(Response):
    version: int  # 0: no rule set saved yet
    rules: list[Rule]
    fallback: Fallback | None
    saved_by: UUID | None
    saved_at: datetime | None


class DryRunIn(Request):
    """A proposed rule set run on real records: the given ids, or a sample of the newest `sample` records."""

    rules: RuleSetIn
    kind: KindName = "lead"
    record_ids: Annotated[list[UUID], msgspec.Meta(max_length=500)] = []
    sample: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    as_of: AwareDatetime | None = None  # judge leave as of this moment (default: now)


class Skipped(Response):
    user_id: UUID
    reason: str  # role (cannot take this kind of record), inactive, on_leave, at_cap, not_in_tenant


class Outcome(Response):
    record_id: UUID
    rule: str | None  # the matched rule's name, "fallback", or None when nothing matched and there is no fallback
    rule_index: int | None
    strategy: Strategy | None
    chosen: UUID | None
    team_id: UUID | None
    skipped: list[Skipped]
    explanation: str


class DryRunResult(Response):
    outcomes: list[Outcome]


class DecisionView(Response):
    id: UUID
    kind: str  # lead (routed at intake or on request), target (a campaign's, `assign: rule`), job
    record_id: UUID
    rule_version: int | None
    rule: str | None
    strategy: str | None
    chosen: UUID | None
    skipped: list[Skipped]
    explanation: str
    decided_at: datetime
