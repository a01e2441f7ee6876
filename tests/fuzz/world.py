"""The data the fuzzer runs against: a tenant of its own with a user of every role and real records (merchants,
jobs, a campaign with work items, a visit, a photo, a device), and another tenant's records, so that generated
requests sometimes name ids that exist, and sometimes ids of someone else's."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import requests
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import text

from mobile_contract.auth import Role
from tests.factories import PASSWORD, Factory, FieldUser, fix
from tests.jobs.helpers import SITE, job_body
from tests.tasks.helpers import campaign_body

Client = AsyncTestClient  # type: ignore[type-arg]
ROLES = tuple(role.value for role in Role)
# Callers whose token was good when issued: an ops user deleted since, a BD user disabled since.
GONE = ("deleted", "disabled")


@dataclass
class Records:
    """Ids of one tenant's records, by the kind of id a request names."""

    pois: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)
    work_items: list[str] = field(default_factory=list)
    visits: list[str] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[str]:
        values: list[str] = getattr(self, kind)
        return values


@dataclass
class World:
    own: Records
    other: Records
    usernames: dict[str, str]  # caller (a role, or one of GONE) -> username in the fuzz run's tenant
    gone: dict[str, UUID]  # caller in GONE -> the user to delete or disable once logged in
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # caller -> Authorization, from the live server

    async def log_in(self, base_url: str, factory: Factory) -> None:
        """Tokens from the live server itself, so they live as long as its settings say (set long for long runs).
        Then the users in GONE lose their account, keeping their token."""
        with requests.Session() as session:
            for role, username in self.usernames.items():
                response = session.post(
                    f"{base_url}/v1/auth/token",
                    json={"username": username, "password": PASSWORD, "device_id": f"fuzz-{role}"},
                    timeout=30,
                )
                response.raise_for_status()
                self.headers[role] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        async with factory.database.sessions() as db:
            await db.execute(text("DELETE FROM users WHERE id = :id"), {"id": self.gone["deleted"]})
            await db.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": self.gone["disabled"]})
            await db.commit()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in statuses, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


async def _tenant(factory: Factory, client: Client, records: Records, *, full: bool) -> dict[Role, FieldUser]:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    users = {role: await factory.user(tenant, role, team_id=team) for role in Role}
    ops, bd, tech = users[Role.OPS], users[Role.BD], users[Role.TECHNICIAN]
    records.users += [str(user.id) for user in users.values()]

    await _ok(
        await client.put(
            f"/v1/technicians/{tech.id}/profile",
            json={"skills": ["fiber"], "regions": ["huangpu"], "location": {"lat": SITE[0], "lon": SITE[1]}},
            headers=ops.headers,
        ),
        204,
    )
    free = await factory.poi(tenant, SITE[0], SITE[1] + 0.001)
    held = await factory.poi(tenant, SITE[0] + 0.001, SITE[1], holder_id=bd.id)
    far = await factory.poi(tenant, SITE[0] + 0.05, SITE[1] - 0.05, category="grocery")
    # (0, 0): where a phone without a fix puts things. Nearby searches around it have broken PostGIS's ordering.
    null_island = await factory.poi(tenant, 0.0, 0.0, category="grocery")
    records.pois += [str(free), str(held), str(far), str(null_island)]

    job_id = (await _ok(await client.post("/v1/jobs", json=job_body(), headers=ops.headers), 201))["id"]
    await _ok(
        await client.post(f"/v1/jobs/{job_id}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers),
        200,
    )
    records.jobs.append(job_id)
    if full:
        pooled = await _ok(await client.post("/v1/jobs", json=job_body(dispatch="pool"), headers=ops.headers), 201)
        fresh = await _ok(await client.post("/v1/jobs", json=job_body(), headers=ops.headers), 201)
        records.jobs += [pooled["id"], fresh["id"]]

    campaign = await _ok(await client.post("/v1/campaigns", json=campaign_body(), headers=ops.headers), 201)
    records.campaigns.append(campaign["id"])
    targets = [{"poi_id": str(poi), "assignee_id": str(bd.id)} for poi in (free, held)]
    added = await _ok(
        await client.post(f"/v1/campaigns/{campaign['id']}/targets", json={"targets": targets}, headers=ops.headers),
        200,
    )
    records.work_items += added["created"]

    visit = await _ok(
        await client.post(
            "/v1/visits", json={"id": str(uuid.uuid4()), "poi_id": str(free), "fix": fix(*SITE)}, headers=bd.headers
        ),
        201,
    )
    records.visits.append(visit["id"])

    device = f"fuzz-device-{uuid.uuid4().hex[:8]}"
    await _ok(
        await client.post(
            "/v1/devices",
            json={"device_id": device, "platform": "android", "push_token": "t" * 40, "app_version": "1.0"},
            headers=bd.headers,
        ),
        201,
    )
    records.devices.append(device)

    # A photo of the assigned job: it must be under way (accepted, scheduled, arrived) before one is added.
    appointment = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    await _ok(await client.post(f"/v1/jobs/{job_id}/steps/accept", json={}, headers=tech.headers), 200)
    await _ok(
        await client.post(
            f"/v1/jobs/{job_id}/steps/schedule", json={"appointment_at": appointment}, headers=tech.headers
        ),
        200,
    )
    await _ok(await client.post(f"/v1/jobs/{job_id}/steps/arrive", json={"fix": fix(*SITE)}, headers=tech.headers), 200)
    photo_id = str(uuid.uuid4())
    uploaded = await client.put(
        f"/v1/photos/{photo_id}",
        params={"job_id": job_id},
        content=_png(),
        headers={**tech.headers, "content-type": "image/png"},
    )
    await _ok(uploaded, 201)
    records.photos.append(photo_id)
    return users


async def build_world(factory: Factory, client: Client) -> World:
    own, other = Records(), Records()
    users = await _tenant(factory, client, own, full=True)
    await _tenant(factory, client, other, full=False)
    tenant = users[Role.OPS].tenant_id
    deleted = await factory.user(tenant, Role.OPS, team_id=users[Role.OPS].team_id, login=False)
    disabled = await factory.user(tenant, Role.BD, team_id=users[Role.BD].team_id, login=False)
    usernames = {role.value: user.username for role, user in users.items()}
    usernames |= {"deleted": deleted.username, "disabled": disabled.username}
    return World(own=own, other=other, usernames=usernames, gone={"deleted": deleted.id, "disabled": disabled.id})
