"""A person's day as a supervisor reads it, and their trail as a file: GET /v1/tracking/users/{id}/day and
.../trail.

The day is local midnight to midnight in the `tz` asked for. Its stops, trips, gaps, presence and geofence events
come from the derived tables (derived.py, per day of the tenant's tracking zone): the rows of the stored days
that overlap the asked day, so any `tz` works, and an entry across midnight is shown whole. Visits (check-ins
and their verdicts) and jobs (the person's steps on them) are read from their domains' tables. Every statement is
prebuilt asyncpg SQL run on the request's one connection (the session's), tenant-scoped, after the caller's data
scope has been asked once (backend/auth/scopes.py): a person outside it, or another tenant's, is a 404.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.scopes import users_in_scope
from backend.auth.tokens import Principal
from backend.coordinates import answer_in, stored_degrees
from backend.errors import DomainError, not_found
from backend.tracking import queries
from backend.tracking.derived import POLICY
from geo.stored_fix import StoredFix
from mobile_contract import tracking as wire
from mobile_contract.base import moment_problem
from mobile_contract.errors import ErrorCode, FieldError
from mobile_contract.location import CrsName, Point, Verdict, VerdictReason, VerdictStatus

MAX_TRAIL_SPAN = timedelta(days=wire.MAX_TRAIL_DAYS)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(
        ErrorCode.VALIDATION_FAILED, message, errors=[FieldError(field=field, message=message, source="query")]
    )


def parse_day(text: str) -> date:
    if not _DATE.match(text):
        raise _invalid("date", "`date` must be YYYY-MM-DD.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _invalid("date", "`date` is not a calendar day.") from None
    if not 1970 <= day.year <= 2199:
        raise _invalid("date", "`date` must lie between 1970 and 2199.")
    return day


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _invalid("tz", f"Unknown time zone {name!r}: use an IANA name such as Asia/Shanghai.") from None


def parse_moment(field: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(field, f"`{field}` must be an RFC 3339 time, e.g. 2026-12-02T09:00:00+08:00.") from None
    problem = moment_problem(moment)
    if problem is not None:
        raise _invalid(field, f"`{field}`: {problem}")
    return moment.astimezone(UTC)


def check_span(start: datetime, end: datetime) -> None:
    if end <= start:
        raise _invalid("to", "`to` must be later than `from`.")
    if end - start > MAX_TRAIL_SPAN:
        raise DomainError(
            ErrorCode.RANGE_TOO_LONG,
            f"A trail covers at most {wire.MAX_TRAIL_DAYS} days: ask for it in parts.",
            max_days=wire.MAX_TRAIL_DAYS,
        )


async def check_visible(session: AsyncSession, principal: Principal, user_id: UUID) -> None:
    """A BD sees only themself, a supervisor their team (their data scope); anyone else is a 404."""
    if user_id != principal.user_id and user_id not in await users_in_scope(session, principal, [user_id]):
        raise not_found("user")


# ---------------------------------------------------------------------------------------------------------------
# SQL: $1 tenant, $2 user, $3 start, $4 end (UTC), $5 / $6 the stored days that may overlap

_STOPS_SQL = """
SELECT s.day, s.seq, s.started_at, s.ended_at, s.lat, s.lon, s.radius_m, s.fixes
FROM tracking_stops s
WHERE s.tenant_id = $1 AND s.user_id = $2 AND s.day BETWEEN $5 AND $6 AND s.ended_at >= $3 AND s.started_at < $4
ORDER BY s.started_at, s.day, s.seq
"""
_PRESENCE_SQL = """
SELECT pr.day, pr.stop_seq, pr.place_kind, COALESCE(pr.poi_id, pr.job_id) AS place_id, pr.confidence,
       COALESCE(p.name, j.address, '') AS name
FROM tracking_presence pr
LEFT JOIN pois p ON p.tenant_id = pr.tenant_id AND p.id = pr.poi_id
LEFT JOIN jobs j ON j.tenant_id = pr.tenant_id AND j.id = pr.job_id
WHERE pr.tenant_id = $1 AND pr.user_id = $2 AND pr.day BETWEEN $5 AND $6 AND pr.ended_at >= $3
  AND pr.started_at < $4
