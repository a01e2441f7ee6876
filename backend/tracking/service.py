"""Tracking rules: what of a batch goes on the trail, what is refused and why, tracking keys, tracking settings.

One implementation of "take these fixes" (`ingest`), whether they come from the app (POST /v1/tracking/positions)
or from a stock tracker app (/v1/tracking/osmand, parsed by osmand.py). Each fix is judged as a check-in's fix is
(geo.verdict: trusted time from `age_ms`, the OS mock flag, clock skew, fixes from the future), in one place
(`_judge`). What decides whether a fix is refused never depends on the other fixes or on arrival order, so
shuffled, split and resent batches store the same trail; jumps no neighbour could reach are judged over the
whole trail when it is read (queries.flag_jumps).
"""

from __future__ import annotations

import hashlib
import secrets
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.scopes import users_in_scope
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.evidence import trail
from backend.queue.service import enqueue
from backend.tracking import derived, queries
from backend.tracking.models import TrackingKey, TrackingSettings, TrackingWindow
from backend.tracking.queries import Fetcher, IngestRows
from geo.fence import CircleFence
from geo.verdict import Fix, Reason, VerdictPolicy, judge, trusted_capture_time
from mobile_contract import tracking as wire
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode

DEFAULT_RETENTION_DAYS = 90
_UTC = ZoneInfo("UTC")
_SETTINGS_TTL_S = 5.0  # other processes see a settings change within this long
# The verdict's reasons a trail fix carries as doubts (the others are about fences and actions, not trails).
_KEPT_REASONS = (Reason.MOCK_LOCATION, Reason.CLOCK_SKEW)


@dataclass(frozen=True, slots=True)
class IncomingFix:
    """A fix as any client sent it, in WGS-84, before judgment."""

    id: UUID
    lat: float
    lon: float
    accuracy_m: float
    captured_at: datetime
    age_ms: int | None = None
    altitude_m: float | None = None
    speed_mps: float | None = None
    bearing_deg: float | None = None
    provider: str | None = None
    is_mock: bool = False
    battery: float | None = None
    charging: bool | None = None
    activity: str | None = None
    event: str | None = None
    sent: Any = None  # what was sent (a Struct or plain data), encoded only when the fix is refused


@dataclass(frozen=True, slots=True)
class Tracked:
    """Whose trail a batch extends."""

    tenant_id: UUID
    user_id: UUID
    team_id: UUID | None
    device_id: str


@dataclass(frozen=True, slots=True)
class Window:
    weekdays: frozenset[int]
    starts: day_time
    ends: day_time
    zone: ZoneInfo

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        at = local.time()
        if self.starts < self.ends:
            return local.isoweekday() in self.weekdays and self.starts <= at < self.ends
        # Across midnight: the evening belongs to the day it starts on, the small hours to the day before.
        if at >= self.starts:
            return local.isoweekday() in self.weekdays
        previous_day = (local - timedelta(days=1)).isoweekday()
        return at < self.ends and previous_day in self.weekdays


@dataclass(frozen=True, slots=True)
class TenantTracking:
    retention_days: int
    windows: dict[UUID | None, tuple[Window, ...]]
    zone: ZoneInfo = _UTC  # whose midnight a derived day starts at (derived.py)

    def tracked_at(self, team_id: UUID | None, moment: datetime) -> bool:
        windows = self.windows.get(team_id) if team_id in self.windows else self.windows.get(None)
        return not windows or any(window.contains(moment) for window in windows)


class SettingsCache:
    """A tenant's tracking settings, read at most once per few seconds per process: the ingest is hot."""

    def __init__(self) -> None:
        self._entries: dict[UUID, tuple[float, TenantTracking]] = {}

    async def get(self, conn: Fetcher, tenant_id: UUID) -> TenantTracking:
        entry = self._entries.get(tenant_id)
        now = clock.monotonic()
        if entry is not None and entry[0] > now:
            return entry[1]
        loaded = await _load_tracking(conn, tenant_id)
        self._entries[tenant_id] = (now + _SETTINGS_TTL_S, loaded)
        return loaded

    def forget(self, tenant_id: UUID) -> None:
        self._entries.pop(tenant_id, None)


