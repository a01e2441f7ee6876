"""The simulated fleet's shared half: the world (a tenant, its BDs, merchants and work items), the model of what
the server must hold (an oracle per work-item field), the ledger of every value a phone typed, and the
invariants checked at quiescence. Used by both protocols' runners: tests/sync/test_fleet.py (own protocol,
hypothesis stateful) and tests/watermelon/test_fleet_wm.py (the real WatermelonDB client).

The conflict model the server is held to (issue 7):
- status: the server's value stays when the server changed it since the phone's base (`server_kept`); an
  expired item never reopens.
- notes: both kept (the phone's text is never lost).
- answers / outcome: merged per key; on the same key the phone wins.
- a phone's own earlier pushes, and the server's reactions to its own mutations, are never a conflict against it.
- a late edit (the item was reassigned away) is kept: applied where the rules allow, otherwise in the history
  (and in `late_edits`); never refused `not_found`.
Invariants at quiescence: every phone equals the server's view of its user; every value a phone typed is the
server's current value, inside it (merged notes), or in the item's history; nothing applied twice; no 5xx.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient
from sqlalchemy import text

from backend.leads.pool import return_to_pool
from backend.tasks import service as tasks_service
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]

SHOP = (31.2304, 121.4737)
ANSWER_VALUES: dict[str, list[Any]] = {
    "decision_maker_present": [True, False],
    "competitor": ["none", "a", "b"],
    "monthly_volume": [0, 10, 250],
}
OUTCOME_VALUES: dict[str, list[Any]] = {"recharge_amount": [100.0, 600.0], "signed": [True, False]}
PHONE_STATUSES = ("in_progress", "goal_met", "visited_not_met")
OPEN = ("assigned", "in_progress")

# The long run (./dev fleet) raises these; CI uses the defaults with fixed seeds.
LONG_RUN = os.environ.get("GROUNDWORK_FLEET_LONG") == "1"
# Divergences the fleet looks past:
#   poi_derived      a merchant's derived lists (open_work_items, recent_visits) are not compared
#   checkin_requeue  a check-in queued again under a new mutation id may be refused idempotency_conflict
#   late_notes_doubled  a phone's text may be in the notes twice (a late edit merged without its base)
# KNOWN: found and not fixed yet, each with a strict xfail reproduction in tests/sync/test_fleet_regressions.py
# (when the fix lands, that test XPASSes and fails: delete its marker and its name here). GROUNDWORK_FLEET_STRICT=1
# looks past nothing; GROUNDWORK_FLEET_TOLERATE adds names (comma-separated) while hunting behind a known bug.
KNOWN: set[str] = set()  # every divergence the fleet found is fixed on main (late_notes_doubled too)
TOLERATE = (set() if os.environ.get("GROUNDWORK_FLEET_STRICT") == "1" else KNOWN) | set(
    filter(None, os.environ.get("GROUNDWORK_FLEET_TOLERATE", "").split(","))
)
DERIVED = {"pois": ("open_work_items", "recent_visits")}


def comparable(collection: str, record: dict[str, Any]) -> dict[str, Any]:
    if "poi_derived" in TOLERATE and collection in DERIVED:
        return {k: v for k, v in record.items() if k not in DERIVED[collection]}
    return record


def fleet_seed() -> int | None:
    """A seed for this run: GROUNDWORK_FLEET_SEED, else None (the caller's fixed CI seed)."""
    raw = os.environ.get("GROUNDWORK_FLEET_SEED")
    return int(raw) if raw else None


def fix_at(lat: float, lon: float, *, ago_s: float = 2.0) -> dict[str, Any]:
    captured = datetime.now(UTC) - timedelta(seconds=ago_s)
    return {
        "lat": lat,
        "lon": lon,
        "accuracy_m": 8.0,
        "captured_at": captured.isoformat(),
        "age_ms": int(ago_s * 1000),
        "provider": "gps",
    }


def assert_no_5xx(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.text[:2000]}"


# -- the world ---------------------------------------------------------------------------------------------------


@dataclass(repr=False)
class Bd:
    user: FieldUser
    web: dict[str, str]  # the same BD's online session (the web console): online edits
    index: int

    def __repr__(self) -> str:  # hypothesis prints the draws of a failing case: names, not tokens
        return f"BD {self.index}"


@dataclass
class World:
    """A tenant of its own: operations, BDs, two campaigns (one short, for expiry), merchants with work items."""

    factory: Factory
    client: Client
    tenant: UUID
    ops: FieldUser
    bds: list[Bd]
    campaigns: dict[str, str]  # "short" / "long" -> campaign id
    short_ends_at: datetime
    pois: list[UUID]
    items: dict[str, ItemModel] = field(default_factory=dict)
    clock: int = 0  # the model's order of applied writes
    order: dict[str, int] = field(default_factory=dict)  # record id -> creation rank: choices independent of uuids
    # False: no exact oracle of notes, answers and outcome (the WatermelonDB runner does not book its writes:
    # WatermelonDB sends whole columns and hears of no per-row result); the other invariants stand.
    oracle: bool = True

    def register(self, record_id: str | UUID) -> None:
        self.order.setdefault(str(record_id), len(self.order))

    def ordered(self, ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=lambda i: (self.order.get(i, len(self.order)), i))

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def bd_of(self, user_id: UUID) -> Bd:
        return next(b for b in self.bds if b.user.id == user_id)

    @classmethod
    async def build(cls, factory: Factory, client: Client, *, bds: int = 3, pois: int = 6) -> World:
        tenant = await factory.tenant()
        ops = await factory.user(tenant, Role.OPS, name="Ops")
        people = []
        for i in range(bds):
            user = await factory.user(tenant, name=f"BD {i}")
            web = await factory.login(user.username, device_id="web-console")
            people.append(Bd(user, {"Authorization": f"Bearer {web['access_token']}"}, i))
        now = datetime.now(UTC)
        short_ends = now + timedelta(hours=3)
        campaigns = {
            "short": await _campaign(client, ops, now - timedelta(days=1), short_ends, "Short push"),
            "long": await _campaign(client, ops, now - timedelta(days=1), now + timedelta(days=14), "Long push"),
        }
        # Merchants a few metres apart, so a round of check-ins is a believable walk down one street.
        shops = [await factory.poi(tenant, SHOP[0] + i * 0.0002, SHOP[1], name=f"Fleet shop {i}") for i in range(pois)]
        world = cls(factory, client, tenant, ops, people, campaigns, short_ends, shops)
        for poi in shops:
            world.register(poi)
        pairs = {"short": [], "long": []}  # type: dict[str, list[tuple[UUID, UUID]]]
        for i, poi in enumerate(shops):
            pairs["short" if i % 2 else "long"].append((poi, people[i % bds].user.id))
        for name, targets in pairs.items():
            for item_id, (poi, assignee) in zip(await world.add_targets(name, targets), targets, strict=True):
                world.items[item_id] = ItemModel(item_id, poi, name, assignee)
                world.register(item_id)
        return world

    async def add_targets(self, campaign: str, targets: list[tuple[UUID, UUID]]) -> list[str]:
        response = await self.client.post(
            f"/v1/campaigns/{self.campaigns[campaign]}/targets",
            json={"targets": [{"poi_id": str(p), "assignee_id": str(u)} for p, u in targets]},
            headers=self.ops.headers,
        )
        assert_no_5xx(response, "add targets")
        assert response.status_code == 200, response.text
        created: list[str] = response.json()["created"]
        return created

    # -- server-side changes -----------------------------------------------------------------------------------

    async def new_target(self, assignee: Bd, poi: UUID) -> str | None:
        """A scope change: operations target a merchant for a BD (a new work item reaches their phones)."""
        for campaign in ("long", "short"):
            if any(i.poi_id == poi and i.campaign == campaign for i in self.items.values()):
                continue
            [item_id] = await self.add_targets(campaign, [(poi, assignee.user.id)])
            self.items[item_id] = ItemModel(item_id, poi, campaign, assignee.user.id)
            if not self.oracle:
                self.items[item_id].notes = UNKNOWN
            self.register(item_id)
            return item_id
        return None

    async def reassign(self, item_id: str, to: Bd) -> bool:
        response = await self.client.patch(
            f"/v1/work-items/{item_id}", json={"assignee_id": str(to.user.id)}, headers=self.ops.headers
        )
        assert_no_5xx(response, "reassign")
        if response.status_code == 409:  # closed: it cannot move
            assert response.json()["code"] == "work_item_closed", response.text
            return False
        assert response.status_code == 200, response.text
        model = self.items[item_id]
        if model.assignee != to.user.id:
            model.former.add(model.assignee)
            model.assignee = to.user.id
        return True

    async def web_edit(self, item_id: str, body: dict[str, Any]) -> None:
        """The assignee edits online (the web console): no base, the edit is current by definition."""
        model = self.items[item_id]
        bd = self.bd_of(model.assignee)
        response = await self.client.patch(f"/v1/work-items/{item_id}", json=body, headers=bd.web)
        assert_no_5xx(response, "web edit")
        assert response.status_code in (200, 422), response.text
        if response.status_code != 200:
            return
        seq = self.tick()
        if self.oracle:
            model.record_write("web", seq, body, conflicting=False, late=False)

    async def expire_short_campaign(self) -> int:
        """Expiry with a moved clock: the short campaign's window has ended."""
        async with self.factory.database.sessions() as session:
            count = await tasks_service.expire_due(session, now=self.short_ends_at + timedelta(minutes=1))
            await session.commit()
        expired = await self.scalars(
            "SELECT id::text FROM work_items WHERE tenant_id = :t AND status = 'expired'", t=self.tenant
        )
        for item_id in expired:
            self.items[item_id].expired = True
        self.tick()
        return count

    async def release_lead(self, poi: UUID, holder: UUID) -> None:
        """A scope change: a BD's lead is released (it leaves their phones unless a work item keeps it)."""
        async with self.factory.database.sessions() as session:
            await return_to_pool(session, self.tenant, [(poi, holder)], datetime.now(UTC), actor=None, reason="fleet")
            await session.commit()
        self.tick()

    async def scalars(self, sql: str, **params: Any) -> list[Any]:
        async with self.factory.database.sessions() as session:
            return list((await session.execute(text(sql), params)).scalars())

    # -- the server's view -----------------------------------------------------------------------------------------

    async def server_item(self, item_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/work-items/{item_id}", headers=self.ops.headers)
        assert_no_5xx(response, "get work item")
        assert response.status_code == 200, response.text
        item: dict[str, Any] = response.json()
        return item

    async def history(self, item_id: str) -> list[dict[str, Any]]:
        """The work item's history: GET /v1/work-items/{id}/history, else table work_item_history, else []."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            response = await self.client.get(
                f"/v1/work-items/{item_id}/history",
                params={"cursor": cursor} if cursor else None,
                headers=self.ops.headers,
            )
            assert_no_5xx(response, "history")
            if response.status_code != 200:
                break
            page = response.json()
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items
        exists = await self.scalars("SELECT to_regclass('work_item_history') IS NOT NULL")
        if not exists or not exists[0]:
            return []
        async with self.factory.database.sessions() as session:
            rows = await session.execute(
                text("SELECT * FROM work_item_history WHERE work_item_id = :id ORDER BY at"), {"id": UUID(item_id)}
            )
            return [dict(row._mapping) for row in rows]


async def _campaign(client: Client, ops: FieldUser, starts: datetime, ends: datetime, title: str) -> str:
    body = {
        "type": "recharge_push",
        "title": title,
        "instructions": "Offer the 10% bonus on recharges over 500.",
        "goal": {"kind": "recharge_amount", "target": 500},
        "form": {
            "version": 1,
            "fields": [
                {"key": "decision_maker_present", "label": "Owner present?", "type": "boolean", "required": True},
                {"key": "competitor", "label": "Competitor", "type": "choice", "options": ["none", "a", "b"]},
                {"key": "monthly_volume", "label": "Monthly volume", "type": "number"},
            ],
        },
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "time_zone": "Asia/Shanghai",
    }
    response = await client.post("/v1/campaigns", json=body, headers=ops.headers)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["id"]
    return campaign_id


# -- the model of one work item -----------------------------------------------------------------------------------

UNKNOWN = object()


@dataclass
class ItemModel:
    """What the server must hold for one work item, as far as the writes the model saw determine it."""

    id: str
    poi_id: UUID
    campaign: str
    assignee: UUID
    former: set[UUID] = field(default_factory=set)
    expired: bool = False
    notes: Any = ""  # the exact current notes when determined, else UNKNOWN
    notes_writes: list[tuple[int, str]] = field(default_factory=list)  # (seq, writer)
    answers: dict[str, set[str]] = field(default_factory=dict)  # key -> possible current values (JSON)
    outcome: dict[str, set[str]] = field(default_factory=dict)
    ambiguous: bool = False  # touched by concurrent writers: no exact notes oracle from then on

    def conflicting_notes_since(self, base: int, writer: str) -> bool:
        return any(seq > base and who != writer for seq, who in self.notes_writes)

    def record_write(self, writer: str, seq: int, args: dict[str, Any], *, conflicting: bool, late: bool) -> None:
        """An applied write (its result said so), in the server's order of application."""
        if "notes" in args:
            if late or conflicting or self.ambiguous:
                self.notes = UNKNOWN
            else:
                self.notes = args["notes"]
            self.notes_writes.append((seq, writer))
        for name, oracle in (("answers", self.answers), ("outcome", self.outcome)):
            for key, value in (args.get(name) or {}).items():
                if value is None:
                    continue
                encoded = json.dumps(value)
                if late or self.ambiguous:
                    oracle.setdefault(key, set()).add(encoded)
                else:
                    oracle[key] = {encoded}


# -- the ledger: every value a phone typed -------------------------------------------------------------------------


@dataclass
class Typed:
    phone: str
    item_id: str
    field: str  # notes | answers | outcome | status
    key: str | None
    value: Any
    # The mutation's result: applied, rejected, failed; "superseded": replaced on the phone before it was sent
    # (WatermelonDB pushes a row's latest columns); None: not known (WatermelonDB hears of no per-row result).
    status: str | None = None
    code: str | None = None


def _history_has(history: Iterable[dict[str, Any]], typed: Typed) -> bool:
    for entry in history:
        name = str(entry.get("field"))
        value = entry.get("value")
        if isinstance(value, str) and typed.field != "notes":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if typed.field == "notes" and name == "notes" and isinstance(value, str) and typed.value in value:
            return True
        if typed.key is None:
            if name == typed.field and value == typed.value:
                return True
            continue
        if name == f"{typed.field}.{typed.key}" and value == typed.value:
            return True
        if name == typed.field and isinstance(value, dict) and typed.key in value and value[typed.key] == typed.value:
            return True
    return False


async def _pushes_of(world: World, item_id: str) -> list[tuple[Any, ...]]:
    async with world.factory.database.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT client_id, mutation_id, status, code, args FROM sync_mutations "
                "WHERE tenant_id = :t AND args->>'id' = :id ORDER BY created_at"
            ),
            {"t": world.tenant, "id": item_id},
        )
        return [tuple(row) for row in rows]


