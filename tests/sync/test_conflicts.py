"""The conflict model of offline edits (mobile_contract/conflicts.py): a phone never conflicts with itself, edits
are applied exactly once however they are retried, and nothing a phone typed is lost, not even after the work
item was reassigned away."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.tasks.service import merge_notes
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.sync.test_sync import SHOP, check_in_mutation, pull_all
from tests.tasks.helpers import assign, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]
_ids = itertools.count(1)


class OwnPhone:
    """A phone of the own protocol: a cursor, a client id and increasing mutation ids."""

    def __init__(self, client: Client, user: FieldUser, client_id: str) -> None:
        self.client, self.user, self.client_id = client, user, client_id
        self.cursor: str | None = None
        self.next_id = 1

    async def pull(self) -> dict[str, Any]:
        synced = await pull_all(self.client, self.user, self.cursor)
        self.cursor = synced["cursor"]
        return synced

    def mutation(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        mutation = {"id": self.next_id, "name": name, "args": args, "created_at": datetime.now(UTC).isoformat()}
        self.next_id += 1
        return mutation

    async def push(self, *mutations: dict[str, Any]) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"client_id": self.client_id, "mutations": list(mutations)}
        if self.cursor:
            body["cursor"] = self.cursor
        response = await self.client.post("/v1/sync/push", json=body, headers=self.user.headers)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


async def _setup(factory: Factory, client: Client) -> tuple[FieldUser, FieldUser, str, Any]:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    [item] = await assign(client, ops, await create_campaign(client, ops), [(poi, bd.id)])
    return ops, bd, item, poi


async def _item(client: Client, user: FieldUser, item: str) -> dict[str, Any]:
    response = await client.get(f"/v1/work-items/{item}", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _history(client: Client, user: FieldUser, item: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/work-items/{item}/history", headers=user.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_notes_edited_twice_syncing_in_between_are_not_doubled(factory: Factory, client: Client) -> None:
    _, bd, item, _ = await _setup(factory, client)
    phone = OwnPhone(client, bd, "phone-a")
    await phone.pull()
    [first] = await phone.push(phone.mutation("task.update", {"id": item, "notes": "Owner away"}))
    assert first["status"] == "applied"
    assert first["result"]["conflicts"] == []
    await phone.pull()
    [second] = await phone.push(phone.mutation("task.update", {"id": item, "notes": "Owner away; back at 3"}))
    assert second["result"]["conflicts"] == []
    assert (await _item(client, bd, item))["notes"] == "Owner away; back at 3"


async def test_a_check_in_then_closing_in_one_push_closes(factory: Factory, client: Client) -> None:
    """The server's reaction to the phone's own check-in (assigned -> in_progress) is no conflict with the
    phone's next mutation in the same push."""
    _, bd, item, poi = await _setup(factory, client)
    phone = OwnPhone(client, bd, "phone-a")
    await phone.pull()
    check_in = check_in_mutation(phone.next_id, poi)
    phone.next_id += 1
    close = phone.mutation(
        "task.update",
        {
            "id": item,
            "answers": {"decision_maker_present": True},
            "outcome": {"recharge_amount": 800},
            "status": "goal_met",
        },
    )
    results = await phone.push(check_in, close)
    assert [r["status"] for r in results] == ["applied", "applied"]
    assert results[1]["result"]["conflicts"] == []
    assert (await _item(client, bd, item))["status"] == "goal_met"


async def test_an_answer_toggled_back_is_applied_and_a_retry_is_not_a_new_edit(
    factory: Factory, client: Client
) -> None:
    _, bd, item, _ = await _setup(factory, client)
    phone = OwnPhone(client, bd, "phone-a")
    for value in ("a", "b", "a"):
        await phone.pull()
        await phone.push(phone.mutation("task.update", {"id": item, "answers": {"competitor": value}}))
        assert (await _item(client, bd, item))["answers"]["competitor"] == value
    # The answer to the last push was lost; another phone changes the answer; the retry (same mutation id) is a
    # replay and changes nothing.
    other = OwnPhone(client, bd, "phone-b")
    other.user = FieldUser(**{**bd.__dict__, "headers": await _headers(factory, bd, "device-2")})
    await other.pull()
    await other.push(other.mutation("task.update", {"id": item, "answers": {"competitor": "none"}}))
    phone.next_id -= 1
    [retry] = await phone.push(phone.mutation("task.update", {"id": item, "answers": {"competitor": "a"}}))
    assert retry["status"] == "duplicate"
    assert (await _item(client, bd, item))["answers"]["competitor"] == "none"


async def _headers(factory: Factory, user: FieldUser, device_id: str) -> dict[str, str]:
    tokens = await factory.login(user.username, device_id=device_id)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_conflicting_notes_edit_keeps_both_texts_once(factory: Factory, client: Client) -> None:
    _, bd, item, _ = await _setup(factory, client)
    phone = OwnPhone(client, bd, "phone-a")
    await phone.pull()
    await phone.push(phone.mutation("task.update", {"id": item, "notes": "Met the owner"}))
    await phone.pull()
    # The BD on the web (another device) appends a line; the phone, offline, appends another.
    web = await _headers(factory, bd, "web")
    online = await client.patch(f"/v1/work-items/{item}", json={"notes": "Met the owner\nCalled back"}, headers=web)
    assert online.status_code == 200
    [result] = await phone.push(phone.mutation("task.update", {"id": item, "notes": "Met the owner\nLeft brochure"}))
    assert {"field": "notes", "resolution": "merged"} in result["result"]["conflicts"]
    assert (await _item(client, bd, item))["notes"] == "Met the owner\nCalled back\nLeft brochure"