SETTINGS = SettingsCache()

_SETTINGS_SQL = """
SELECT (SELECT retention_days FROM tracking_settings WHERE tenant_id = $1) AS retention_days,
       (SELECT timezone FROM tracking_settings WHERE tenant_id = $1) AS timezone,
       COALESCE((SELECT jsonb_agg(jsonb_build_object('team_id', team_id, 'weekdays', weekdays,
                     'starts', to_char(starts, 'HH24:MI'), 'ends', to_char(ends, 'HH24:MI'), 'timezone', timezone))
                 FROM tracking_windows WHERE tenant_id = $1), '[]'::jsonb)::text AS windows
"""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"Unknown time zone {name!r}.", errors=[]) from exc


async def _load_tracking(conn: Fetcher, tenant_id: UUID) -> TenantTracking:
    row = (await conn.fetch(_SETTINGS_SQL, tenant_id))[0]
    windows: dict[UUID | None, list[Window]] = {}
    for item in msgspec.json.decode(row["windows"]):
        team = UUID(item["team_id"]) if item["team_id"] else None
        windows.setdefault(team, []).append(
            Window(
                weekdays=frozenset(item["weekdays"]),
                starts=day_time.fromisoformat(item["starts"]),
                ends=day_time.fromisoformat(item["ends"]),
                zone=_zone(item["timezone"]),
            )
        )
    return TenantTracking(
        retention_days=row["retention_days"] or DEFAULT_RETENTION_DAYS,
        windows={team: tuple(found) for team, found in windows.items()},
        zone=derived.zone_of(row["timezone"]),
    )


# ---------------------------------------------------------------------------------------------------------------
# Ingest


def _judge(fix: IncomingFix, received_at: datetime, policy: VerdictPolicy) -> tuple[datetime, tuple[Reason, ...]]:
    """The trusted time of a trail fix and the verdict's doubts about it: the check-in's judgment (geo.verdict),
    asked whether the phone was where it says it was, when it says it was (a fence of its own accuracy circle,
    the action at its own trusted time), so only the fix's credibility can speak: the mock flag, clock skew,
    a fix from the future.

    The full judgment costs ~30 us a fix (the ingest's budget is 50 us): it is asked only when one of those
    three can apply, a test that is exact (the other reasons cannot arise with this fence and this action)."""
    geo_fix = Fix(
        lat=fix.lat,
        lon=fix.lon,
        accuracy_m=fix.accuracy_m,
        captured_at=fix.captured_at,
        is_mock=fix.is_mock,
        age_ms=fix.age_ms,
    )
    trusted = trusted_capture_time(geo_fix, received_at)
    skewed = fix.age_ms is not None and abs((fix.captured_at - trusted).total_seconds()) > policy.max_clock_skew_s
    ahead = (trusted - received_at).total_seconds() > policy.future_tolerance_s
    if not (fix.is_mock or skewed or ahead):
        return trusted, ()
    fence = CircleFence(lat=fix.lat, lon=fix.lon, radius_m=max(fix.accuracy_m, 1.0))
    verdict = judge(geo_fix, fence, received_at=received_at, policy=policy, action_at=trusted)
    return verdict.trusted_captured_at, verdict.reasons


