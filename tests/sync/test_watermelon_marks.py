"""The WatermelonDB removal of a work item waits until the phone's pending edit has reached us: a sync whose push
never landed (the server restarted, the network dropped) must not be followed by a deletion that destroys the edit
under the phone (WatermelonDB applies deletions before it pushes). Driven over HTTP, as the client would."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.tasks.helpers import assign, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]


async def _pull(client: Client, user: FieldUser, last: int | None) -> tuple[dict[str, Any], int]:
    query = f"last_pulled_at={last if last is not None else 'null'}&schema_version=1"
    response = await client.get(f"/v1/sync/watermelon?{query}", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["changes"]["work_items"], int(body["timestamp"])


async def test_a_sync_whose_push_died_does_not_get_the_deletion_next(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd, other = await factory.user(tenant), await factory.user(tenant)
    [item] = await assign(client, ops, await create_campaign(client, ops), [(await factory.poi(tenant), bd.id)])
    _, first = await _pull(client, bd, None)
    moved = await client.patch(f"/v1/work-items/{item}", json={"assignee_id": str(other.id)}, headers=ops.headers)
    assert moved.status_code == 200
    changes, marked_at = await _pull(client, bd, first)  # the mark arrives; the push of this sync dies
    assert [row["id"] for row in changes["updated"]] == [item]
    assert changes["updated"][0]["removed_at"] is not None
    changes, again = await _pull(client, bd, marked_at)  # the next sync: no deletion yet, the mark again
    assert changes["deleted"] == []
    assert [row["id"] for row in changes["updated"]] == [item]
    row = {**changes["updated"][0], "notes": "Typed before the mark", "_status": "updated", "_changed": "notes"}
    pushed = await client.post(
        f"/v1/sync/watermelon?last_pulled_at={again}",
        json={"changes": {"work_items": {"created": [], "updated": [row], "deleted": []}}},
        headers=bd.headers,
    )
    assert pushed.status_code == 200, pushed.text
    changes, _ = await _pull(client, bd, again)  # the edit has landed: now the deletion
    assert changes["deleted"] == [item]
    seen = (await client.get(f"/v1/work-items/{item}", headers=other.headers)).json()
    assert "Typed before the mark" in seen["notes"]
