"""Task campaigns that operations push to the field, and the work items BDs follow."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, AwareDatetime, JsonKey, LongText, Request, Response, ShortText
from mobile_contract.conflicts import Origin, Resolution

FieldKey = Annotated[str, msgspec.Meta(max_length=48, pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class CampaignType(enum.StrEnum):
    CHURN_FOLLOW_UP = "churn_follow_up"
    NEW_SIGNING = "new_signing"
    RECHARGE_PUSH = "recharge_push"
    ORDER_DRIVE = "order_drive"


class GoalKind(enum.StrEnum):
    SIGN = "sign"  # the merchant signs
    RECHARGE_AMOUNT = "recharge_amount"  # the merchant recharges at least `target`
    ORDER_COUNT = "order_count"  # the merchant places at least `target` orders


class Goal(Request):
    kind: GoalKind
    target: Annotated[float, msgspec.Meta(gt=0, le=1e9)] = 1.0


class FormField(Request):
    key: FieldKey
    label: ShortText
    type: Literal["text", "number", "boolean", "choice"]
    required: bool = False
    options: Annotated[list[ShortText], msgspec.Meta(min_length=1, max_length=50)] | None = None  # for "choice"


class FormSchema(Request):
    """What the BD collects on the visit. Versioned: answers record the version they were given against."""

    version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    fields: Annotated[list[FormField], msgspec.Meta(max_length=50)] = []


class Offer(Request):
    title: ShortText
    description: LongText = ""


class CampaignCreate(Request, kw_only=True):
    id: UUID | None = None  # optional client id, for an idempotent retry from a console
    type: CampaignType
    title: ShortText
    instructions: LongText = ""
    goal: Goal
    form: FormSchema = msgspec.field(default_factory=FormSchema)
    offer: Offer | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    time_zone: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, pattern=SINGLE_LINE, description="IANA, e.g. Asia/Shanghai")
    ]


class Campaign(Response):
    id: UUID
    type: CampaignType
    title: str
    instructions: str
    goal: Goal
    form: FormSchema
    offer: Offer | None
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    created_at: datetime


class CampaignPage(Response):
    items: list[Campaign]
    next_cursor: str | None


class Target(Request):
    poi_id: UUID
    assignee_id: UUID | None = None  # required when assign="explicit"


class TargetsAdd(Request):
    targets: Annotated[list[Target], msgspec.Meta(min_length=1, max_length=5_000)]
    # poi_holder: to whoever holds the merchant as a lead; rule: as the tenant's assignment rules choose
    assign: Literal["explicit", "poi_holder", "rule"] = "explicit"


class SkippedTarget(Response):
    poi_id: UUID
    reason: str  # "not_found" | "no_holder" | "assignee_not_found" | "already_targeted" | "no_rule_choice"


class TargetsAdded(Response):
    created: list[UUID]  # work item ids
    skipped: list[SkippedTarget]


class WorkItemStatus(enum.StrEnum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"  # set by the first check-in at the merchant
    GOAL_MET = "goal_met"
    VISITED_NOT_MET = "visited_not_met"
    EXPIRED = "expired"  # the campaign window closed first; set by the server only


class Outcome(Request):
    signed: bool | None = None
    recharge_amount: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    order_count: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None


class LateEdit(Response):
    """A former assignee's edit that reached the server after the work item was reassigned (see
    mobile_contract/conflicts.py): shown to the new assignee and the supervisors, never dropped."""

    user_id: UUID | None
    user_name: str | None
    at: datetime
    field: str
    value: Any
    resolution: Resolution  # late_applied (merged in) or late_kept (for a person to look at)


class WorkItem(Response):
    id: UUID
    campaign: Campaign
    poi_id: UUID
    poi_name: str
    assignee_id: UUID
    assignee_name: str
    status: WorkItemStatus
    notes: str
    answers: dict[str, Any]
    form_version: int
    outcome: Outcome
    visit_ids: list[UUID]
    updated_at: datetime
    late_edits: list[LateEdit] = []


class WorkItemPage(Response):
    items: list[WorkItem]
    next_cursor: str | None


class WorkItemUpdate(Request):
    """A partial update: omitted fields are untouched. BDs edit notes, answers, outcome and close the item;
    operations and supervisors reassign it."""

    status: Literal["in_progress", "goal_met", "visited_not_met"] | msgspec.UnsetType = msgspec.UNSET
    notes: LongText | msgspec.UnsetType = msgspec.UNSET
    answers: Annotated[dict[JsonKey, Any], msgspec.Meta(max_length=50)] | msgspec.UnsetType = msgspec.UNSET
    outcome: Outcome | msgspec.UnsetType = msgspec.UNSET
    assignee_id: UUID | msgspec.UnsetType = msgspec.UNSET


class TaskUpdateArgs(WorkItemUpdate, kw_only=True):
    """The `task.update` sync mutation: a work item update made offline."""

    id: UUID


class FieldConflict(Response, omit_defaults=True):
    field: str
    resolution: Resolution  # never `applied`: only what the phone should know about
    code: str | None = None  # for `refused`: why (an error code, e.g. goal_not_met)


class HistoryEntry(Response):
    """One value set on a work item field, by whom, and what became of it (mobile_contract/conflicts.py)."""

    id: int
    at: datetime
    field: str  # status | notes | answers | outcome | assignee_id
    value: Any  # what was sent or set
    result: Any  # the field's value afterwards
    writer: str  # "<user id>/<device id>" of the phone or person, or "server"
    user_id: UUID | None
    origin: Origin
    resolution: Resolution


class HistoryPage(Response):
    items: list[HistoryEntry]  # oldest first
    next_cursor: str | None


class WorkItemUpdated(Response):
    work_item: WorkItem
    conflicts: list[FieldConflict]


class ProgressRow(Response):
    key: UUID  # the merchant (by=target) or the assignee (by=assignee)
    name: str
    total: int
    assigned: int
    in_progress: int
    goal_met: int
    visited_not_met: int
    expired: int


class Progress(Response):
    campaign_id: UUID
    by: Literal["target", "assignee"]
    rows: list[ProgressRow]