ORDER BY pr.day, pr.stop_seq, pr.confidence DESC, pr.seq
"""
_TRIPS_SQL = """
SELECT t.started_at, t.ended_at, t.distance_m, t.fixes
FROM tracking_trips t
WHERE t.tenant_id = $1 AND t.user_id = $2 AND t.day BETWEEN $5 AND $6 AND t.ended_at >= $3 AND t.started_at < $4
ORDER BY t.started_at, t.day, t.seq
"""
_GAPS_SQL = """
SELECT g.started_at, g.ended_at, g.cause
FROM tracking_gaps g
WHERE g.tenant_id = $1 AND g.user_id = $2 AND g.day BETWEEN $5 AND $6 AND g.ended_at >= $3 AND g.started_at < $4
ORDER BY g.started_at, g.day, g.seq
"""
_EVENTS_SQL = """
SELECT e.at, e.kind, e.place_kind, COALESCE(e.poi_id, e.job_id) AS place_id, COALESCE(p.name, j.address, '') AS name
FROM tracking_fence_events e
LEFT JOIN pois p ON p.tenant_id = e.tenant_id AND p.id = e.poi_id
LEFT JOIN jobs j ON j.tenant_id = e.tenant_id AND j.id = e.job_id
WHERE e.tenant_id = $1 AND e.user_id = $2 AND e.day BETWEEN $5 AND $6 AND e.at >= $3 AND e.at < $4
ORDER BY e.at, e.day, e.seq
"""
_DERIVED_AT_SQL = """
SELECT max(d.derived_at) AS derived_at FROM tracking_days d
WHERE d.tenant_id = $1 AND d.user_id = $2 AND d.day BETWEEN $3 AND $4
"""
# A visit longer than a day is not a visit: the lower bound keeps the index range short.
_VISITS_SQL = """
SELECT v.id, v.poi_id, p.name, v.check_in_trusted_at, v.check_out_trusted_at,
       v.check_in_status, v.check_in_confidence, v.check_in_distance_m, v.check_in_reasons,
       v.check_out_status, v.check_out_confidence, v.check_out_distance_m, v.check_out_reasons
FROM visits v JOIN pois p ON p.tenant_id = v.tenant_id AND p.id = v.poi_id
WHERE v.tenant_id = $1 AND v.user_id = $2 AND v.check_in_trusted_at >= $3::timestamptz - interval '1 day'
  AND v.check_in_trusted_at < $4 AND COALESCE(v.check_out_trusted_at, v.check_in_trusted_at) >= $3
ORDER BY v.check_in_trusted_at, v.id
"""
_JOB_STEPS_SQL = """
SELECT e.job_id, e.action, e.to_status, e.at, j.status, j.address, j.arrival_status
FROM jobs j JOIN job_events e ON e.tenant_id = j.tenant_id AND e.job_id = j.id
WHERE j.tenant_id = $1 AND j.assignee_id = $2 AND e.tenant_id = $1 AND e.actor_id = $2 AND e.at >= $3 AND e.at < $4
ORDER BY e.at, e.id
"""


@dataclass(frozen=True, slots=True)
class Span:
    start: datetime
    end: datetime
    first_day: date
    last_day: date

    @classmethod
    def of(cls, start: datetime, end: datetime) -> Span:
        # A stored day is a day of the tenant's zone (UTC-12..UTC+14): one either side covers every overlap.
        return cls(start, end, start.date() - timedelta(days=1), end.date() + timedelta(days=1))


def _seconds(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


def _clipped(started: datetime, ended: datetime, span: Span) -> float:
    return _seconds(max(started, span.start), min(ended, span.end))


def _verdict(status: str, confidence: float, distance_m: float, reasons: Sequence[str]) -> Verdict:
    # Reasons are passed on as stored: a reason added by a newer judge is still shown, not dropped.
    return Verdict(
        status=VerdictStatus(status),
        confidence=confidence,
        distance_m=distance_m,
        reasons=cast(list[VerdictReason], list(reasons)),
    )


def _real(value: float) -> float:
    """A REAL column's value as it was sent: 11.5, not 11.509345054626465 (float4 widened to float8)."""
    return float(f"{value:.6g}")


