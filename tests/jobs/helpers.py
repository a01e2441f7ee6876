"""Building jobs and technicians through the API, as dispatch would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient

from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser

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
