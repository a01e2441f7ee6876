"""Location tracking on the wire: the app's batched trail, the answer per batch, tracking keys of stock tracker
apps, and a tenant's tracking settings (retention, working-hours windows)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, Request, Response, ShortText, moment_problem
from mobile_contract.location import Fix

MAX_BATCH = 1_000  # fixes per POST /v1/tracking/positions

DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=SINGLE_LINE)]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")]
EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ClockTime = Annotated[
    str,
    msgspec.Meta(min_length=5, max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local"),
]
TimeZoneName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]


class TrackedFix(Fix, kw_only=True):
    """A fix of the trail: a fix (CONTRACT.md) plus its client id and what the phone knew about itself.
    `event` names what made the phone record it (`motionchange`, `heartbeat`, ...) or a gap's cause
    (`permission_revoked`, `location_off`, `battery_saver`, `no_network`)."""

    id: UUID
    battery: Annotated[float, msgspec.Meta(ge=0.0, le=100.0, description="percent")] | None = None
    charging: bool | None = None
    activity: Word | None = None
    event: EventName | None = None

    def __post_init__(self) -> None:
        # Request.__post_init__'s walk over every field, for the one field it can find something in (a batch of
        # 1,000 fixes is checked a thousand times; tests/tracking/test_wire.py keeps this the only such field).
        problem = moment_problem(self.captured_at)
        if problem is not None:
            raise ValueError(f"`captured_at`: {problem}")


class PositionBatch(Request):
    device_id: DeviceId
    positions: Annotated[list[TrackedFix], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]

    def __post_init__(self) -> None:
        # Nothing here for Request.__post_init__ to check (no datetime, no free-form JSON): each fix checks itself.
        pass


class RefusalReason(enum.StrEnum):
    """Why a fix is not on the trail. Refused fixes are kept (tracking_refused), never silently dropped; the
    phone should not resend them."""

    FUTURE_FIX = "future_fix"  # taken later than it arrived, by the phone's clock alone
    OUTSIDE_TRACKING_WINDOW = "outside_tracking_window"  # outside the team's working hours: position not kept
    BEYOND_RETENTION = "beyond_retention"  # older than the tenant keeps trails: position not kept


class Refusal(Response):
    id: UUID
    reasons: list[RefusalReason]


class BatchResult(Response):
    """`accepted`: new on the trail; `duplicate`: stored before (a retry); `refused`: see `refusals`. A mocked
    fix is accepted as evidence with its flag, and never moves the person's live position."""

    accepted: int
    duplicate: int
    refused: int
    refusals: list[Refusal]


class TrackingKeyCreate(Request):
    user_id: UUID
    device_id: DeviceId
    label: ShortText | None = None


class TrackingKey(Response):
    id: UUID
    user_id: UUID
    device_id: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TrackingKeyIssued(TrackingKey, kw_only=True):
    """`key` is shown this once: put it in the tracker app as its device identifier (`id`), or send it as
    `Authorization: Bearer <key>`. The server keeps only its hash."""

    key: str


class TrackingKeyList(Response):
    items: list[TrackingKey]


class TrackingWindowIn(Request, kw_only=True):
    """Working hours on the given ISO weekdays (1 Monday .. 7 Sunday), in `timezone` (IANA). `ends` earlier
    than `starts` crosses midnight. `team_id` null: the tenant's default for teams without windows of their own."""

    team_id: UUID | None = None
    weekdays: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=7)]], msgspec.Meta(min_length=1, max_length=7)]
    starts: ClockTime
    ends: ClockTime
    timezone: TimeZoneName = "UTC"


class TrackingSettingsIn(Request):
    """Replaces the tenant's tracking settings: trail retention, and every tracking window (none: always)."""

    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
    windows: Annotated[list[TrackingWindowIn], msgspec.Meta(max_length=200)] = msgspec.field(default_factory=list)


class TrackingWindow(Response):
    team_id: UUID | None
    weekdays: list[int]
    starts: str
    ends: str
    timezone: str


class TrackingSettings(Response):
    retention_days: int
    windows: list[TrackingWindow]