def trail_points(fixes: Sequence[StoredFix]) -> list[wire.TrailPoint]:
    return [
        wire.TrailPoint(
            id=fix.fix_id,
            lat=stored_degrees(fix.lat),
            lon=stored_degrees(fix.lon),
            recorded_at=fix.recorded_at,
            accuracy_m=_real(fix.accuracy_m),
            speed_mps=None if fix.speed_mps is None else _real(fix.speed_mps),
            bearing_deg=None if fix.bearing_deg is None else _real(fix.bearing_deg),
            battery=None if fix.battery is None else _real(fix.battery),
            activity=fix.activity,
            event=fix.event,
            mock=fix.mock,
            reasons=list(fix.reasons),
        )
        for fix in fixes
    ]


async def day(
    session: AsyncSession, principal: Principal, user_id: UUID, day_text: str, tz: str, crs: CrsName
) -> wire.TrackingDay:
    local_day = parse_day(day_text)
    zone = parse_zone(tz)
    await check_visible(session, principal, user_id)
    start = datetime.combine(local_day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(local_day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    span = Span.of(start, end)
    tenant_id = principal.tenant_id
    args = (tenant_id, user_id, start, end, span.first_day, span.last_day)

    presence: dict[tuple[date, int], list[wire.PlaceRef]] = {}
    for row in await queries.run(session, _PRESENCE_SQL, *args):
        presence.setdefault((row["day"], row["stop_seq"]), []).append(
            wire.PlaceRef(
                kind=wire.PlaceKind(row["place_kind"]),
                id=row["place_id"],
                name=row["name"],
                confidence=round(float(row["confidence"]), 4),
            )
        )
    timeline: list[tuple[datetime, int, wire.TimelineEntry]] = []
    stopped_s = moving_s = gap_s = distance_m = 0.0
    stops = trips = gaps = 0
    for row in await queries.run(session, _STOPS_SQL, *args):
        places = presence.get((row["day"], row["seq"]), [])
        entry = wire.StopEntry(
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            dwell_s=_seconds(row["started_at"], row["ended_at"]),
            location=Point(lat=stored_degrees(row["lat"]), lon=stored_degrees(row["lon"])),
            radius_m=round(float(row["radius_m"]), 1),
            fixes=row["fixes"],
            place=places[0] if places else None,
            at=places,
        )
        stopped_s += _clipped(row["started_at"], row["ended_at"], span)
        stops += 1
        timeline.append((row["started_at"], 1, entry))
    for row in await queries.run(session, _TRIPS_SQL, *args):
        duration = _seconds(row["started_at"], row["ended_at"])
        trip = wire.TripEntry(
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            duration_s=duration,
            distance_m=round(float(row["distance_m"]), 1),
            fixes=row["fixes"],
            avg_speed_mps=round(float(row["distance_m"]) / duration, 2) if duration > 0 else 0.0,
        )
        moving_s += _clipped(row["started_at"], row["ended_at"], span)
        distance_m += float(row["distance_m"])
        trips += 1
        timeline.append((row["started_at"], 2, trip))
    for row in await queries.run(session, _GAPS_SQL, *args):
        gap = wire.GapEntry(
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            duration_s=_seconds(row["started_at"], row["ended_at"]),
            cause=wire.GapCause(row["cause"]),
        )
        gap_s += _clipped(row["started_at"], row["ended_at"], span)
        gaps += 1
        timeline.append((row["started_at"], 0, gap))
    for row in await queries.run(session, _EVENTS_SQL, *args):
        place = wire.PlaceRef(kind=wire.PlaceKind(row["place_kind"]), id=row["place_id"], name=row["name"])
        event = wire.FenceEventEntry(at=row["at"], kind=wire.FenceEventKind(row["kind"]), place=place)
        timeline.append((row["at"], 3, event))
    visits = flagged = 0
    for row in await queries.run(session, _VISITS_SQL, *args[:4]):
        check_in = _verdict(
            row["check_in_status"], row["check_in_confidence"], row["check_in_distance_m"], row["check_in_reasons"]
        )
        check_out = None
        if row["check_out_status"] is not None:
            check_out = _verdict(
                row["check_out_status"],
                row["check_out_confidence"],
                row["check_out_distance_m"],
                row["check_out_reasons"] or [],
            )
        visits += 1
        flagged += check_in.status is not VerdictStatus.VERIFIED
        timeline.append(
            (
                row["check_in_trusted_at"],
                4,
                wire.VisitEntry(
                    visit_id=row["id"],
                    place=wire.PlaceRef(kind=wire.PlaceKind.MERCHANT, id=row["poi_id"], name=row["name"]),
                    started_at=row["check_in_trusted_at"],
                    ended_at=row["check_out_trusted_at"],
                    check_in=check_in,
                    check_out=check_out,
                ),
            )
        )
    jobs: dict[UUID, wire.JobEntry] = {}
    for row in await queries.run(session, _JOB_STEPS_SQL, *args[:4]):
        step = wire.JobStep(action=row["action"], to_status=row["to_status"], at=row["at"])
        known = jobs.get(row["job_id"])
        if known is None:
            jobs[row["job_id"]] = wire.JobEntry(
                job_id=row["job_id"],
                place=wire.PlaceRef(kind=wire.PlaceKind.JOB_SITE, id=row["job_id"], name=row["address"]),
                status=row["status"],
                started_at=row["at"],
                ended_at=row["at"],
                arrival=VerdictStatus(row["arrival_status"]) if row["arrival_status"] else None,
                steps=[step],
            )
        else:
            known.steps.append(step)
            known.ended_at = row["at"]
    timeline.extend((job.started_at, 5, job) for job in jobs.values())
    timeline.sort(key=lambda item: (item[0], item[1]))

    fixes = await queries.fixes_between(session, tenant_id, user_id, start, end)
    derived_rows = await queries.run(session, _DERIVED_AT_SQL, tenant_id, user_id, span.first_day, span.last_day)
    answer = wire.TrackingDay(
        user_id=user_id,
        date=local_day.isoformat(),
        tz=zone.key,
        starts_at=start,
        ends_at=end,
        summary=wire.DaySummary(
            distance_m=round(distance_m, 1),
            moving_s=moving_s,
            stopped_s=stopped_s,
            stops=stops,
            trips=trips,
            gaps=gaps,
            gap_s=gap_s,
            visits=visits,
            flagged_check_ins=flagged,
            fixes=len(fixes),
        ),
        timeline=[entry for _, _, entry in timeline],
        trail=trail_points(fixes),
        derived_at=derived_rows[0]["derived_at"] if derived_rows else None,
    )
    return answer_in(answer, crs)


# ---------------------------------------------------------------------------------------------------------------
# Trail files


@dataclass(frozen=True, slots=True)
class TrailFile:
    content: bytes
    media_type: str
    filename: str


MEDIA_TYPES = {
    wire.TrailFormat.GEOJSON: "application/geo+json",
    wire.TrailFormat.GPX: "application/gpx+xml",
    wire.TrailFormat.KML: "application/vnd.google-earth.kml+xml",
    wire.TrailFormat.CSV: "text/csv; charset=utf-8",
}


async def trail(
    session: AsyncSession,
    principal: Principal,
    user_id: UUID,
    from_text: str,
    to_text: str,
    fmt: wire.TrailFormat,
    crs: CrsName,
) -> TrailFile:
    start = parse_moment("from", from_text)
    end = parse_moment("to", to_text)
    check_span(start, end)
    await check_visible(session, principal, user_id)
    fixes = await queries.fixes_between(session, principal.tenant_id, user_id, start, end)
    points = answer_in(trail_points(fixes), crs)
    name = f"trail-{user_id}-{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}.{fmt.value}"
    render = {wire.TrailFormat.GEOJSON: _geojson, wire.TrailFormat.GPX: _gpx, wire.TrailFormat.KML: _kml}
    content = render.get(fmt, _csv)(points, user_id, crs)
    return TrailFile(content=content, media_type=MEDIA_TYPES[fmt], filename=name)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _segments(points: list[wire.TrailPoint]) -> list[list[wire.TrailPoint]]:
    """The believable points, split where the phone went quiet for longer than a gap."""
    segments: list[list[wire.TrailPoint]] = []
    for point in points:
        if point.mock or "impossible_speed" in point.reasons:
            continue
        if not segments or (point.recorded_at - segments[-1][-1].recorded_at).total_seconds() > POLICY.gap_s:
            segments.append([])
        segments[-1].append(point)
    return segments


def _geojson(points: list[wire.TrailPoint], user_id: UUID, crs: CrsName) -> bytes:
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {
                "type": "MultiLineString",
                "coordinates": [[[p.lon, p.lat] for p in segment] for segment in _segments(points)],
            },
            "properties": {"user_id": str(user_id), "kind": "trail", "crs": crs.value},
        }
    ]
    features.extend(
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
            "properties": {
                "id": str(p.id),
                "recorded_at": _time(p.recorded_at),
                "accuracy_m": p.accuracy_m,
                "speed_mps": p.speed_mps,
                "battery": p.battery,
                "event": p.event,
                "mock": p.mock,
                "reasons": p.reasons,
            },
        }
        for p in points
    )
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")).encode()