async def ingest(
    conn: Fetcher,
    who: Tracked,
    fixes: Sequence[IncomingFix],
    *,
    received_at: datetime,
    source: str,
    policy: VerdictPolicy | None = None,
) -> wire.BatchResult:
    """Store what of a batch belongs on the trail; keep the rest as refusals; count the retries. At most two
    statements: the trail's insert and, when something was refused, the refusals' insert."""
    policy = policy or VerdictPolicy()
    tracking = await SETTINGS.get(conn, who.tenant_id)
    oldest = received_at - timedelta(days=tracking.retention_days)
    rows = IngestRows.empty()
    refusals: list[tuple[IncomingFix, datetime | None, list[wire.RefusalReason]]] = []
    seen: set[UUID] = set()
    repeats = 0
    for fix in fixes:
        if fix.id in seen:
            repeats += 1  # the same fix twice in one batch: a duplicate, as if sent twice
            continue
        seen.add(fix.id)
        trusted, reasons = _judge(fix, received_at, policy)
        refused: list[wire.RefusalReason] = []
        if Reason.FUTURE_FIX in reasons:
            refused.append(wire.RefusalReason.FUTURE_FIX)
        elif trusted < oldest:
            refused.append(wire.RefusalReason.BEYOND_RETENTION)
        elif not tracking.tracked_at(who.team_id, trusted):
            refused.append(wire.RefusalReason.OUTSIDE_TRACKING_WINDOW)
        if refused:
            refusals.append((fix, trusted, refused))
            continue
        rows.fix_id.append(fix.id)
        rows.recorded_at.append(trusted)
        rows.captured_at.append(fix.captured_at)
        rows.lat.append(fix.lat)
        rows.lon.append(fix.lon)
        rows.accuracy_m.append(fix.accuracy_m)
        rows.altitude_m.append(fix.altitude_m)
        rows.speed_mps.append(fix.speed_mps)
        rows.bearing_deg.append(fix.bearing_deg)
        rows.battery.append(fix.battery)
        rows.charging.append(fix.charging)
        rows.activity.append(fix.activity)
        rows.event.append(fix.event)
        rows.provider.append(fix.provider)
        rows.mock.append(fix.is_mock)
        rows.reasons.append(",".join(reason.value for reason in reasons if reason in _KEPT_REASONS))
    new = await queries.insert_fixes(
        conn,
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        device_id=who.device_id,
        received_at=received_at,
        source=source,
        rows=rows,
    )
    if refusals:
        await _store_refusals(conn, who, refusals, received_at=received_at, source=source)
    if new:
        # The fixes are committed (the insert is its own statement): check-ins they can speak for are judged again.
        moved = [
            at
            for fix_id, at, mock in zip(rows.fix_id, rows.recorded_at, rows.mock, strict=True)
            if fix_id in new and not mock
        ]
        await trail.request_rejudge(conn, who.tenant_id, who.user_id, moved)
        # After the trail's statement committed (the hot pool is autocommit): the days it changed are derived
        # again, late fixes included. A crash between the two leaves the day to the next fix of that day.
        changed = [at for fix_id, at in zip(rows.fix_id, rows.recorded_at, strict=True) if fix_id in new]
        await derived.enqueue_days(conn, who.tenant_id, who.user_id, derived.local_days(changed, tracking.zone))
    return wire.BatchResult(
        accepted=len(new),
        duplicate=len(rows) - len(new) + repeats,
        refused=len(refusals),
        refusals=[wire.Refusal(id=fix.id, reasons=reasons) for fix, _, reasons in refusals],
    )


_REFUSALS_SQL = """
INSERT INTO tracking_refused (tenant_id, fix_id, user_id, device_id, source, reasons, recorded_at, received_at, fix)
SELECT $1::uuid, r.fix_id, $2::uuid, $3::text, $4::text, string_to_array(r.reasons, ','), r.recorded_at,
       $5::timestamptz, r.fix::jsonb
FROM unnest($6::uuid[], $7::text[], $8::timestamptz[], $9::text[]) AS r(fix_id, reasons, recorded_at, fix)
ON CONFLICT DO NOTHING
"""


async def _store_refusals(
    conn: Fetcher,
    who: Tracked,
    refusals: list[tuple[IncomingFix, datetime | None, list[wire.RefusalReason]]],
    *,
    received_at: datetime,
    source: str,
) -> None:
    """Nothing refused disappears: each refusal is kept with its reasons, and with what was sent unless the
    reason is that its position must not be kept (outside working hours, beyond retention)."""
    private = {wire.RefusalReason.OUTSIDE_TRACKING_WINDOW, wire.RefusalReason.BEYOND_RETENTION}
    await conn.fetch(
        _REFUSALS_SQL,
        who.tenant_id,
        who.user_id,
        who.device_id,
        source,
        received_at,
        [fix.id for fix, _, _ in refusals],
        [",".join(reasons) for _, _, reasons in refusals],
        [trusted for _, trusted, _ in refusals],
        [
            None if private & set(reasons) else msgspec.json.encode(fix.sent or {}).decode()
            for fix, _, reasons in refusals
        ],
    )


