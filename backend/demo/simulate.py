"""`groundwork simulate`: live movement of the demo's BDs and technicians, sent to a running server the way a
stock tracker app sends it, so the supervisors' console moves.

Each person gets a tracking key (POST /v1/tracking/keys, as a supervisor or admin issues one for a phone), then
reports as Traccar Client 10 does: `POST /v1/tracking/osmand` with a form body (`id=<key>&timestamp=...&lat=
...&lon=...&speed=<knots>&bearing=...&accuracy=...&batt=...&charge=...`), over one keep-alive HTTP connection.
Where people go is `movement.plan_ahead` from their latest position: walks to the merchants they hold (job
sites, for technicians) and stays there. Simulated time runs `speedup` times faster than the clock; one fix per
`every_s` simulated seconds, stamped with the moment it is sent (a fix from the future would be refused), so
on the console people walk `speedup` times faster than they would. The keys are revoked when the run ends.
"""

from __future__ import annotations

import bisect
import http.client
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import msgspec

from backend.demo.movement import Walker, plan_ahead
from backend.tracking.service import IncomingFix

KNOT_MPS = 1852.0 / 3600.0


class HttpError(RuntimeError):
    pass


class Client:
    """A keep-alive HTTP/1.1 connection to the server, reopened when it drops."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = kind(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                answer = conn.getresponse()
                return answer.status, answer.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: object, token: str) -> object:
        status, body = self.request(
            method,
            path,
            msgspec.json.encode(payload) if payload is not None else b"",
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        if status >= 300:
            raise HttpError(f"{method} {path}: {status} {body[:300].decode(errors='replace')}")
        return msgspec.json.decode(body) if body else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def log_in(client: Client, username: str, password: str) -> str:
    status, body = client.request(
        "POST",
        "/v1/auth/token",
        msgspec.json.encode({"username": username, "password": password, "device_id": "groundwork-simulate"}),
        {"Content-Type": "application/json"},
    )
    if status != 200:
        raise HttpError(f"login as {username}: {status} {body[:300].decode(errors='replace')}")
    token: str = msgspec.json.decode(body)["access_token"]
    return token


@dataclass(frozen=True, slots=True)
class Tracker:
    """One person's simulated phone: its key and the path it plays."""

    walker: Walker
    key_id: UUID
    key: str
    path: list[IncomingFix]
    times: list[float]  # the path's simulated times, seconds since the start

    def at(self, seconds: float) -> IncomingFix:
        index = max(0, bisect.bisect_right(self.times, seconds) - 1)
        return self.path[index]


@dataclass(slots=True)
class Progress:
    sent: int = 0
    failed: int = 0
    simulated_s: float = 0.0
    last_error: str | None = None


def form_body(key: str, fix: IncomingFix, sent_at: datetime) -> bytes:
    """What Traccar Client 10 posts: a form body with the OsmAnd names; speed in knots, time in milliseconds."""
    fields: dict[str, str] = {
        "id": key,
        "timestamp": str(int(sent_at.timestamp() * 1000)),
        "lat": f"{fix.lat:.7f}",
        "lon": f"{fix.lon:.7f}",
        "accuracy": f"{fix.accuracy_m:.1f}",
        "speed": f"{(fix.speed_mps or 0.0) / KNOT_MPS:.2f}",
        "batt": f"{fix.battery:.0f}" if fix.battery is not None else "",
        "charge": "true" if fix.charging else "false",
    }
    if fix.bearing_deg is not None:
        fields["bearing"] = f"{fix.bearing_deg:.1f}"
    return urlencode({name: value for name, value in fields.items() if value}).encode()


def issue_trackers(
    client: Client, token: str, walkers: Sequence[Walker], *, start: datetime, hours: float, seed: int
) -> list[Tracker]:
    rng = random.Random(seed)
    trackers = []
    for walker in walkers:
        issued = client.json(
            "POST",
            "/v1/tracking/keys",
            {"user_id": str(walker.user_id), "device_id": "traccar-simulated", "label": "groundwork simulate"},
            token,
        )
        assert isinstance(issued, dict)
        path = plan_ahead(random.Random(rng.getrandbits(64)), walker, start=start, hours=hours)
        times = [(fix.captured_at - start).total_seconds() for fix in path]
        trackers.append(Tracker(walker, UUID(issued["id"]), issued["key"], path, times))
    return trackers


def revoke_trackers(client: Client, token: str, trackers: Sequence[Tracker]) -> None:
    for tracker in trackers:
        client.json("DELETE", f"/v1/tracking/keys/{tracker.key_id}", None, token)


def play(
    client: Client,
    trackers: Sequence[Tracker],
    *,
    every_s: float,
    speedup: float,
    simulated_s: float,
    report: Callable[[Progress], None] | None = None,
    report_every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Progress:
    """Send one fix per person every `every_s` simulated seconds, from 0 to `simulated_s` inclusive: exactly
    `floor(simulated_s / every_s) + 1` reports each, however fast the server answers."""
    progress = Progress()
    ticks = int(simulated_s // every_s) + 1
    started = clock()
    reported = started
    for tick in range(ticks):
        seconds = tick * every_s
        due = started + seconds / speedup
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        for tracker in trackers:
            body = form_body(tracker.key, tracker.at(seconds), now())
            try:
                status, answer = client.request(
                    "POST", "/v1/tracking/osmand", body, {"Content-Type": "application/x-www-form-urlencoded"}
                )
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 0, str(exc).encode()
            if status == 200:
                progress.sent += 1
            else:
                progress.failed += 1
                progress.last_error = f"{status} {answer[:200].decode(errors='replace')}"
        progress.simulated_s = seconds
        if report is not None and (clock() - reported >= report_every_s or tick == ticks - 1):
            reported = clock()
            report(progress)
    return progress


def started_at(walker: Walker, latest: tuple[float, float] | None) -> Walker:
    """The walker, setting off from their latest position when they have one."""
    if latest is None:
        return walker
    return Walker(walker.user_id, walker.team_id, walker.role, latest, walker.places)


async def demo_walkers(database_url: str, slug: str) -> list[Walker]:
    """The demo tenant's BDs and technicians, each from their latest position (the seeded day's end)."""
    import asyncpg

    from backend.demo.movement import walkers_of
    from backend.demo.seed import TEAM_PATCHES

    conn = await asyncpg.connect(database_url)
    try:
        tenant_id = await conn.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
        if tenant_id is None:
            raise LookupError(f"no tenant {slug!r}: run `groundwork demo` (or `groundwork seed`) first")
        walkers = await walkers_of(conn, tenant_id, TEAM_PATCHES)
        latest = {
            row["user_id"]: (row["lat"], row["lon"])
            for row in await conn.fetch("SELECT user_id, lat, lon FROM tracking_latest WHERE tenant_id = $1", tenant_id)
        }
    finally:
        await conn.close()
    return [started_at(walker, latest.get(walker.user_id)) for walker in walkers]
