"""Signing and sending business events as an integration would, with the route's clock held by the test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient

from backend.db.engine import Database
from backend.events import tasks as events_tasks
from backend.events.keys import sign
from backend.events.routes import CLOCK_STATE
from backend.events.service import REATTRIBUTE
from backend.queue.service import Registry
from backend.queue.worker import run_due
from tests.factories import Factory, FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)

__all__ = ["SHOP", "Clock", "Integration", "drain_events", "event_body", "held_clock", "integration"]


async def drain_events(database: Database, tenant_id: UUID) -> int:
    """Run the tenant's queued re-attributions now, as a worker would after the commit."""
    registry = Registry()
    registry.register(REATTRIBUTE, events_tasks.reattribute)
    return await run_due(database, registry, tenant_id=tenant_id)


class Clock:
    """The events route's clock: what the test says it is (real time plus an offset, so check-ins, which judge
    their fixes by the real clock, stay comparable)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def move(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@contextmanager
def held_clock(client: Client) -> Iterator[Clock]:
    clock = Clock()
    setattr(client.app.state, CLOCK_STATE, clock)
    try:
        yield clock
    finally:
        setattr(client.app.state, CLOCK_STATE, None)


@dataclass
class Integration:
    client: Client
    key_id: str
    secret: str
    clock: Clock

    def headers(self, body: bytes, *, at: int | None = None, secret: str | None = None) -> dict[str, str]:
        timestamp = int(self.clock().timestamp()) if at is None else at
        return {
            "Content-Type": "application/json",
            "X-Groundwork-Key-Id": self.key_id,
            "X-Groundwork-Timestamp": str(timestamp),
            "X-Groundwork-Signature": sign(secret or self.secret, timestamp, body),
        }

    async def send_raw(self, body: bytes, **kw: Any) -> Any:
        return await self.client.post("/v1/events", content=body, headers=self.headers(body, **kw))

    async def send(self, body: dict[str, Any], **kw: Any) -> Any:
        return await self.send_raw(json.dumps(body).encode(), **kw)


async def integration(factory: Factory, client: Client, clock: Clock, admin: FieldUser) -> Integration:
    response = await client.post("/v1/events/keys", json={"label": "CRM"}, headers=admin.headers)
    assert response.status_code == 200, response.text
    issued = response.json()
    return Integration(client=client, key_id=issued["id"], secret=issued["secret"], clock=clock)


def event_body(
    poi_id: UUID | None, *, occurred_at: datetime, kind: str = "signing", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "crm",
        "external_id": f"ev-{uuid.uuid4().hex[:12]}",
        "kind": kind,
        "merchant": {"id": str(poi_id)},
        "occurred_at": occurred_at.isoformat(),
    }
    if kind == "recharge":
        body |= {"amount": "500.00", "currency": "CNY"}
    body.update(overrides)
    return body