def from_wire(fix: wire.TrackedFix) -> IncomingFix:
    return IncomingFix(
        id=fix.id,
        lat=fix.lat,
        lon=fix.lon,
        accuracy_m=fix.accuracy_m,
        captured_at=fix.captured_at,
        age_ms=fix.age_ms,
        altitude_m=fix.altitude_m,
        speed_mps=fix.speed_mps,
        bearing_deg=fix.bearing_deg,
        provider=fix.provider,
        is_mock=fix.is_mock,
        battery=fix.battery,
        charging=fix.charging,
        activity=fix.activity,
        event=fix.event,
        sent=fix,
    )


# ---------------------------------------------------------------------------------------------------------------
# Tracking keys

_KEY_PREFIX = "gwt_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(_KEY_PREFIX) and 20 <= len(value) <= 100


_MANAGERS = (Role.SUPERVISOR, Role.OPS, Role.ADMIN)


async def _check_manages(session: AsyncSession, principal: Principal, user_id: UUID) -> None:
    """A user may key their own devices; a supervisor, ops or admin those of the people in their scope.
    Another tenant's user answers as a missing one."""
    if user_id == principal.user_id:
        return
    if not principal.has_role(*_MANAGERS):
        raise forbidden("Only supervisors, ops and admins manage other people's tracking keys.")
    if user_id not in await users_in_scope(session, principal, [user_id]):
        raise not_found("user")


