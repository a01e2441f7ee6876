"""`groundwork walkthrough`: a BD's and a technician's day against the demo data, every request and answer printed.

Why: a newcomer's first hour should show the whole API at work, codes included, without reading tests. The app
runs in-process over the demo database (`./dev demo` seeds it, or the walkthrough seeds a small one itself); the
customer's code is read from the SMS outbox after the queued SMS is delivered, as the demo's worker would.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from litestar.testing import AsyncTestClient
from PIL import Image

from backend.app import create_app
from backend.db.engine import Database
from backend.demo.seed import CENTRE_LAT, CENTRE_LON, DEMO_PASSWORD
from backend.jobs.tasks import SMS_SEND, OutboxSms, SendSms
from backend.queue.service import Registry
from backend.queue.worker import run_due
from backend.settings import Settings

CODE_TEXT = re.compile(r"code for today's visit is (\d{6})")
Print = Callable[[str], None]


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    answer: Any


@dataclass
class Walk:
    client: AsyncTestClient  # type: ignore[type-arg]
    say: Print
    width: int = 100
    exchanges: list[Exchange] = field(default_factory=list)
    token: str | None = None

    async def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **query: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        shown = path + (("?" + "&".join(f"{k}={v}" for k, v in query.items())) if query else "")
        self.say(f"\n> {method} {shown}")
        if body is not None:
            self.say(_pretty(body, self.width, indent="  "))
        if raw is not None:
            self.say(f"  ({len(raw)} bytes of image/png)")
            headers["Content-Type"] = "image/png"
        response = await self.client.request(
            method, path, params=query or None, headers=headers, json=body, content=raw
        )
        answer = response.json() if response.content else None
        self.say(f"< {response.status_code}")
        if answer is not None:
            self.say(_pretty(answer, self.width, indent="  "))
        self.exchanges.append(Exchange(method, path, response.status_code, answer))
        return answer

    def note(self, text: str) -> None:
        self.say(f"\n# {text}")


def _pretty(value: Any, width: int, indent: str, max_lines: int = 12) -> str:
    """One line per top-level field (or list item), compact JSON cut to the width: readable, not exhaustive."""

    def trim(v: Any) -> Any:
        if isinstance(v, str) and len(v) > 48:
            return v[:40] + "..."
        if isinstance(v, list) and len(v) > 3:
            return [trim(x) for x in v[:3]] + [f"... {len(v) - 3} more"]
        if isinstance(v, dict):
            return {k: trim(x) for k, x in v.items()}
        if isinstance(v, list):
            return [trim(x) for x in v]
        return v

    def one(text: str) -> str:
        return text if len(text) <= width else text[: width - 4] + " ..."

    def fields(obj: dict[str, Any], depth: int) -> list[str]:
        out: list[str] = []
        for k, v in obj.items():
            line = f"{'  ' * depth}{json.dumps(k)}: {json.dumps(trim(v), ensure_ascii=False)}"
            if len(line) > width and isinstance(v, dict) and depth < 2:
                out.append(f"{'  ' * depth}{json.dumps(k)}:")
                out.extend(fields(v, depth + 1))  # too long for a line: one level deeper (a verdict stays visible)
            else:
                out.append(one(line))
        return out

    if isinstance(value, dict):
        lines = fields(value, 0)
        max_lines = max(max_lines, 20)
    elif isinstance(value, list):
        lines = [one(json.dumps(trim(v), ensure_ascii=False)) for v in value]
    else:
        lines = [one(json.dumps(value, ensure_ascii=False))]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], f"... {len(lines) - max_lines + 1} more fields"]
    return "\n".join(indent + line for line in lines)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _fix(lat: float, lon: float) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "accuracy_m": 8, "captured_at": _now(), "age_ms": 1200, "provider": "fused"}


def _photo(seed: int) -> bytes:
    """A small noise image: two of them never look alike to the reused-photo check."""
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 48))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 48)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def bd_day(walk: Walk) -> None:
    walk.note("A BD's day: log in, merchants nearby, check in at the nearest, a work item, an offline sync")
    login = await walk.call(
        "POST", "/v1/auth/token", {"username": "bd1@demo", "password": DEMO_PASSWORD, "device_id": "walkthrough-bd"}
    )
    walk.token = login["access_token"]
    nearby = await walk.call("GET", "/v1/pois/nearby", lat=CENTRE_LAT, lon=CENTRE_LON, limit=3)
    shop = nearby["items"][0]
    walk.note(f"Standing at {shop['name']}: check in (the id is made on the phone, so a retry is the same visit)")
    await walk.call(
        "POST",
        "/v1/visits",
        {"id": str(uuid4()), "poi_id": shop["id"], "fix": _fix(shop["location"]["lat"], shop["location"]["lon"])},
    )
    items = await walk.call("GET", "/v1/work-items", limit=2)
    if not items["items"]:
        walk.note("No work items for this BD: skipping the work-item update")
        return
    item = items["items"][0]
    await walk.call("PATCH", f"/v1/work-items/{item['id']}", {"notes": "Met the owner; brochure left"})
    walk.note("The phone syncs: a pull, an update queued offline pushed with the cursor, the next pull")
    pulled = await walk.call("POST", "/v1/sync/pull", {"limit": 5})
    await walk.call(
        "POST",
        "/v1/sync/push",
        {
            "client_id": "walkthrough-bd",
            "cursor": pulled["cursor"],
            "mutations": [
                {"id": 1, "name": "task.update", "created_at": _now(), "args": {"id": item["id"], "status": "goal_met"}}
            ],
        },
    )
    await walk.call("POST", "/v1/sync/pull", {"cursor": pulled["cursor"], "limit": 5})


async def technician_day(walk: Walk, database: Database, outbox: Path) -> None:
    walk.note("A technician's day: log in, take a job, arrive, the customer's code, photos, complete")
    login = await walk.call(
        "POST", "/v1/auth/token", {"username": "tech1@demo", "password": DEMO_PASSWORD, "device_id": "walkthrough-tech"}
    )
    walk.token = login["access_token"]
    listed = await walk.call("GET", "/v1/jobs", limit=20)
    jobs = listed["items"] if isinstance(listed, dict) else listed
    mine = [j for j in jobs if j["status"] == "assigned" and j["assignee_id"] == login["user_id"]]
    if mine:
        job = mine[0]
    else:
        pooled = [j for j in jobs if j["status"] == "pooled"]
        if pooled:
            job = await walk.call("POST", f"/v1/jobs/{pooled[0]['id']}/grab", {})
        else:
            job = await _dispatched_job(walk, login["user_id"])
            walk.token = login["access_token"]
    job_id = job["id"]
    await walk.call("POST", f"/v1/jobs/{job_id}/steps/accept", {})
    await walk.call("POST", f"/v1/jobs/{job_id}/steps/schedule", {"appointment_at": _now()})
    site = job["location"]
    job = await walk.call("POST", f"/v1/jobs/{job_id}/steps/arrive", {"fix": _fix(site["lat"], site["lon"])})
    if job["policy"].get("code"):
        code = await _customer_code(walk, database, login["tenant_id"], job["customer_phone"], outbox)
        job = await walk.call("POST", f"/v1/jobs/{job_id}/code", {"code": code})
    for n in range(int(job["policy"].get("photos") or 0)):
        await walk.call("PUT", f"/v1/photos/{uuid4()}", raw=_photo(n), job_id=job_id)
    await walk.call("POST", f"/v1/jobs/{job_id}/steps/complete", {})


async def _dispatched_job(walk: Walk, technician_id: str) -> Any:
    """The demo's seeded jobs are all taken (an earlier walkthrough): operations create one and assign it."""
    walk.note("No job left to take: operations create one and assign it to this technician")
    tech_token = walk.token
    ops = await walk.call(
        "POST", "/v1/auth/token", {"username": "ops@demo", "password": DEMO_PASSWORD, "device_id": "walkthrough-ops"}
    )
    walk.token = ops["access_token"]
    now = datetime.now(UTC)
    created = await walk.call(
        "POST",
        "/v1/jobs",
        {
            "id": str(uuid4()),
            "job_type": "return_visit",
            "customer_name": "Hu Jing",
            "customer_phone": "+86 138 1111 2099",
            "address": "120 Fuxing West Rd, Xuhui",
            "location": {"lat": 31.2105, "lon": 121.4402},
            "geofence_radius_m": 150,
            "region": "shanghai",
            "required_skills": ["router"],
            "window_start": (now - timedelta(hours=1)).isoformat(),
            "window_end": (now + timedelta(hours=8)).isoformat(),
            "priority": 2,
        },
    )
    job = await walk.call("POST", f"/v1/jobs/{created['id']}/assign", {"technician_id": technician_id})
    walk.token = tech_token
    return job


async def _customer_code(walk: Walk, database: Database, tenant_id: str, phone: str, outbox: Path) -> str:
    registry = Registry()
    registry.register(SMS_SEND, SendSms(OutboxSms(outbox)))
    await run_due(database, registry, tenant_id=UUID(tenant_id))
    text = await asyncio.to_thread(outbox.read_text, encoding="utf-8")
    lines = [line for line in text.splitlines() if f"to {phone}:" in line]
    codes = [m.group(1) for line in lines if (m := CODE_TEXT.search(line))]
    if not codes:
        raise RuntimeError(f"no customer code for {phone} in {outbox}")
    walk.note(f"The customer's SMS, from the demo outbox {outbox}: {lines[-1]}")
    return codes[-1]


async def play(settings: Settings, *, outbox: Path, say: Print = print) -> list[Exchange]:
    """Both days, in order; every exchange returned for a caller (a test) to judge."""
    app = create_app(settings)
    database = await Database.connect(settings)
    try:
        async with AsyncTestClient(app=app, base_url="http://groundwork.walkthrough") as client:
            walk = Walk(client, say)
            await bd_day(walk)
            walk.token = None
            await technician_day(walk, database, outbox)
            return walk.exchanges
    finally:
        await database.close()
