"""Location tracking on the wire: the app's batched trail, the answer per batch, tracking keys of stock tracker
apps, and a tenant's tracking settings (retention, working-hours windows)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, Request, Response, ShortText
from mobile_contract.location import Fix, Point, Verdict, VerdictStatus

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


class PositionBatch(Request):
    device_id: DeviceId
    positions: Annotated[list[TrackedFix], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


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
    """Replaces the tenant's tracking settings: trail retention, every tracking window (none: always), and the
    time zone whose midnights split a person's derived days (stops, trips, gaps; a change derives them again)."""

    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
    windows: Annotated[list[TrackingWindowIn], msgspec.Meta(max_length=200)] = msgspec.field(default_factory=list)
    timezone: TimeZoneName = "UTC"


class TrackingWindow(Response):
    team_id: UUID | None
    weekdays: list[int]
    starts: str
    ends: str
    timezone: str


class TrackingSettings(Response):
    retention_days: int
    windows: list[TrackingWindow]
    timezone: str = "UTC"


# ---------------------------------------------------------------------------------------------------------------
# The supervisor's live view (GET /v1/tracking/live, its stream, and the exceptions list)


class LiveState(enum.StrEnum):
    """What a person is doing now, judged from their newest fix (thresholds: backend/tracking/live.py)."""

    MOVING = "moving"
    STOPPED = "stopped"
    OFFLINE = "offline"  # no fix for longer than the offline threshold, or never one


class LivePosition(Response):
    """A person's newest believable fix (mocked ones never move it), in the caller's `crs`."""

    point: Point
    accuracy_m: float
    recorded_at: datetime  # trusted capture time
    age_s: float  # how old the fix is, at the answer's `as_of`
    speed_mps: float | None
    bearing_deg: float | None
    activity: str | None
    source: str  # "app" or "osmand"


class LiveVisit(Response):
    """An open visit: checked in at a merchant, not yet out."""

    id: UUID
    poi_id: UUID
    poi_name: str
    checked_in_at: datetime
    check_in_status: str  # the check-in's verdict


class LiveJob(Response):
    """A job the person is on site for (arrived or gathering proof)."""

    id: UUID
    status: str
    customer_name: str
    address: str


class LivePerson(Response):
    user_id: UUID
    display_name: str
    role: str
    team_id: UUID | None
    state: LiveState
    position: LivePosition | None
    battery: float | None  # percent, from the newest fix
    charging: bool | None
    open_visit: LiveVisit | None
    open_job: LiveJob | None


class LiveView(Response):
    """Everyone in the caller's data scope, people without any fix included (offline, no position)."""

    as_of: datetime
    offline_after_s: int
    moving_from_mps: float
    items: list[LivePerson]


class LiveUpdate(Response):
    """One event of GET /v1/tracking/live/stream (`event: position`): a person's newest fix moved."""

    user_id: UUID
    state: LiveState
    position: LivePosition
    battery: float | None
    charging: bool | None


class ExceptionKind(enum.StrEnum):
    FLAGGED_CHECK_IN = "flagged_check_in"  # a check-in whose verdict is not `verified`
    SHORT_DWELL = "short_dwell"  # checked in and left at once (a verdict reason)
    LONG_GAP = "long_gap"  # no fix for a long stretch of the working day
    REUSED_PHOTO = "reused_photo"  # a job photo first seen with another job


class TrackingException(Response):
    """One thing a supervisor should look at, most serious first."""

    kind: ExceptionKind
    user_id: UUID
    display_name: str
    at: datetime
    severity: Annotated[int, msgspec.Meta(description="1 most serious .. 3")]
    title: str
    reasons: list[str]
    point: Point | None  # where it happened, when known (caller's crs)
    visit_id: UUID | None = None
    job_id: UUID | None = None
    photo_id: UUID | None = None
    ends_at: datetime | None = None  # for a gap: when the trail resumed


class ExceptionList(Response):
    date: str  # the local day asked for, YYYY-MM-DD
    tz: str
    items: list[TrackingException]


# A person's day and trail (GET /v1/tracking/users/{user_id}/day and .../trail)

MAX_TRAIL_DAYS = 7  # the longest span one trail export covers


class TrailFormat(enum.StrEnum):
    GEOJSON = "geojson"
    GPX = "gpx"
    KML = "kml"
    CSV = "csv"