GPX_NS = "http://www.topografix.com/GPX/1/1"
KML_NS = "http://www.opengis.net/kml/2.2"


def _gpx(points: list[wire.TrailPoint], user_id: UUID, crs: CrsName) -> bytes:
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": "Groundwork"})
    track = ET.SubElement(root, f"{{{GPX_NS}}}trk")
    ET.SubElement(track, f"{{{GPX_NS}}}name").text = f"{user_id} ({crs.value})"
    for segment in _segments(points):
        seg = ET.SubElement(track, f"{{{GPX_NS}}}trkseg")
        for p in segment:
            point = ET.SubElement(seg, f"{{{GPX_NS}}}trkpt", {"lat": f"{p.lat:.7f}", "lon": f"{p.lon:.7f}"})
            ET.SubElement(point, f"{{{GPX_NS}}}time").text = _time(p.recorded_at)
            ET.SubElement(point, f"{{{GPX_NS}}}hdop").text = f"{p.accuracy_m / 5.0:.1f}"  # ~5 m per unit of HDOP
    document_bytes: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document_bytes


def _kml(points: list[wire.TrailPoint], user_id: UUID, crs: CrsName) -> bytes:
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    document = ET.SubElement(root, f"{{{KML_NS}}}Document")
    ET.SubElement(document, f"{{{KML_NS}}}name").text = f"{user_id} ({crs.value})"
    for number, segment in enumerate(_segments(points)):
        mark = ET.SubElement(document, f"{{{KML_NS}}}Placemark")
        ET.SubElement(mark, f"{{{KML_NS}}}name").text = f"segment {number + 1}"
        span = ET.SubElement(mark, f"{{{KML_NS}}}TimeSpan")
        ET.SubElement(span, f"{{{KML_NS}}}begin").text = _time(segment[0].recorded_at)
        ET.SubElement(span, f"{{{KML_NS}}}end").text = _time(segment[-1].recorded_at)
        line = ET.SubElement(mark, f"{{{KML_NS}}}LineString")
        ET.SubElement(line, f"{{{KML_NS}}}coordinates").text = " ".join(f"{p.lon:.7f},{p.lat:.7f}" for p in segment)
    document_bytes: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document_bytes


CSV_COLUMNS = (
    "id",
    "recorded_at",
    "lat",
    "lon",
    "accuracy_m",
    "speed_mps",
    "bearing_deg",
    "battery",
    "activity",
    "event",
    "mock",
    "reasons",
)


def _csv(points: list[wire.TrailPoint], user_id: UUID, crs: CrsName) -> bytes:
    del user_id, crs  # the file's name says whose it is; the columns are in the crs asked for
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in points:
        writer.writerow(
            [
                p.id,
                _time(p.recorded_at),
                f"{p.lat:.7f}",
                f"{p.lon:.7f}",
                p.accuracy_m,
                "" if p.speed_mps is None else p.speed_mps,
                "" if p.bearing_deg is None else p.bearing_deg,
                "" if p.battery is None else p.battery,
                p.activity or "",
                _csv_text(p.event or ""),
                "true" if p.mock else "false",
                " ".join(p.reasons),
            ]
        )
    return out.getvalue().encode()


def _csv_text(value: str) -> str:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: a phone's text never does."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
