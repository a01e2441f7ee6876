"""The simulated fleet with the real WatermelonDB client: three phones (two of them one BD's) run a seeded random
sequence of the same kinds of steps as tests/sync/test_fleet.py (offline edits of notes, answers toggled back and
forth, statuses, check-ins, new merchants; reassignment, retargeting, online edits, expiry; lost push answers,
duplicated pushes, a server killed mid-push), then quiescence, then the same invariants (tests/sync/fleet.py):
every phone's dump equals the server's view of its user, nothing typed is lost, nothing applied twice, no 5xx.

Fixed seeds in CI; GROUNDWORK_FLEET_SEED=<n> runs that seed instead (`./dev fleet` draws them at random).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from backend.settings import Settings
from tests.factories import Factory
from tests.live_server import LiveServer
from tests.sync.fleet import (
    ANSWER_VALUES,
    LONG_RUN,
    OUTCOME_VALUES,
    PHONE_STATUSES,
    UNKNOWN,
    Bd,
    Typed,
    World,
    assert_no_5xx,
    check_applied_once,
    check_items_against_model,
    check_typed_values,
    comparable,
    fleet_seed,
    new_token,
)
from tests.watermelon.harness import DriverError, Phone, Rows, StartPhone

Client = AsyncTestClient[Litestar]
TABLES = ("pois", "work_items", "visits")
STEPS = 60 if LONG_RUN else 30
SEEDS = [fleet_seed()] if fleet_seed() is not None else [7, 11, 13]


class WmFleet:
    """The scenario's state: the world, the phones and the ledger of what they typed."""

    def __init__(self, world: World, rng: random.Random, log: list[str]) -> None:
        self.world, self.rng, self.log = world, rng, log
        self.phones: list[tuple[Phone, Bd]] = []
        self.ledger: list[Typed] = []
        self.tokens: dict[str, str] = {}
        self.visits: dict[str, str] = {}  # every visit row a phone created
        self.merchants: set[str] = set()
        self.auditors = 0
        # Edits not yet pushed, per phone: WatermelonDB pushes a row's latest columns, so a value the user
        # replaced before the phone synced never leaves the phone (not a loss: the user took it back).
        self.pending: dict[str, dict[tuple[str, str, str | None], Typed]] = {}

    def pick(self, options: list[Any]) -> Any:
        return options[self.rng.randrange(len(options))]

    async def rows(self, phone: Phone, table: str) -> dict[str, dict[str, Any]]:
        return (await phone.dump())[table]

    # -- offline edits -------------------------------------------------------------------------------------------

    async def edit_work_item(self, phone: Phone) -> None:
        # A row marked gone (`removed_at`) is read-only in the app (README, Offline sync): WatermelonDB deletes it
        # on a later pull before it pushes, so an edit made on it would never leave the phone.
        items = {k: row for k, row in (await self.rows(phone, "work_items")).items() if row.get("removed_at") is None}
        if not items:
            return
        item_id = self.pick(self.world.ordered(items))
        row = items[item_id]
        kind = self.pick(["notes", "notes", "answers", "answers", "outcome", "status"])
        raw: dict[str, Any]
        if kind == "notes":
            token = new_token(phone.name)
            self.tokens[token] = phone.name
            notes = f"{row['notes']}\n{token}" if row["notes"] and self.rng.random() < 0.7 else token
            raw, typed = {"notes": notes}, [Typed(phone.name, item_id, "notes", None, notes)]
        elif kind in ("answers", "outcome"):
            values = ANSWER_VALUES if kind == "answers" else OUTCOME_VALUES
            key = self.pick(sorted(values))
            current = json.loads(row[kind] or "{}")
            choices = [v for v in values[key] if v != current.get(key)]
            value = self.pick(choices)
            raw = {kind: json.dumps({**current, key: value})}
            typed = [Typed(phone.name, item_id, kind, key, value)]
        else:
            status = self.pick([s for s in PHONE_STATUSES if s != row["status"]])
            raw, typed = {"status": status}, [Typed(phone.name, item_id, "status", None, status)]
        self.log.append(f"{phone.name} edits {item_id[:8]} {raw}")
        await phone.update("work_items", item_id, raw)
        pending = self.pending.setdefault(phone.name, {})
        for entry in typed:
            earlier = pending.get((item_id, entry.field, entry.key))
            if earlier is not None:
                earlier.status = "superseded"
            pending[(item_id, entry.field, entry.key)] = entry
        self.ledger += typed

    async def check_in(self, phone: Phone, bd: Bd) -> None:
        pois = await self.rows(phone, "pois")
        if not pois:
            return
        poi = pois[self.pick(self.world.ordered(pois))]
        visit_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        ms = int(now.timestamp() * 1000)
        row = {
            "id": visit_id,
            "poi_id": poi["id"],
            "user_id": str(bd.user.id),
            "status": "open",
            "checked_in_at": ms,
            "in_lat": poi["lat"],
            "in_lon": poi["lon"],
            "in_accuracy_m": 8.0,
            "in_captured_at": ms,
            "in_is_mock": False,
        }
        self.log.append(f"{phone.name} checks in at {poi['id'][:8]}")
        await phone.create("visits", row)
        self.visits[visit_id] = phone.name

    async def new_merchant(self, phone: Phone) -> None:
        poi_id = str(uuid.uuid4())
        offset = self.rng.randrange(1, 10_000)
        row = {
            "id": poi_id,
            "name": f"Found {poi_id[:6]}",
            "category": "restaurant",
            "address": "",
            "lat": 30.0 + offset * 0.001,
            "lon": 120.0 + offset * 0.0013,
        }
        self.log.append(f"{phone.name} creates merchant {poi_id[:8]}")
        self.world.register(poi_id)
        await phone.create("pois", row)
        self.merchants.add(poi_id)

    # -- syncing ----------------------------------------------------------------------------------------------

    async def sync(self, phone: Phone, **fault: bool) -> None:
        self.log.append(f"{phone.name} syncs {fault or ''}")
        answer = await phone.send("sync", **fault)
        self.pending.pop(phone.name, None)
        if fault.get("lose_answer") and not answer.get("ok"):  # ok: there was nothing to push
            assert "answer was lost" in str(answer.get("error")), answer
        elif not answer.get("ok"):
            raise DriverError(f"{phone.name} sync failed: {answer.get('error')}\n{phone.stderr_tail()}")

    # -- the server side ---------------------------------------------------------------------------------------

    async def server_step(self) -> None:
        kind = self.pick(["reassign", "reassign", "online", "retarget", "expire"])
        item_id = self.pick(self.world.ordered(self.world.items))
        if kind == "reassign":
            to = self.pick(self.world.bds)
            self.log.append(f"ops reassigns {item_id[:8]} to BD {to.index}")
            await self.world.reassign(item_id, to)
        elif kind == "online":
            key = self.pick(sorted(ANSWER_VALUES))
            body = (
                {"notes": f"[web:{uuid.uuid4().hex[:8]}]"}
                if self.rng.random() < 0.5
                else {"answers": {key: self.pick(ANSWER_VALUES[key])}}
            )
            self.log.append(f"web edits {item_id[:8]} {body}")
            await self.world.web_edit(item_id, body)
        elif kind == "retarget":
            bd, poi = self.pick(self.world.bds), self.pick(self.world.pois)
            self.log.append(f"ops targets {str(poi)[:8]} for BD {bd.index}")
            await self.world.new_target(bd, poi)
        else:
            self.log.append("the short campaign expires")
            await self.world.expire_short_campaign()

    # -- quiescence ---------------------------------------------------------------------------------------------

    async def server_view(self, bd: Bd) -> Rows:
        """A fresh first sync of the BD's, from a device that never synced: the server's view of that user."""
        self.auditors += 1
        tokens = await self.world.factory.login(bd.user.username, device_id=f"auditor-{self.auditors}")
        response = await self.world.client.get(
            "/v1/sync/watermelon",
            params={"last_pulled_at": "null", "schema_version": 1},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert_no_5xx(response, "watermelon pull")
        assert response.status_code == 200, response.text
        changes = response.json()["changes"]
        return {t: {row["id"]: row for row in changes[t]["updated"] + changes[t]["created"]} for t in TABLES}

    async def quiesce_and_check(self) -> None:
        self.log.append("quiescence")
        # A removal takes up to three syncs (marked gone; marked again when no push landed after the mark; deleted)
        # and one more proves it settled.
        for _ in range(4):
            for phone, _bd in self.phones:
                await self.sync(phone)
        for phone, bd in self.phones:
            mine = await phone.dump()
            theirs = await self.server_view(bd)
            for table in TABLES:
                assert set(mine[table]) == set(theirs[table]), (
                    f"{phone.name} {table}: extra {sorted(set(mine[table]) - set(theirs[table]))}, "
                    f"missing {sorted(set(theirs[table]) - set(mine[table]))}"
                )
                for row_id, row in mine[table].items():
                    assert row["_status"] == "synced", f"{phone.name} unsynced: {row}"
                    assert not row["_changed"], f"{phone.name} unsynced: {row}"
                    local = {k: v for k, v in row.items() if k not in ("_status", "_changed")}
                    assert comparable(table, local) == comparable(table, theirs[table][row_id]), (
                        f"{phone.name} {table} {row_id}:\n{local}\n{theirs[table][row_id]}"
                    )
        await self._book_refusals()
        await check_typed_values(self.world, self.ledger)
        await check_items_against_model(self.world, self.tokens)
        await check_applied_once(self.world, self.visits, self.merchants)
        left = await self.world.scalars(
            "SELECT status FROM sync_mutations WHERE tenant_id = :t AND status NOT IN ('applied', 'rejected')",
            t=self.world.tenant,
        )
        assert not left, f"mutations left {sorted(set(left))}"

    async def _book_refusals(self) -> None:
        """WatermelonDB hears of no per-row result: the refused edits are read from the server's stored results."""
        async with self.world.factory.database.sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT args, code FROM sync_mutations WHERE tenant_id = :t AND name = 'task.update' "
                        "AND status = 'rejected'"
                    ),
                    {"t": self.world.tenant},
                )
            ).all()
        for typed in self.ledger:
            for args, code in rows:
                sent = (args or {}).get(typed.field)
                value = sent.get(typed.key) if typed.key and isinstance(sent, dict) else sent
                if (args or {}).get("id") == typed.item_id and value == typed.value:
                    typed.status, typed.code = "rejected", code


