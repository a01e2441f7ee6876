"""Building jobs and technicians through the API, as dispatch would."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient

from backend.db.engine import Database
from backend.jobs.tasks import SMS_SEND, SendSms
from backend.queue.service import Registry
from backend.queue.worker import run_due
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser, fix

Client = AsyncTestClient  # type: ignore[type-arg]
SITE = (31.2304, 121.4737)


def job_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_type": "return_visit",
        "customer_name": "Chen Hui",
        "customer_phone": "+86 138 0000 1234",
        "address": "88 Huaihai Middle Rd, Huangpu",
        "location": {"lat": SITE[0], "lon": SITE[1]},
        "geofence_radius_m": 100,
        "region": "huangpu",
        "required_skills": ["fiber"],
        "window_start": (now - timedelta(hours=1)).isoformat(),
        "window_end": (now + timedelta(hours=8)).isoformat(),
        "priority": 2,
    }
    body.update(overrides)
    return body


async def technician(
    factory: Factory,
    client: Client,
    dispatcher: FieldUser,
    tenant: UUID,
    *,
    skills: list[str] | None = None,
    regions: list[str] | None = None,
    at: tuple[float, float] = SITE,
    cap: int = 6,
    available: bool = True,
    name: str | None = None,
) -> FieldUser:
    tech = await factory.user(tenant, Role.TECHNICIAN, name=name)
    response = await client.put(
        f"/v1/technicians/{tech.id}/profile",
        json={
            "skills": ["fiber"] if skills is None else skills,
            "regions": ["huangpu"] if regions is None else regions,
            "daily_cap": cap,
            "available": available,
            "location": {"lat": at[0], "lon": at[1]},
        },
        headers=dispatcher.headers,
    )
    assert response.status_code == 204, response.text
    return tech


async def create_job(client: Client, dispatcher: FieldUser, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/jobs", json=job_body(**overrides), headers=dispatcher.headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def step(client: Client, user: FieldUser, job_id: str, name: str, **body: Any) -> Any:
    return await client.post(f"/v1/jobs/{job_id}/steps/{name}", json=body, headers=user.headers)


class RecordingSms:
    """An SMS gateway that keeps what it was asked to send (the app's `SmsSender`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


async def deliver_sms(database: Database, tenant_id: UUID, *, now: datetime | None = None) -> RecordingSms:
    """Run the tenant's queued `sms.send` jobs, as the worker would after the commit."""
    outbox = RecordingSms()
    registry = Registry()
    registry.register(SMS_SEND, SendSms(outbox))
    await run_due(database, registry, tenant_id=tenant_id, now=now)
    return outbox


async def sent_code(database: Database, tenant_id: UUID) -> str:
    """The last code the customer was sent: the queued SMS, delivered now."""
    outbox = await deliver_sms(database, tenant_id)
    codes = re.findall(r"code for today's visit is (\d{6})", " ".join(text for _, text in outbox.sent))
    assert codes, "no code was sent"
    return codes[-1]


async def arrived_job(
    factory: Factory, client: Client, *, job_type: str = "return_visit"
) -> tuple[FieldUser, FieldUser, str]:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops, job_type=job_type)
    assert (
        await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    ).status_code == 200
    assert (await step(client, tech, job["id"], "accept")).status_code == 200
    appointment = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    assert (await step(client, tech, job["id"], "schedule", appointment_at=appointment)).status_code == 200
    arrived = await step(client, tech, job["id"], "arrive", fix=fix(*SITE))
    assert arrived.status_code == 200, arrived.text
    return ops, tech, job["id"]
