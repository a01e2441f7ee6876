"""Business events from integrations (order, contract and recharge systems) and what they are credited to.

`POST /v1/events` is called by a tenant's own systems, not by phones: signed with HMAC-SHA256 by an integration
key (README "Business events"). Events, not typed outcomes, decide signings, goals and attribution.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, AwareDatetime, Request, Response, ShortText

# The signature headers (a Stripe-like scheme): the key's id, unix seconds, and `v1=<hex HMAC-SHA256>` over
# `<timestamp>.<raw body>` with the key's secret.
KEY_ID_HEADER: Final = "X-Groundwork-Key-Id"
TIMESTAMP_HEADER: Final = "X-Groundwork-Timestamp"
SIGNATURE_HEADER: Final = "X-Groundwork-Signature"
SIGNATURE_SCHEME: Final = "v1"
TIMESTAMP_TOLERANCE_S: Final = 300  # either way: a captured request replays for at most 5 minutes

FUTURE_SKEW_S: Final = 300  # how far ahead of the server's clock `occurred_at` may be (the sender's clock drift)

Source = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$",
        description="The sending system, e.g. `crm`, `orders`, `billing`: idempotency is per source",
    ),
]
ExternalId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=SINGLE_LINE, description="The event's id at its source")
]
ExternalCode = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$",
        description="The merchant's code in the tenant's own systems (unique within the tenant)",
    ),
]
Currency = Annotated[
    str, msgspec.Meta(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. CNY")
]
# A decimal string, never a JSON number (a float would lose cents on the way): 0 up to 10^13 - 1, 4 decimals at most
# (and no more than the currency's minor unit: checked by the server against ISO 4217).
Amount = Annotated[
    str,
    msgspec.Meta(
        max_length=18,
        pattern=r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,4})?$",
        description='A decimal string in the currency\'s major unit, e.g. "199.00"',
        examples=["199.00"],
    ),
]
WindowDays = Annotated[int, msgspec.Meta(ge=1, le=365)]


class EventKind(enum.StrEnum):
    SIGNING = "signing"  # a contract signed: wins the lead, meets `sign` goals
    RECHARGE = "recharge"  # money put on the merchant's account: `recharge_amount` goals sum these
    ORDER = "order"  # an order placed: `order_count` goals count these


class MerchantRef(Request):
    """The merchant, by our id or by the tenant's external code (exactly one)."""

    id: UUID | None = None
    external_code: ExternalCode | None = None

    def __post_init__(self) -> None:
        if (self.id is None) == (self.external_code is None):
            raise ValueError("`merchant`: give exactly one of `id` and `external_code`")


class EventIn(Request):
    source: Source
    external_id: ExternalId
    kind: EventKind
    merchant: MerchantRef
    occurred_at: AwareDatetime
    amount: Amount | None = None  # required for a recharge
    currency: Currency | None = None  # required with amount

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.amount is None) != (self.currency is None):
            raise ValueError("`amount` and `currency` go together")
        if self.amount is None and self.kind is EventKind.RECHARGE:
            raise ValueError("`amount`: a recharge needs an amount")

    @property
    def decimal_amount(self) -> Decimal | None:
        return None if self.amount is None else Decimal(self.amount)


class EventStatus(enum.StrEnum):
    ACCEPTED = "accepted"


class Event(Response):
    """The stored result of an event: a replay of the same event (same source, external id and body) is answered
    with exactly this."""

    id: UUID
    source: str
    external_id: str
    kind: EventKind
    merchant_id: UUID
    amount: Decimal | None
    currency: str | None
    occurred_at: datetime
    received_at: datetime
    status: EventStatus = EventStatus.ACCEPTED


class RefusedEvent(Response):
    """A signed event that was refused, kept as evidence (what was sent, and why)."""

    id: int
    source: str
    external_id: str
    code: str
    detail: str
    body: dict[str, Any]
    received_at: datetime


class RefusedEventList(Response):
    items: list[RefusedEvent]
    next_cursor: str | None


# -- attribution -------------------------------------------------------------------------------------------------


class CreditReason(enum.StrEnum):
    """Layer one: is the event credited to this (campaign, target, assignee)?"""

    VISITED = "visited"  # credited: the assignee's believable visit (not rejected) within the window before it
    FOLLOWED_UP = "followed_up"  # credited: the assignee logged a follow-up on the work item within the window
    NOT_TARGETED = "not_targeted"  # no campaign targets this merchant: nothing to credit (campaign is null)
    OUTSIDE_CAMPAIGN = "outside_campaign"  # occurred before the campaign started or after it ended
    NO_FOLLOW_UP = "no_follow_up"  # the assignee never visited nor followed up the merchant before the event
    FOLLOW_UP_TOO_OLD = "follow_up_too_old"  # the assignee's latest follow-up is older than the window
    ONLY_REJECTED_VISITS = "only_rejected_visits"  # within the window only check-ins the server rejected


class GoalReason(enum.StrEnum):
    """Layer two: does a credited event count toward its campaign's goal?"""

    COUNTS = "counts"  # credited, and of the goal's kind (signing: sign, recharge: recharge_amount, order: orders)
    KIND_MISMATCH = "kind_mismatch"  # credited, but another kind (a recharge does not meet a signing goal)
    NOT_CREDITED = "not_credited"  # layer one said no


class Attribution(Response):
    event_id: UUID
    campaign_id: UUID | None
    work_item_id: UUID | None
    poi_id: UUID
    assignee_id: UUID | None
    credited: bool
    reason: CreditReason
    counts_toward_goal: bool
    goal_reason: GoalReason
    followed_at: datetime | None  # the visit or follow-up that earned the credit (or the latest one, too old)
    window_days: int
    explanation: str


class EventAttribution(Response):
    event: Event
    attributions: list[Attribution]


class AttributionList(Response):
    items: list[Attribution]
    next_cursor: str | None


class ProgressRow(Response):
    key: UUID  # the target merchant or the assignee
    name: str
    credited_events: int
    counting_events: int  # credited and of the goal's kind
    signings: int
    orders: int
    amounts: dict[str, Decimal]  # counting recharge amounts, per currency
    goal_met: bool  # per target: that merchant met the goal; per assignee: every target they hold met it


class EventProgress(Response):
    campaign_id: UUID
    by: str  # "target" | "assignee"
    goal_kind: str
    goal_target: float
    rows: list[ProgressRow]


# -- keys and settings -------------------------------------------------------------------------------------------


class IntegrationKeyCreate(Request):
    label: ShortText


class IntegrationKey(Response):
    id: UUID  # send as X-Groundwork-Key-Id
    label: str
    hint: str  # the secret's first characters, to tell keys apart
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IntegrationKeyIssued(IntegrationKey):
    secret: str  # shown once: store it in the integration's secret store


class IntegrationKeyList(Response):
    items: list[IntegrationKey]


class EventSettings(Response):
    attribution_window_days: int


class EventSettingsIn(Request):
    attribution_window_days: WindowDays


class MerchantCodeIn(Request):
    external_code: ExternalCode


class MerchantCode(Response):
    poi_id: UUID
    external_code: str