class PlaceKind(enum.StrEnum):
    MERCHANT = "merchant"  # a POI; its fence: its polygon, else a circle of its radius (or the tenant's default)
    JOB_SITE = "job_site"  # a job's location and geofence radius


class GapCause(enum.StrEnum):
    """Why the trail went quiet, as the phone said on a fix next to the silence (`event`), else `unknown`."""

    PERMISSION = "permission"
    LOCATION_OFF = "location_off"
    BATTERY_SAVER = "battery_saver"
    NO_NETWORK = "no_network"
    UNKNOWN = "unknown"


class FenceEventKind(enum.StrEnum):
    ENTER = "enter"
    EXIT = "exit"
    DWELL = "dwell"


class PlaceRef(Response):
    """A merchant or job site. `confidence` (where given): the share of the stop's accuracy disc inside its fence."""

    kind: PlaceKind
    id: UUID
    name: str
    confidence: float | None = None


class TrailPoint(Point, kw_only=True):
    """One stored fix of the trail, by trusted time. Mocked fixes and jumps no neighbour could reach are shown
    with their flag (`mock`, `reasons`: `mock_location`, `impossible_speed`, `clock_skew`): they are evidence,
    never a place the stops and trips are made of."""

    id: UUID
    recorded_at: datetime
    accuracy_m: float
    speed_mps: float | None = None
    bearing_deg: float | None = None
    battery: float | None = None
    activity: str | None = None
    event: str | None = None
    mock: bool = False
    reasons: list[str] = msgspec.field(default_factory=list)


class StopEntry(Response, tag="stop", tag_field="type"):
    """Standing still: fixes within the stop radius (accuracy-aware) for at least the minimum dwell. `at`: the
    places whose fence holds the stop (presence), best first; `place` the first of them."""

    started_at: datetime
    ended_at: datetime
    dwell_s: float
    location: Point
    radius_m: float
    fixes: int
    place: PlaceRef | None = None
    at: list[PlaceRef] = msgspec.field(default_factory=list)


class TripEntry(Response, tag="trip", tag_field="type"):
    """Moving between stops. `distance_m` is noise-filtered (jitter while standing still adds nothing)."""

    started_at: datetime
    ended_at: datetime
    duration_s: float
    distance_m: float
    fixes: int
    avg_speed_mps: float


class GapEntry(Response, tag="gap", tag_field="type"):
    """No usable fix for longer than the gap threshold."""

    started_at: datetime
    ended_at: datetime
    duration_s: float
    cause: GapCause


class FenceEventEntry(Response, tag="geofence", tag_field="type"):
    at: datetime
    kind: FenceEventKind
    place: PlaceRef


class VisitEntry(Response, tag="visit", tag_field="type"):
    """A visit at a merchant: its check-in and (if any) check-out, each with the server's verdict."""

    visit_id: UUID
    place: PlaceRef
    started_at: datetime  # the check-in's trusted time
    ended_at: datetime | None  # the check-out's, if checked out
    check_in: Verdict
    check_out: Verdict | None = None


class JobStep(Response):
    action: str
    to_status: str
    at: datetime


class JobEntry(Response, tag="job", tag_field="type"):
    """A job of the person with the steps they took on it this day (accept, arrive, verify, complete, ...)."""

    job_id: UUID
    place: PlaceRef
    status: str
    started_at: datetime  # its first step of the day
    ended_at: datetime  # its last
    arrival: VerdictStatus | None = None
    steps: list[JobStep] = msgspec.field(default_factory=list)


TimelineEntry = StopEntry | TripEntry | GapEntry | FenceEventEntry | VisitEntry | JobEntry


class DaySummary(Response):
    distance_m: float
    moving_s: float
    stopped_s: float
    stops: int
    trips: int
    gaps: int
    gap_s: float
    visits: int
    flagged_check_ins: int  # check-ins whose verdict is not `verified`
    fixes: int


class TrackingDay(Response):
    """A person's day in `tz` (local midnight to midnight), as a timeline in time order (each entry's
    `started_at`, or `at`), with the trail. Points are in the `crs` asked for."""

    user_id: UUID
    date: str  # YYYY-MM-DD
    tz: str
    starts_at: datetime
    ends_at: datetime
    summary: DaySummary
    timeline: list[Annotated[TimelineEntry, msgspec.Meta(description="`type` says which")]]
    trail: list[TrailPoint]
    derived_at: datetime | None  # when stops, trips and gaps were last recomputed (null: no trail yet)