def _late_edits_have(item: dict[str, Any], typed: Typed) -> bool:
    late = item.get("late_edits") or []
    blob = json.dumps(late)
    return json.dumps(typed.value) in blob or (isinstance(typed.value, str) and typed.value in blob)


async def check_typed_values(world: World, ledger: list[Typed]) -> None:
    """Every value a phone typed is the current value, inside it (merged notes), or in the history."""
    problems = []
    histories: dict[str, list[dict[str, Any]]] = {}
    items: dict[str, dict[str, Any]] = {}
    for typed in ledger:
        if typed.status in ("rejected", "superseded"):
            continue  # refused with a reason the phone was told; or replaced on the phone before it was sent
        if typed.item_id not in items:
            items[typed.item_id] = await world.server_item(typed.item_id)
        item = items[typed.item_id]
        if typed.field == "notes":
            if typed.value in item["notes"]:
                continue
        elif typed.key is None:
            if item[typed.field] == typed.value:
                continue
        elif item[typed.field].get(typed.key) == typed.value:
            continue
        if typed.item_id not in histories:
            histories[typed.item_id] = await world.history(typed.item_id)
        if _history_has(histories[typed.item_id], typed) or _late_edits_have(item, typed):
            continue
        problems.append(
            f"{typed.phone} typed {typed.field}{'.' + typed.key if typed.key else ''}={typed.value!r} on "
            f"{typed.item_id} ({typed.status}/{typed.code}): not current ({item[typed.field]!r}) and not in "
            f"its history ({len(histories[typed.item_id])} entries); the item is {item['status']}, assigned to "
            f"{world.bd_of(UUID(item['assignee_id'])).index if item['assignee_id'] else None}; "
            f"pushes of it: {await _pushes_of(world, typed.item_id)}"
        )
    assert not problems, "values typed on phones were lost:\n" + "\n".join(problems)


