"""The simulated fleet, own protocol: hypothesis drives BDs' phones (two for some BDs) through random offline
edits, pushes, pulls and faults, while the server side reassigns, retargets, edits online and expires; at
quiescence every phone must equal the server's view of its user and nothing a phone typed may be lost
(tests/sync/fleet.py holds the model and the invariants).

Fixed seeds in CI (`derandomize=True`); `./dev fleet --minutes 30` runs it with random seeds and many more
examples (GROUNDWORK_FLEET_LONG=1, GROUNDWORK_FLEET_SEED).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from tests.factories import Factory
from tests.sync.fleet import (
    ANSWER_VALUES,
    LONG_RUN,
    OUTCOME_VALUES,
    PHONE_STATUSES,
    TOLERATE,
    Bd,
    Typed,
    World,
    assert_no_5xx,
    check_applied_once,
    check_items_against_model,
    check_typed_values,
    comparable,
    fix_at,
    new_token,
)

T = TypeVar("T")
logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would bury a failure
COLLECTIONS = ("pois", "leads", "work_items", "visits", "jobs")


@dataclass
class Queued:
    mutation: dict[str, Any]
    base: str | None  # the cursor the phone had when it queued this edit
    base_seq: int  # the same, in the model's order of writes
    typed: list[Typed] = field(default_factory=list)


@dataclass(repr=False)
class OwnPhone:
    """A phone on /v1/sync: the records as pulled, and a queue of mutations with increasing ids."""

    name: str
    bd: Bd
    headers: dict[str, str]
    client_id: str
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {c: {} for c in COLLECTIONS})
    cursor: str | None = None
    pulled_seq: int = 0
    queue: list[Queued] = field(default_factory=list)
    next_id: int = 1
    sent: set[int] = field(default_factory=set)
    unpulled: list[dict[str, Any]] = field(default_factory=list)  # args of edits pushed since the last pull

    def __repr__(self) -> str:
        return self.name

    def local(self, item_id: str, field: str, key: str | None = None) -> Any:
        """What the phone shows: its own latest edit (queued, or pushed and not yet pulled back), else as pulled."""
        for args in [*(q.mutation["args"] for q in reversed(self.queue)), *reversed(self.unpulled)]:
            if args.get("id") != item_id or field not in args:
                continue
            if key is None:
                return args[field]
            if key in args[field]:
                return args[field][key]
        record = self.records["work_items"].get(item_id, {})
        value = record.get(field)
        return value.get(key) if key is not None and isinstance(value, dict) else value

    def enqueue(self, name: str, args: dict[str, Any], typed: list[Typed], base_seq: int) -> dict[str, Any]:
        mutation = {"id": self.next_id, "name": name, "args": args, "created_at": datetime.now(UTC).isoformat()}
        self.next_id += 1
        self.queue.append(Queued(mutation, self.cursor, base_seq, typed))
        return mutation


class Fleet:
    """The machine's world: an event loop of its own (hypothesis rules are synchronous), the app in-process."""

    def __init__(self, settings: Settings) -> None:
        self.runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        self.settings = settings
        self.client: AsyncTestClient = None  # type: ignore[type-arg,assignment]
        self.database: Database = None  # type: ignore[assignment]
        self.stats: Counter[str] = Counter()  # what the examples exercised, printed by the long run
        self.run(self._open())

    async def _open(self) -> None:
        self.database = await Database.connect(self.settings)
        self.client = AsyncTestClient(app=create_app(self.settings), base_url="http://groundwork.test")
        await self.client.__aenter__()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def close(self) -> None:
        async def _close() -> None:
            await self.client.__aexit__(None, None, None)
            await self.database.close()

        self.run(_close())
        self.runner.close()


FLEET: Fleet | None = None