async def test_a_late_edit_from_a_former_assignee_is_kept_and_shown(factory: Factory, client: Client) -> None:
    ops, bd, item, _ = await _setup(factory, client)
    other_bd = await factory.user(bd.tenant_id)
    phone = OwnPhone(client, bd, "phone-a")
    await phone.pull()
    moved = await client.patch(f"/v1/work-items/{item}", json={"assignee_id": str(other_bd.id)}, headers=ops.headers)
    assert moved.status_code == 200
    edit = {
        "id": item,
        "notes": "Owner wants a call on Monday",
        "answers": {"competitor": "b"},
        "status": "visited_not_met",
    }
    [result] = await phone.push(phone.mutation("task.update", edit))
    assert result["status"] == "applied", result
    resolutions = {c["field"]: c["resolution"] for c in result["result"]["conflicts"]}
    assert resolutions == {"notes": "late_applied", "answers": "late_applied", "status": "late_kept"}
    now = await _item(client, other_bd, item)
    assert now["notes"] == "Owner wants a call on Monday"
    assert now["answers"]["competitor"] == "b"
    assert now["status"] == "assigned"
    assert [(e["field"], e["value"]) for e in now["late_edits"] if e["resolution"] == "late_kept"] == [
        ("status", "visited_not_met")
    ]
    assert any(e["value"] == "visited_not_met" for e in await _history(client, ops, item))
    # The former assignee's phone gets the removal again.
    synced = await phone.pull()
    assert item in synced["removed"]["work_items"]
    # Someone who never held the item still gets 404.
    stranger = await factory.user(bd.tenant_id)
    response = await client.patch(f"/v1/work-items/{item}", json={"notes": "x"}, headers=stranger.headers)
    assert response.status_code == 404


async def test_history_answers_bad_input_and_other_tenants_with_problems(factory: Factory, client: Client) -> None:
    ops, bd, item, _ = await _setup(factory, client)
    foreign = await factory.user(await factory.tenant(), Role.OPS)
    assert (await client.get(f"/v1/work-items/{item}/history", headers=foreign.headers)).status_code == 404
    assert (await client.get(f"/v1/work-items/{item}/history")).status_code == 401
    for query in ("limit=0", "limit=100000", "cursor=", "cursor=garbage"):
        response = await client.get(f"/v1/work-items/{item}/history?{query}", headers=ops.headers)
        assert response.status_code in (400, 422), query
        assert response.headers["content-type"].startswith("application/problem+json")
    page = await client.get(f"/v1/work-items/{item}/history?limit=1", headers=bd.headers)
    assert page.status_code == 200


# -- generated cases ---------------------------------------------------------------------------------------------

_text = st.text(alphabet=st.sampled_from("abc \n"), min_size=1, max_size=12)


@settings(max_examples=120, deadline=None)
@given(base=_text, server_added=_text, phone_added=_text)
def test_merged_notes_keep_what_each_side_added_once(base: str, server_added: str, phone_added: str) -> None:
    server, phone = f"{base}\n{server_added}", f"{base}\n{phone_added}"
    merged = merge_notes(base, server, phone)
    for line in {*server.splitlines(), *phone.splitlines()}:
        assert line in merged.splitlines()
    assert merged.splitlines().count(base.splitlines()[0]) >= 1 if base.strip("\n") else True
    assert merge_notes(base, server, server) == server  # a phone that sends the server's text changes nothing


_edit = st.one_of(
    st.tuples(st.just("notes"), st.sampled_from(["", "owner away", "owner away\nback at 3", "closed today"])),
    st.tuples(st.just("answers"), st.sampled_from(["none", "a", "b"])),
)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(_edit, st.booleans(), st.booleans()), min_size=1, max_size=8))
async def test_one_phone_never_conflicts_with_itself(
    factory: Factory, client: Client, steps: list[tuple[tuple[str, str], bool, bool]]
) -> None:
    """Whatever one phone does (edits, pulls or not in between, answers lost and retried), with nobody else
    editing, the server ends with exactly the phone's last values, and a final pull makes the phone agree."""
    _, bd, item, _ = await _setup(factory, client)
    phone = OwnPhone(client, bd, f"phone-{next(_ids)}")
    await phone.pull()
    expected: dict[str, Any] = {}
    for (field, value), pull_first, lose_answer in steps:
        if pull_first:
            await phone.pull()
        args: dict[str, Any] = {"id": item}
        args[field] = value if field == "notes" else {"competitor": value}
        mutation = phone.mutation("task.update", args)
        [result] = await phone.push(mutation)
        assert result["status"] == "applied", result
        assert result["result"]["conflicts"] == [], result
        if lose_answer:
            [again] = await phone.push(mutation)
            assert again["status"] == "duplicate"
        expected[field] = value
    now = await _item(client, bd, item)
    if "notes" in expected:
        assert now["notes"] == expected["notes"]
    if "answers" in expected:
        assert now["answers"]["competitor"] == expected["answers"]
    synced = await phone.pull()
    if item in synced["records"]["work_items"]:
        assert synced["records"]["work_items"][item]["notes"] == now["notes"]