def _key_wire(key: TrackingKey) -> wire.TrackingKey:
    return wire.TrackingKey(
        id=key.id,
        user_id=key.user_id,
        device_id=key.device_id,
        label=key.label,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def issue_key(
    session: AsyncSession, principal: Principal, data: wire.TrackingKeyCreate
) -> wire.TrackingKeyIssued:
    await _check_manages(session, principal, data.user_id)
    key = _KEY_PREFIX + secrets.token_urlsafe(24)
    row = TrackingKey(
        tenant_id=principal.tenant_id,
        user_id=data.user_id,
        device_id=data.device_id,
        label=data.label,
        key_hash=hash_key(key),
        created_by=principal.user_id,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return wire.TrackingKeyIssued(**msgspec.structs.asdict(_key_wire(row)), key=key)


async def list_keys(session: AsyncSession, principal: Principal, user_id: UUID | None) -> wire.TrackingKeyList:
    statement = select(TrackingKey).where(TrackingKey.tenant_id == principal.tenant_id)
    if user_id is not None:
        await _check_manages(session, principal, user_id)
        statement = statement.where(TrackingKey.user_id == user_id)
    elif not principal.has_role(*_MANAGERS):
        statement = statement.where(TrackingKey.user_id == principal.user_id)
    keys = list(await session.scalars(statement.order_by(TrackingKey.created_at, TrackingKey.id)))
    if principal.has_role(*_MANAGERS) and user_id is None:
        visible = await users_in_scope(session, principal, {key.user_id for key in keys})
        keys = [key for key in keys if key.user_id in visible]
    return wire.TrackingKeyList(items=[_key_wire(key) for key in keys])


async def revoke_key(session: AsyncSession, principal: Principal, key_id: UUID, *, now: datetime) -> None:
    key = await session.scalar(
        select(TrackingKey).where(TrackingKey.id == key_id, TrackingKey.tenant_id == principal.tenant_id)
    )
    if key is None:
        raise not_found("tracking key")
    await _check_manages(session, principal, key.user_id)
    if key.revoked_at is None:
        await session.execute(
            update(TrackingKey)
            .where(TrackingKey.tenant_id == principal.tenant_id, TrackingKey.id == key_id)
            .values(revoked_at=now)
        )


_KEY_SQL = """
UPDATE /* all-tenants: a stock tracker app sends only its key, and the key's hash names the tenant */
tracking_keys k SET last_used_at = $2
FROM users u
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.tenant_id = k.tenant_id AND u.id = k.user_id AND u.is_active
RETURNING k.tenant_id, k.user_id, k.device_id, u.team_id
"""


async def tracked_by_key(conn: Fetcher, key: str, *, now: datetime) -> Tracked:
    """Whose trail a tracking key extends. Unknown, revoked, or of a disabled user: refused alike."""
    rows = await conn.fetch(_KEY_SQL, hash_key(key), now)
    if not rows:
        raise DomainError(ErrorCode.TRACKING_KEY_INVALID, "This tracking key is unknown or revoked.")
    row = rows[0]
    return Tracked(
        tenant_id=row["tenant_id"], user_id=row["user_id"], team_id=row["team_id"], device_id=row["device_id"]
    )


# ---------------------------------------------------------------------------------------------------------------
# Settings


async def get_settings(session: AsyncSession, principal: Principal) -> wire.TrackingSettings:
    stored = (
        await session.execute(
            select(TrackingSettings.retention_days, TrackingSettings.timezone).where(
                TrackingSettings.tenant_id == principal.tenant_id
            )
        )
    ).first()
    retention = stored.retention_days if stored else None
    windows = await session.scalars(
        select(TrackingWindow)
        .where(TrackingWindow.tenant_id == principal.tenant_id)
        .order_by(TrackingWindow.created_at, TrackingWindow.id)
    )
    return wire.TrackingSettings(
        timezone=stored.timezone if stored else "UTC",
        retention_days=retention or DEFAULT_RETENTION_DAYS,
        windows=[
            wire.TrackingWindow(
                team_id=window.team_id,
                weekdays=sorted(window.weekdays),
                starts=window.starts.strftime("%H:%M"),
                ends=window.ends.strftime("%H:%M"),
                timezone=window.timezone,
            )
            for window in windows
        ],
    )


async def put_settings(
    session: AsyncSession, principal: Principal, data: wire.TrackingSettingsIn
) -> wire.TrackingSettings:
    if not principal.has_role(Role.ADMIN):
        raise forbidden("Only a tenant admin changes tracking settings.")
    teams = {window.team_id for window in data.windows if window.team_id is not None}
    if teams:
        from backend.auth.models import Team

        found = set(
            await session.scalars(select(Team.id).where(Team.tenant_id == principal.tenant_id, Team.id.in_(teams)))
        )
        if teams - found:
            raise not_found("team")
    for window in data.windows:
        _zone(window.timezone)
        if window.starts == window.ends:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "A window's start and end must differ.", errors=[])
    _zone(data.timezone)
    from sqlalchemy.dialects.postgresql import insert

    before = await session.scalar(
        select(TrackingSettings.timezone).where(TrackingSettings.tenant_id == principal.tenant_id)
    )
    await session.execute(
        insert(TrackingSettings)
        .values(tenant_id=principal.tenant_id, retention_days=data.retention_days, timezone=data.timezone)
        .on_conflict_do_update(
            index_elements=["tenant_id"], set_={"retention_days": data.retention_days, "timezone": data.timezone}
        )
    )
    if (before or "UTC") != data.timezone:
        # Days end at other midnights now: every derived day is derived again, in the background.
        await enqueue(
            session, derived.REDERIVE_TENANT, {"tenant_id": str(principal.tenant_id)}, tenant_id=principal.tenant_id
        )
    await session.execute(delete(TrackingWindow).where(TrackingWindow.tenant_id == principal.tenant_id))
    for window in data.windows:
        session.add(
            TrackingWindow(
                tenant_id=principal.tenant_id,
                team_id=window.team_id,
                weekdays=sorted(set(window.weekdays)),
                starts=day_time.fromisoformat(window.starts),
                ends=day_time.fromisoformat(window.ends),
                timezone=window.timezone,
            )
        )
    await session.flush()
    SETTINGS.forget(principal.tenant_id)
    return await get_settings(session, principal)


def utc_now() -> datetime:
    return datetime.now(UTC)
