"""Building campaigns and work items through the API, as operations would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient

from tests.factories import FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]


def campaign_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "type": "recharge_push",
        "title": "November recharge push",
        "instructions": "Offer the 10% bonus on recharges over 500.",
        "goal": {"kind": "recharge_amount", "target": 500},
        "form": {
            "version": 2,
            "fields": [
                {"key": "decision_maker_present", "label": "Owner present?", "type": "boolean", "required": True},
                {"key": "competitor", "label": "Competitor used", "type": "choice", "options": ["none", "a", "b"]},
                {"key": "monthly_volume", "label": "Monthly volume", "type": "number"},
            ],
        },
        "offer": {"title": "10% bonus", "description": "On recharges over 500 CNY"},
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=14)).isoformat(),
        "time_zone": "Asia/Shanghai",
    }
    body.update(overrides)
    return body


async def create_campaign(client: Client, ops: FieldUser, **overrides: Any) -> str:
    response = await client.post("/v1/campaigns", json=campaign_body(**overrides), headers=ops.headers)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["id"]
    return campaign_id


async def assign(client: Client, ops: FieldUser, campaign_id: str, pairs: list[tuple[UUID, UUID]]) -> list[str]:
    response = await client.post(
        f"/v1/campaigns/{campaign_id}/targets",
        json={"targets": [{"poi_id": str(poi), "assignee_id": str(user)} for poi, user in pairs]},
        headers=ops.headers,
    )
    assert response.status_code == 200, response.text
    created: list[str] = response.json()["created"]
    assert len(created) == len(pairs), response.text
    return created