async def _fleet(factory: Factory, client: Client, phones: StartPhone, seed: int) -> tuple[WmFleet, list[str]]:
    log: list[str] = [f"seed {seed}"]
    world = await World.build(factory, client)
    world.oracle = False
    for model in world.items.values():
        model.notes = UNKNOWN  # WatermelonDB sends whole columns: no exact notes oracle, the other checks stand
    fleet = WmFleet(world, random.Random(seed), log)
    for bd, name in ((world.bds[0], "bd0-a"), (world.bds[0], "bd0-b"), (world.bds[1], "bd1-a")):
        tokens = await factory.login(bd.user.username, device_id=name)
        fleet.phones.append((await phones(name, tokens["access_token"]), bd))
    for phone, _ in fleet.phones:
        await fleet.sync(phone)
    return fleet, log


async def _random_steps(fleet: WmFleet, steps: int) -> None:
    for _ in range(steps):
        phone, bd = fleet.pick(fleet.phones)
        roll = fleet.rng.random()
        if roll < 0.35:
            await fleet.edit_work_item(phone)
        elif roll < 0.45:
            await fleet.check_in(phone, bd)
        elif roll < 0.5:
            await fleet.new_merchant(phone)
        elif roll < 0.7:
            await fleet.sync(phone)
        elif roll < 0.75:
            await fleet.sync(phone, lose_answer=True)
        elif roll < 0.8:
            await fleet.sync(phone, twice=True)
        else:
            await fleet.server_step()


