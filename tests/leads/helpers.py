"""Shared steps of the lead pool's tests: a pinned clock, claims online and offline, pulls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient

from backend.leads.clock import CLOCK
from tests.factories import FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)
FAR = (31.2504, 121.4937)  # ~3 km away: a check-in from here is rejected


@contextmanager
def pinned(at: datetime) -> Iterator[None]:
    CLOCK.pin(at)
    try:
        yield
    finally:
        CLOCK.pin(None)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def claim(client: Client, user: FieldUser, poi_id: UUID) -> Any:
    return await client.post(f"/v1/leads/{poi_id}/claim", headers=user.headers)


def claim_mutation(mutation_id: int, poi_id: UUID) -> dict[str, Any]:
    return {
        "id": mutation_id,
        "name": "poi.claim",
        "args": {"poi_id": str(poi_id)},
        "created_at": datetime.now(UTC).isoformat(),
    }


async def push(client: Client, user: FieldUser, mutations: list[dict[str, Any]], client_id: str | None = None) -> Any:
    body = {"client_id": client_id or f"phone-{uuid.uuid4().hex[:8]}", "mutations": mutations}
    return await client.post("/v1/sync/push", json=body, headers=user.headers)


async def pull(client: Client, user: FieldUser, cursor: str | None = None) -> dict[str, Any]:
    """Every page of a pull: {collection: {"upserted": {id: record}, "removed": set(ids)}}, and the cursor."""
    merged: dict[str, dict[str, Any]] = {}
    while True:
        body: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.post("/v1/sync/pull", json=body, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        for name, changes in page["changes"].items():
            into = merged.setdefault(name, {"upserted": {}, "removed": set()})
            for record in changes["upserted"]:
                into["upserted"][record["id"]] = record
            into["removed"] |= set(changes["removed"])
        cursor = page["cursor"]
        if not page["has_more"]:
            merged["cursor"] = cursor  # type: ignore[assignment]
            return merged