class FleetMachine(RuleBasedStateMachine):
    """One example: a tenant, three BDs, five phones, and a random day of field work and faults."""

    world: World
    phones: list[OwnPhone]

    def __init__(self) -> None:
        super().__init__()
        assert FLEET is not None
        self.fleet = FLEET
        self.ledger: list[Typed] = []
        self.tokens: dict[str, str] = {}  # notes text -> phone
        self.visits: dict[str, str] = {}  # visit id -> phone, for every check-in answered applied
        self.merchants: set[str] = set()
        self.queued_visits: list[tuple[OwnPhone, dict[str, Any]]] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.fleet.run(coroutine)

    @initialize()
    def build(self) -> None:
        self.run(self._build())

    async def _build(self) -> None:
        factory = Factory(self.fleet.database, self.fleet.client)
        self.world = await World.build(factory, self.fleet.client)
        self.phones = []
        for bd in self.world.bds:
            for n in range(2 if bd.index != 1 else 1):  # BD 0 and BD 2 carry two phones
                name = f"bd{bd.index}-phone{n}"
                tokens = await factory.login(bd.user.username, device_id=name)
                headers = {"Authorization": f"Bearer {tokens['access_token']}"}
                self.phones.append(OwnPhone(name, bd, headers, client_id=f"{name}-{uuid.uuid4().hex[:6]}"))
        for phone in self.phones:
            await self._pull(phone)

    # -- phone I/O -----------------------------------------------------------------------------------------------

    async def _pull(self, phone: OwnPhone, limit: int = 1000) -> None:
        seq = self.world.clock  # the writes this pull's snapshot sees
        cursor = phone.cursor
        while True:
            body: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            response = await self.fleet.client.post("/v1/sync/pull", json=body, headers=phone.headers)
            assert_no_5xx(response, f"{phone.name} pull")
            assert response.status_code == 200, response.text
            page = response.json()
            for name, changes in page["changes"].items():
                for record in changes["upserted"]:
                    phone.records[name][record["id"]] = record
                for record_id in changes["removed"]:
                    phone.records[name].pop(record_id, None)
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        phone.cursor, phone.pulled_seq = cursor, seq
        phone.unpulled.clear()

    async def _send(self, phone: OwnPhone, batch: list[Queued]) -> list[dict[str, Any]]:
        body = {"client_id": phone.client_id, "cursor": batch[0].base, "mutations": [q.mutation for q in batch]}
        response = await self.fleet.client.post("/v1/sync/push", json=body, headers=phone.headers)
        assert_no_5xx(response, f"{phone.name} push")
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        assert [r["id"] for r in results] == [q.mutation["id"] for q in batch], results
        return results

    def _batch(self, phone: OwnPhone, size: int) -> list[Queued]:
        """The head of the queue that shares one base: a push carries one cursor."""
        batch: list[Queued] = []
        for queued in phone.queue:
            if len(batch) >= size or (batch and queued.base != batch[0].base):
                break
            batch.append(queued)
        return batch

    async def _push(self, phone: OwnPhone, size: int = 1000, copies: int = 1, lose_answer: bool = False) -> None:
        batch = self._batch(phone, size)
        if not batch:
            return
        answers = await asyncio.gather(*(self._send(phone, batch) for _ in range(copies)))
        self.settle(phone, batch, answers, ambiguous=False)
        if lose_answer:
            return  # applied, but the answer never reached the phone: it keeps the batch and will retry it
        self.acknowledge(phone, batch)

    def acknowledge(self, phone: OwnPhone, batch: list[Queued]) -> None:
        del phone.queue[: len(batch)]
        phone.unpulled += [q.mutation["args"] for q in batch if q.mutation["name"] == "task.update"]

    def settle(
        self, phone: OwnPhone, batch: list[Queued], answers: list[list[dict[str, Any]]], *, ambiguous: bool
    ) -> None:
        """Book the results: the model's writes in the order the server applied them."""
        for position, queued in enumerate(batch):
            mutation = queued.mutation
            results = [answer[position] for answer in answers]
            fresh = [r for r in results if r["status"] != "duplicate"]
            was_sent = mutation["id"] in phone.sent
            phone.sent.add(mutation["id"])
            assert len(fresh) <= 1, f"{phone.name} mutation {mutation['id']} applied by two copies: {results}"
            if not fresh:
                assert was_sent, f"{phone.name} mutation {mutation['id']} never sent before, yet a duplicate: {results}"
                continue  # booked when it was first applied
            result = fresh[0]
            self.fleet.stats[f"{mutation['name']} {result['status']} {result.get('code') or ''}".strip()] += 1
            for conflict in (result.get("result") or {}).get("conflicts", []):
                self.fleet.stats[f"conflict {conflict['field']} {conflict['resolution']}"] += 1
            assert result["status"] != "failed", f"a server bug on {phone.name}'s {mutation}: {result}"
            for typed in queued.typed:
                typed.status, typed.code = result["status"], result.get("code")
            if result["status"] != "applied":
                assert result["status"] == "rejected", result
                args = mutation["args"]
                if mutation["name"] == "visit.check_in" and "checkin_requeue" not in TOLERATE:
                    assert result.get("code") != "idempotency_conflict", (
                        f"{phone.name}'s check-in queued again (same visit id and fix) refused: {result}"
                    )
                if mutation["name"] == "task.update" and args["id"] in self.world.items:
                    model = self.world.items[args["id"]]
                    held = model.former | {model.assignee}
                    assert not (phone.bd.user.id in held and result.get("code") == "not_found"), (
                        f"a late edit of {phone.name} refused as not found (the edit would be lost): {result}"
                    )
                continue
            seq = self.world.tick()
            if mutation["name"] == "visit.check_in":
                self.visits[mutation["args"]["id"]] = phone.name
            elif mutation["name"] == "poi.create":
                self.merchants.add(mutation["args"]["id"])
            elif mutation["name"] == "task.update":
                args = mutation["args"]
                model = self.world.items[args["id"]]
                if ambiguous:
                    model.ambiguous = True
                model.record_write(
                    phone.name,
                    seq,
                    args,
                    conflicting=model.conflicting_notes_since(queued.base_seq, phone.name),
                    late=model.assignee != phone.bd.user.id,
                )

    # -- offline edits ---------------------------------------------------------------------------------------------

    def _phone(self, data: st.DataObject) -> OwnPhone:
        return data.draw(st.sampled_from(self.phones), label="phone")

    def _item(self, data: st.DataObject, phone: OwnPhone) -> str | None:
        held = self.world.ordered(phone.records["work_items"])
        return data.draw(st.sampled_from(held), label="item") if held else None

    def _update(self, phone: OwnPhone, item_id: str, args: dict[str, Any], typed: list[Typed]) -> None:
        self.ledger += typed
        phone.enqueue("task.update", {"id": item_id, **args}, typed, phone.pulled_seq)

    @rule(data=st.data(), append=st.booleans())
    def edit_notes(self, data: st.DataObject, append: bool) -> None:
        phone = self._phone(data)
        item_id = self._item(data, phone)
        if item_id is None:
            return
        token = new_token(phone.name)
        current = str(phone.local(item_id, "notes") or "")
        notes = f"{current}\n{token}" if append and current else token
        self.tokens[token] = phone.name
        self._update(phone, item_id, {"notes": notes}, [Typed(phone.name, item_id, "notes", None, notes)])

    @rule(data=st.data(), key=st.sampled_from(sorted(ANSWER_VALUES)))
    def answer(self, data: st.DataObject, key: str) -> None:
        phone = self._phone(data)
        item_id = self._item(data, phone)
        if item_id is None:
            return
        value = data.draw(st.sampled_from(ANSWER_VALUES[key]), label="value")
        if phone.local(item_id, "answers", key) == value:
            return  # the phone already shows it: nothing to queue
        self._update(phone, item_id, {"answers": {key: value}}, [Typed(phone.name, item_id, "answers", key, value)])

    @rule(data=st.data(), key=st.sampled_from(sorted(OUTCOME_VALUES)))
    def record_outcome(self, data: st.DataObject, key: str) -> None:
        phone = self._phone(data)
        item_id = self._item(data, phone)
        if item_id is None:
            return
        value = data.draw(st.sampled_from(OUTCOME_VALUES[key]), label="value")
        if phone.local(item_id, "outcome", key) == value:
            return
        self._update(phone, item_id, {"outcome": {key: value}}, [Typed(phone.name, item_id, "outcome", key, value)])

    @rule(data=st.data(), status=st.sampled_from(PHONE_STATUSES), complete=st.booleans())
    def set_status(self, data: st.DataObject, status: str, complete: bool) -> None:
        """A status change; `complete` sends what closing needs with it (the owner's answer, a 600 recharge)."""
        phone = self._phone(data)
        item_id = self._item(data, phone)
        if item_id is None:
            return
        if phone.local(item_id, "status") == status:
            return
        args: dict[str, Any] = {"status": status}
        typed = [Typed(phone.name, item_id, "status", None, status)]
        if complete:
            args["answers"] = {"decision_maker_present": True}
            args["outcome"] = {"recharge_amount": 600.0}
            typed += [
                Typed(phone.name, item_id, "answers", "decision_maker_present", True),
                Typed(phone.name, item_id, "outcome", "recharge_amount", 600.0),
            ]
        self._update(phone, item_id, args, typed)

    @rule(data=st.data())
    def check_in(self, data: st.DataObject) -> None:
        phone = self._phone(data)
        shops = self.world.ordered(phone.records["pois"])
        if not shops:
            return
        poi = phone.records["pois"][data.draw(st.sampled_from(shops), label="poi")]
        args = {
            "id": str(uuid.uuid4()),
            "poi_id": poi["id"],
            "fix": fix_at(poi["location"]["lat"], poi["location"]["lon"]),
        }
        mutation = phone.enqueue("visit.check_in", args, [], phone.pulled_seq)
        self.queued_visits.append((phone, mutation))

    @precondition(lambda self: bool(self.queued_visits))
    @rule(data=st.data())
    def check_in_again(self, data: st.DataObject) -> None:
        """The app re-queues a check-in it already queued (a crash before it noted the queueing): same visit id,
        new mutation id. One visit."""
        phone, earlier = data.draw(st.sampled_from(self.queued_visits), label="visit")
        phone.enqueue("visit.check_in", dict(earlier["args"]), [], phone.pulled_seq)

    @rule(data=st.data())
    def new_merchant(self, data: st.DataObject) -> None:
        phone = self._phone(data)
        offset = data.draw(st.integers(min_value=1, max_value=10_000), label="offset")
        args = {
            "id": str(uuid.uuid4()),
            "name": f"Found {uuid.uuid4().hex[:6]}",
            "category": "restaurant",
            "location": {"lat": 30.0 + offset * 0.001, "lon": 120.0 + offset * 0.0013},
            "confirm_new": True,
        }
        self.world.register(args["id"])
        phone.enqueue("poi.create", args, [], phone.pulled_seq)

    # -- syncing, and its faults -------------------------------------------------------------------------------

    @rule(data=st.data(), size=st.sampled_from([1, 3, 1000]))
    def push(self, data: st.DataObject, size: int) -> None:
        self.run(self._push(self._phone(data), size))

    @rule(data=st.data(), limit=st.sampled_from([2, 1000]))
    def pull(self, data: st.DataObject, limit: int) -> None:
        self.run(self._pull(self._phone(data), limit))

    @rule(data=st.data())
    def lost_answer(self, data: st.DataObject) -> None:
        """The push is applied, the answer lost (the phone went into a tunnel); the phone retries later."""
        self.run(self._push(self._phone(data), lose_answer=True))

    @rule(data=st.data())
    def duplicated_push(self, data: st.DataObject) -> None:
        """The same push sent twice at once (a retry racing the original)."""
        self.run(self._push(self._phone(data), copies=2))

    @rule(data=st.data())
    def concurrent_phones(self, data: st.DataObject) -> None:
        """Two phones (often the same BD's) push at the same moment."""
        first, second = data.draw(st.permutations(self.phones), label="phones")[:2]
        self.run(self._concurrent(first, second))

    @rule(data=st.data())
    def pull_while_another_pushes(self, data: st.DataObject) -> None:
        """A pull whose snapshot races another phone's push: its base is taken before that push (conservative:
        the model then counts the push's writes as after the base)."""
        first, second = data.draw(st.permutations(self.phones), label="phones")[:2]

        async def both() -> None:
            await asyncio.gather(self._push(first), self._pull(second))

        self.run(both())

    async def _concurrent(self, first: OwnPhone, second: OwnPhone) -> None:
        batches = [self._batch(first, 1000), self._batch(second, 1000)]
        pairs = [(phone, batch) for phone, batch in zip((first, second), batches, strict=True) if batch]
        answers = await asyncio.gather(*(self._send(phone, batch) for phone, batch in pairs))
        touched = [{q.mutation["args"].get("id") for q in batch} for _, batch in pairs]
        both = set.intersection(*touched) if len(touched) == 2 else set()
        for item_id in both & set(self.world.items):
            self.world.items[item_id].ambiguous = True
        for (phone, batch), answer in zip(pairs, answers, strict=True):
            self.settle(phone, batch, [answer], ambiguous=False)
            self.acknowledge(phone, batch)

    # -- the server side -----------------------------------------------------------------------------------------

    def _any_item(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.world.ordered(self.world.items)), label="item")

    @rule(data=st.data())
    def reassign(self, data: st.DataObject) -> None:
        item_id = self._any_item(data)
        to = data.draw(st.sampled_from(self.world.bds), label="to")
        self.run(self.world.reassign(item_id, to))

    @rule(data=st.data())
    def retarget(self, data: st.DataObject) -> None:
        """Scope grows: a new work item for a BD at a merchant of the tenant."""
        bd = data.draw(st.sampled_from(self.world.bds), label="bd")
        poi = data.draw(st.sampled_from(self.world.pois), label="poi")
        self.run(self.world.new_target(bd, poi))

    @precondition(lambda self: bool(self.merchants))
    @rule(data=st.data())
    def release_lead(self, data: st.DataObject) -> None:
        """Scope shrinks: a merchant a phone created (its BD's lead) is released."""
        poi = data.draw(st.sampled_from(self.world.ordered(self.merchants)), label="lead")
        holder = self.run(self.world.scalars("SELECT holder_id FROM pois WHERE id = :id", id=uuid.UUID(poi)))
        if holder and holder[0] is not None:
            self.run(self.world.release_lead(uuid.UUID(poi), holder[0]))

    @rule(data=st.data(), key=st.sampled_from(sorted(ANSWER_VALUES)), notes=st.booleans())
    def online_edit(self, data: st.DataObject, key: str, notes: bool) -> None:
        """The assignee edits at the web console while their phones are offline."""
        item_id = self._any_item(data)
        body: dict[str, Any] = (
            {"notes": f"[web:{uuid.uuid4().hex[:8]}]"}
            if notes
            else {"answers": {key: data.draw(st.sampled_from(ANSWER_VALUES[key]), label="value")}}
        )
        self.run(self.world.web_edit(item_id, body))

    @rule()
    def expire(self) -> None:
        self.run(self.world.expire_short_campaign())

    @rule()
    def quiesce(self) -> None:
        self.run(self.quiesce_and_check())

    # -- quiescence -----------------------------------------------------------------------------------------------

    async def quiesce_and_check(self) -> None:
        for phone in self.phones:
            while phone.queue:
                await self._push(phone)
        for phone in self.phones:
            await self._pull(phone)
        await self.check()

    async def check(self) -> None:
        for phone in self.phones:
            view = await self.server_view(phone.headers)
            for name in COLLECTIONS:
                mine, theirs = phone.records[name], view[name]
                assert set(mine) == set(theirs), (
                    f"{phone.name} {name}: extra {sorted(set(mine) - set(theirs))}, "
                    f"missing {sorted(set(theirs) - set(mine))}"
                )
                for record_id, record in theirs.items():
                    assert comparable(name, mine[record_id]) == comparable(name, record), (
                        f"{phone.name} {name} {record_id}:\n{mine[record_id]}\n{record}"
                    )
        await check_typed_values(self.world, self.ledger)
        await check_items_against_model(self.world, self.tokens)
        await check_applied_once(self.world, self.visits, self.merchants)
        statuses = await self.world.scalars(
            "SELECT status FROM sync_mutations WHERE tenant_id = :t AND status NOT IN ('applied', 'rejected')",
            t=self.world.tenant,
        )
        assert not statuses, f"mutations left {sorted(set(statuses))}"

    async def server_view(self, headers: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
        view: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
        cursor = None
        while True:
            body = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            response = await self.fleet.client.post("/v1/sync/pull", json=body, headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            for name, changes in page["changes"].items():
                for record in changes["upserted"]:
                    view[name][record["id"]] = record
            cursor = page["cursor"]
            if not page["has_more"]:
                return view

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self.run(self.quiesce_and_check())


def fleet_settings() -> hypothesis_settings:
    """CI: fixed seeds, sized for about 40 s. The long run (./dev fleet): random seeds, longer days, shrinking."""
    if LONG_RUN:
        return hypothesis_settings(
            max_examples=int(os.environ.get("GROUNDWORK_FLEET_EXAMPLES", "40")),
            stateful_step_count=60,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate, Phase.shrink, Phase.explain],
            database=None,
        )
    return hypothesis_settings(
        max_examples=20,  # about 40 s here
        stateful_step_count=50,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # a failure prints its steps; the long run shrinks them
        database=None,
    )


def test_simulated_fleet_own_protocol(settings: Settings) -> None:
    global FLEET
    FLEET = Fleet(settings)
    try:
        run_state_machine_as_test(FleetMachine, settings=fleet_settings())
    finally:
        print("fleet exercised:", dict(sorted(FLEET.stats.items())))  # noqa: T201  (shown with -s, or on failure)
        FLEET.close()
        FLEET = None
