"""What the WatermelonDB fleet (test_fleet_wm.py) found, each as the smallest reproduction with the real client."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.factories import Factory
from tests.live_server import LiveServer
from tests.watermelon.harness import Phone, StartPhone
from tests.watermelon.test_watermelon_conflicts import _notes, _one_item
from tests.watermelon.test_watermelon_e2e import token_of

Client = AsyncTestClient[Litestar]


async def test_an_edit_made_on_a_row_already_marked_gone_reaches_the_server(
    factory: Factory, client: Client, phones: StartPhone, live_server: LiveServer
) -> None:
    ops, bd, item, _ = await _one_item(factory, client)
    other = await factory.user(bd.tenant_id)
    phone: Phone = await phones("phone", token_of(bd))
    await phone.sync()
    moved = await client.patch(f"/v1/work-items/{item}", json={"assignee_id": str(other.id)}, headers=ops.headers)
    assert moved.status_code == 200, moved.text
    await phone.sync()  # the item arrives marked gone (removed_at)
    assert (await phone.dump())["work_items"][item]["removed_at"] is not None
    # An app that ignores the mark: the deletion waits for a push (or one more pull), so the edit still leaves.
    await phone.update("work_items", item, {"notes": "Typed on the marked row"})
    await phone.sync()
    await phone.sync()
    assert "Typed on the marked row" in await _notes(factory, item)


async def test_notes_typed_with_a_refused_status_are_not_silently_lost(
    factory: Factory, client: Client, phones: StartPhone, live_server: LiveServer
) -> None:
    ops, bd, item, _ = await _one_item(factory, client)
    phone: Phone = await phones("phone", token_of(bd))
    await phone.sync()
    # Closing as goal_met needs the outcome first: the server refuses the status. The notes came along.
    await phone.update("work_items", item, {"notes": "Owner will sign next week", "status": "goal_met"})
    await phone.sync()
    await phone.sync()
    history = await client.get(f"/v1/work-items/{item}/history", headers=ops.headers)
    assert history.status_code == 200, history.text
    kept = [e for e in history.json()["items"] if e["field"] == "notes"]
    on_server = await _notes(factory, item)
    assert "Owner will sign next week" in on_server or kept, (on_server, history.json())
