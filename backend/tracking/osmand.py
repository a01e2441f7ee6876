"""The OsmAnd protocol as stock tracker apps speak it, read as Traccar's OsmAndProtocolDecoder reads it.

Shapes: the OsmAnd app's URL template and GPSLogger (GET with a query), the older Traccar Client for Android
(POST with the same query and an empty body), Traccar Client 10 (form body, or a JSON array of flat objects with
the query's names), Traccar Client 9 (a JSON object with `location.coords`, as the background-geolocation plugin
writes it). Query and form names: `id`/`deviceid`, `timestamp` (seconds, milliseconds or ISO-8601), `lat`/`lon`
or `location=lat,lon`, `speed` in knots, `bearing`/`heading`, `altitude`, `accuracy`, `hdop`, `batt` (percent),
`charge`, `mock`, `event`, `activity`. In the JSON object speeds are metres per second and battery a fraction.

These clients send no fix id, so one is derived from the key and the fix itself (uuid5): a retransmission of the
same fix is a duplicate, as the app's own fix ids make it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from backend.errors import DomainError
from backend.tracking.service import IncomingFix
from mobile_contract.base import moment_problem
from mobile_contract.errors import ErrorCode

KNOT_MPS = 1852.0 / 3600.0
_NAMESPACE = uuid.UUID("6f1f0b8e-2f3a-4c55-9a61-1b7a0d3e5c21")
_DEFAULT_ACCURACY_M = 50.0  # a stock app that sends no accuracy: a fair GPS fix, judged with less trust
_TRUE = {"1", "true", "yes", "on"}


def invalid(detail: str) -> DomainError:
    return DomainError(ErrorCode.VALIDATION_FAILED, detail, errors=[])


@dataclass(frozen=True, slots=True)
class Report:
    """What one request carries: the identifier it names (`id`/`deviceid`, may be the tracking key) and its fixes."""

    identifier: str | None
    fixes: list[IncomingFix]


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise invalid(f"`{name}` must be a number.") from None
    if not math.isfinite(number):
        raise invalid(f"`{name}` must be a finite number.")
    return number


def _optional(values: Mapping[str, Any], name: str) -> float | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    return _number(value, name)


def _flag(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _text(value: Any, limit: int) -> str | None:
    if value is None or value == "":
        return None
    text = "".join(ch for ch in str(value) if ch.isalnum() or ch in "_.:-")[:limit]
    return text or None


def parse_time(value: Any, received_at: datetime) -> datetime:
    """`timestamp` in seconds, milliseconds or ISO-8601 / `yyyy-MM-dd HH:mm:ss` (Traccar's rule: an integer below
    2^31 - 1 is seconds, above it milliseconds)."""
    if value is None or value == "":
        return received_at
    moment: datetime
    if isinstance(value, int | float) or str(value).strip().lstrip("-").replace(".", "", 1).isdigit():
        number = _number(value, "timestamp")
        seconds = number if abs(number) < 2**31 - 1 else number / 1000.0
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise invalid("`timestamp` is out of range.") from None
    else:
        text = str(value).strip().replace(" ", "T", 1)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise invalid("`timestamp` must be seconds, milliseconds or ISO-8601.") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    problem = moment_problem(moment)
    if problem is not None:
        raise invalid(f"`timestamp`: {problem}")
    return moment.astimezone(UTC)


def _position(lat: float, lon: float) -> tuple[float, float]:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise invalid("`lat` must lie in [-90, 90] and `lon` in [-180, 180].")
    return lat, lon


def _fix_id(scope: str, at: datetime, lat: float, lon: float) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"{scope}|{at.isoformat()}|{lat:.7f}|{lon:.7f}")


def fix_from_query(values: Mapping[str, Any], scope: str, received_at: datetime) -> IncomingFix:
    """One fix from query or form names (also the flat objects of Traccar Client 10's JSON array)."""
    if values.get("location"):
        parts = str(values["location"]).split(",")
        if len(parts) != 2:
            raise invalid("`location` must be `lat,lon`.")
        lat, lon = _number(parts[0], "location"), _number(parts[1], "location")
    else:
        if values.get("lat") in (None, "") or values.get("lon") in (None, ""):
            raise invalid("Send `lat` and `lon` (or `location=lat,lon`).")
        lat, lon = _number(values["lat"], "lat"), _number(values["lon"], "lon")
    lat, lon = _position(lat, lon)
    at = parse_time(values.get("timestamp"), received_at)
    accuracy = _optional(values, "accuracy")
    if accuracy is None:
        hdop = _optional(values, "hdop")
        accuracy = hdop * 5.0 if hdop is not None else _DEFAULT_ACCURACY_M
    speed_knots = _optional(values, "speed")
    bearing = _optional(values, "bearing")
    if bearing is None:
        bearing = _optional(values, "heading")
    battery = _optional(values, "batt")
    return _checked(
        IncomingFix(
            id=_fix_id(scope, at, lat, lon),
            lat=lat,
            lon=lon,
            accuracy_m=accuracy,
            captured_at=at,
            altitude_m=_optional(values, "altitude"),
            speed_mps=speed_knots * KNOT_MPS if speed_knots is not None else None,
            bearing_deg=bearing % 360.0 if bearing is not None else None,
            is_mock=bool(_flag(values.get("mock"))),
            battery=battery,
            charging=_flag(values.get("charge")),
            activity=_text(values.get("activity"), 32),
            event=_text(values.get("event"), 64),
            sent={key: str(value)[:200] for key, value in values.items() if key not in ("id", "deviceid")},
        )
    )


def fix_from_json_object(body: Mapping[str, Any], scope: str, received_at: datetime) -> IncomingFix:
    """Traccar Client 9's object: `{device_id, location: {timestamp, coords: {...}, battery, activity, ...}}`."""
    location = body.get("location")
    if not isinstance(location, dict) or not isinstance(location.get("coords"), dict):
        raise invalid("A JSON object must carry `location.coords`.")
    coords = location["coords"]
    lat, lon = _position(_number(coords.get("latitude"), "latitude"), _number(coords.get("longitude"), "longitude"))
    at = parse_time(location.get("timestamp"), received_at)
    battery: dict[str, Any] = location["battery"] if isinstance(location.get("battery"), dict) else {}
    level = _optional(battery, "level")
    activity: dict[str, Any] = location["activity"] if isinstance(location.get("activity"), dict) else {}
    speed = _optional(coords, "speed")
    heading = _optional(coords, "heading")
    accuracy = _optional(coords, "accuracy")
    return _checked(
        IncomingFix(
            id=_fix_id(scope, at, lat, lon),
            lat=lat,
            lon=lon,
            accuracy_m=accuracy if accuracy is not None else _DEFAULT_ACCURACY_M,
            captured_at=at,
            altitude_m=_optional(coords, "altitude"),
            speed_mps=speed if speed is not None and speed >= 0 else None,  # -1: unknown (iOS)
            bearing_deg=heading % 360.0 if heading is not None and heading >= 0 else None,
            is_mock=bool(_flag(location.get("mock"))),
            battery=level * 100.0 if level is not None and 0.0 <= level <= 1.0 else None,
            charging=_flag(battery.get("is_charging")),
            activity=_text(activity.get("type"), 32),
            event=_text(location.get("event"), 64),
            sent={"location": {"timestamp": str(location.get("timestamp")), "coords": dict(coords)}},
        )
    )


def _checked(fix: IncomingFix) -> IncomingFix:
    """The bounds of the app's own fixes (mobile_contract.location.Fix), applied to what stock apps send."""
    if not 0.0 <= fix.accuracy_m <= 100_000.0:
        raise invalid("`accuracy` must lie in [0, 100000] metres.")
    if fix.speed_mps is not None and not 0.0 <= fix.speed_mps <= 1_000.0:
        raise invalid("`speed` is out of range.")
    if fix.altitude_m is not None and not -1_000.0 <= fix.altitude_m <= 20_000.0:
        raise invalid("`altitude` is out of range.")
    if fix.battery is not None and not 0.0 <= fix.battery <= 100.0:
        raise invalid("`batt` must be a percentage.")
    return fix


def read_report(query: Mapping[str, Any], form: Mapping[str, Any], body: Any, received_at: datetime) -> Report:
    """The identifier and the fixes of one request, whatever its shape. The fix ids are derived later from the
    tracking key (`with_scope`), so this takes a placeholder scope."""
    values = {**query, **form}
    if isinstance(body, dict):
        identifier = values.get("id") or values.get("deviceid") or body.get("device_id") or body.get("id")
        if "location" in body:
            return Report(_ident(identifier), [fix_from_json_object(body, "", received_at)])
        values = {**values, **body}
        identifier = values.get("id") or values.get("deviceid")
        return Report(_ident(identifier), [fix_from_query(values, "", received_at)])
    if isinstance(body, list):
        if len(body) > 1_000:
            raise invalid("At most 1,000 positions a request.")
        fixes = []
        identifier = values.get("id") or values.get("deviceid")
        for item in body:
            if not isinstance(item, dict):
                raise invalid("A JSON array must hold objects.")
            identifier = identifier or item.get("id") or item.get("deviceid") or item.get("device_id")
            fixes.append(fix_from_query(item, "", received_at))
        return Report(_ident(identifier), fixes)
    identifier = values.get("id") or values.get("deviceid")
    return Report(_ident(identifier), [fix_from_query(values, "", received_at)])


def _ident(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:200] or None


def with_scope(fixes: list[IncomingFix], scope: str) -> list[IncomingFix]:
    """The fixes with ids derived under `scope` (the tracking key's user and device)."""
    from dataclasses import replace

    return [replace(fix, id=_fix_id(scope, fix.captured_at, fix.lat, fix.lon)) for fix in fixes]