def _explain(log: list[str]) -> str:
    return "the scenario so far:\n  " + "\n  ".join(log[-80:])


@pytest.mark.parametrize("seed", SEEDS)
async def test_simulated_fleet_watermelondb(
    factory: Factory, client: Client, phones: StartPhone, live_server: LiveServer, seed: int
) -> None:
    fleet, log = await _fleet(factory, client, phones, seed)
    try:
        await _random_steps(fleet, STEPS)
        await fleet.quiesce_and_check()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_explain(log)}") from exc


@pytest.mark.parametrize("seed", SEEDS[:1])
async def test_simulated_fleet_watermelondb_server_killed_mid_push(
    factory: Factory,
    client: Client,
    phones: StartPhone,
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    seed: int,
) -> None:
    """Random steps, then one phone pushes a day of check-ins and edits to a server that is killed in the middle;
    it syncs again with a fresh server; more random steps; quiescence."""
    fleet, log = await _fleet(factory, client, phones, seed)
    try:
        await _random_steps(fleet, STEPS // 2)
        phone, bd = fleet.phones[0]
        for _ in range(40):
            await fleet.check_in(phone, bd)
        await fleet.edit_work_item(phone)
        doomed = await asyncio.to_thread(LiveServer(settings, log=tmp_path / "doomed.log").start)
        await phone.call("url", url=doomed.url)
        log.append(f"{phone.name} syncs with a server that is killed mid-push")
        syncing = asyncio.create_task(phone.send("sync"))
        device = f"watermelon:{phone.name}"
        for _ in range(500):
            done = await fleet.world.scalars(
                "SELECT count(*) FROM sync_mutations WHERE user_id = :u AND client_id LIKE :c",
                u=bd.user.id,
                c=f"{device}%",
            )
            if done[0] >= 5 or syncing.done():
                break
            await asyncio.sleep(0.01)
        doomed.kill()
        answer = await syncing
        log.append(f"killed; the phone's sync answered ok={answer.get('ok')}")
        doomed.stop()
        await phone.call("url", url=live_server.url)  # a fresh server process on the same database
        await fleet.sync(phone)
        await _random_steps(fleet, STEPS // 2)
        await fleet.quiesce_and_check()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_explain(log)}") from exc