async def check_items_against_model(world: World, tokens: dict[str, str]) -> None:
    """What the model determines exactly: notes (when no conflict), answers/outcome keys, expiry for good;
    and no phone's text appears twice in notes (an edit applied twice)."""
    problems = []
    for item_id, model in world.items.items():
        item = await world.server_item(item_id)
        if model.expired and item["status"] != "expired":
            problems.append(f"{item_id}: expired, yet {item['status']!r} now (an expired item never reopens)")
        if model.notes is not UNKNOWN and item["notes"] != model.notes:
            problems.append(f"{item_id}: notes {item['notes']!r}, expected {model.notes!r}")
        for name, oracle in (("answers", model.answers), ("outcome", model.outcome)):
            for key, allowed in oracle.items():
                got = json.dumps(item[name].get(key))
                if got not in allowed:
                    problems.append(f"{item_id}: {name}.{key} = {got}, expected one of {sorted(allowed)}")
        for token, phone in tokens.items():
            if "late_notes_doubled" not in TOLERATE and item["notes"].count(token) > 1:
                problems.append(f"{item_id}: {phone}'s text {token!r} is in the notes twice: {item['notes']!r}")
    assert not problems, "the server diverged from the model:\n" + "\n".join(problems)


async def check_applied_once(world: World, visits: dict[str, str], merchants: set[str]) -> None:
    """Each check-in (by visit id) and each new merchant (by id) exists exactly once, and nothing else does."""
    stored_visits = await world.scalars("SELECT id::text FROM visits WHERE tenant_id = :t", t=world.tenant)
    assert sorted(stored_visits) == sorted(set(stored_visits)), "a visit stored twice"
    missing = set(visits) - set(stored_visits)
    assert not missing, f"check-ins the server answered applied but does not hold: {sorted(missing)[:5]}"
    extra = set(stored_visits) - set(visits)
    assert not extra, f"visits no phone queued: {sorted(extra)[:5]}"
    stored_pois = set(await world.scalars("SELECT id::text FROM pois WHERE tenant_id = :t", t=world.tenant))
    assert merchants <= stored_pois, f"new merchants lost: {sorted(merchants - stored_pois)[:5]}"
    link_counts = await world.scalars(
        "SELECT count(*) FROM work_item_visits WHERE tenant_id = :t "
        "GROUP BY work_item_id, visit_id HAVING count(*) > 1",
        t=world.tenant,
    )
    assert not link_counts, "a visit linked twice to a work item"


def new_token(phone: str) -> str:
    return f"[{phone}:{uuid.uuid4().hex[:8]}]"
