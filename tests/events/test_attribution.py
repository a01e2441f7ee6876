"""Attribution: credits and non-credits with their reasons, goals measured from events, late facts re-attributed
by the queue after the commit, and the same answer whatever order the facts arrive in."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.events import service as events_service
from backend.visits.models import Visit
from geo.postgis import point_ewkt
from mobile_contract.auth import Role
from tests.events.helpers import SHOP, Client, Clock, Integration, drain_events, event_body, held_clock, integration
from tests.factories import Factory, FieldUser, fix
from tests.tasks.helpers import assign, create_campaign

METRE_LAT = 1 / 111_195.0


class World:
    def __init__(self, factory: Factory, client: Client, clock: Clock) -> None:
        self.factory, self.client, self.clock = factory, client, clock

    async def build(self, goal: dict[str, Any], *, days: int = 120) -> World:
        self.tenant = await self.factory.tenant()
        self.ops = await self.factory.user(self.tenant, Role.OPS)
        self.bd = await self.factory.user(self.tenant, name="Bo BD")
        self.poi = await self.factory.poi(self.tenant, *SHOP, name="Noodle Bar")
        now = datetime.now(UTC)
        self.campaign = await create_campaign(
            self.client,
            self.ops,
            type="new_signing",
            goal=goal,
            starts_at=(now - timedelta(days=1)).isoformat(),
            ends_at=(now + timedelta(days=days)).isoformat(),
        )
        [self.work_item] = await assign(self.client, self.ops, self.campaign, [(self.poi, self.bd.id)])
        self.sender: Integration = await integration(self.factory, self.client, self.clock, self.ops)
        return self

    async def check_in(self, user: FieldUser | None = None, poi: UUID | None = None, *, away_m: float = 0) -> Any:
        body = {
            "id": str(uuid.uuid4()),
            "poi_id": str(poi or self.poi),
            "fix": fix(SHOP[0] + away_m * METRE_LAT, SHOP[1], accuracy_m=8),
        }
        answer = await self.client.post("/v1/visits", json=body, headers=(user or self.bd).headers)
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def event(
        self, kind: str = "signing", *, poi: UUID | None = None, at: datetime | None = None, **kw: Any
    ) -> Any:
        answer = await self.sender.send(event_body(poi or self.poi, occurred_at=at or self.clock(), kind=kind, **kw))
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def attribution(self, event_id: str) -> list[dict[str, Any]]:
        answer = await self.client.get(f"/v1/events/{event_id}/attribution", headers=self.ops.headers)
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()["attributions"]
        return rows


async def test_a_signing_after_a_visit_is_credited_and_meets_the_sign_goal(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        await world.check_in()
        clock.move(days=10)
        signing = await world.event("signing")
        recharge = await world.event("recharge")
        [row] = await world.attribution(signing["id"])
        assert row["campaign_id"] == world.campaign
        assert row["work_item_id"] == world.work_item
        assert row["assignee_id"] == str(world.bd.id)
        assert (row["credited"], row["reason"]) == (True, "visited")
        assert (row["counts_toward_goal"], row["goal_reason"]) == (True, "counts")
        assert row["window_days"] == 30
        assert "within 30 days" in row["explanation"]
        [other] = await world.attribution(recharge["id"])
        assert (other["credited"], other["reason"], other["counts_toward_goal"], other["goal_reason"]) == (
            True,
            "visited",
            False,
            "kind_mismatch",
        )
        listed = await client.get(f"/v1/events/campaigns/{world.campaign}/attributions", headers=world.ops.headers)
        assert [r["event_id"] for r in listed.json()["items"]] == [signing["id"], recharge["id"]]
        paged = await client.get(
            f"/v1/events/campaigns/{world.campaign}/attributions?limit=1", headers=world.ops.headers
        )
        cursor = paged.json()["next_cursor"]
        rest = await client.get(
            f"/v1/events/campaigns/{world.campaign}/attributions?limit=1&cursor={cursor}", headers=world.ops.headers
        )
        assert [r["event_id"] for r in rest.json()["items"]] == [recharge["id"]]
        assert rest.json()["next_cursor"] is None
        bad = await client.get(
            f"/v1/events/campaigns/{world.campaign}/attributions?cursor=%%%", headers=world.ops.headers
        )
        assert bad.status_code == 400
        for by, key in (("target", str(world.poi)), ("assignee", str(world.bd.id))):
            progress = await client.get(
                f"/v1/events/campaigns/{world.campaign}/progress?by={by}", headers=world.ops.headers
            )
            assert progress.status_code == 200, progress.text
            [line] = progress.json()["rows"]
            assert line["key"] == key
            assert (line["credited_events"], line["counting_events"], line["signings"], line["goal_met"]) == (
                2,
                1,
                1,
                True,
            )
        assert (
            await client.get(f"/v1/events/{signing['id']}/attribution", headers=world.bd.headers)
        ).status_code == 403


async def test_recharge_goal_sums_counting_amounts_per_currency(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "recharge_amount", "target": 500})
        await world.check_in()
        clock.move(days=1)
        await world.event("recharge", amount="300.00", currency="CNY")
        await world.event("recharge", amount="300", currency="USD")
        await world.event("signing")  # credited, but not toward a recharge goal
        progress = await client.get(f"/v1/events/campaigns/{world.campaign}/progress", headers=world.ops.headers)
        [line] = progress.json()["rows"]
        assert line["amounts"] == {"CNY": "300.0000", "USD": "300.0000"}
        assert (line["credited_events"], line["counting_events"], line["goal_met"]) == (3, 2, False)
        await world.event("recharge", amount="200.5", currency="CNY")
        progress = await client.get(f"/v1/events/campaigns/{world.campaign}/progress", headers=world.ops.headers)
        assert progress.json()["rows"][0]["goal_met"] is True


async def test_every_non_credit_has_its_reason(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        never = await factory.poi(world.tenant, *SHOP, name="Never visited")
        rejected = await factory.poi(world.tenant, *SHOP, name="Rejected visit")
        untargeted = await factory.poi(world.tenant, *SHOP, name="No campaign")
        await assign(client, world.ops, world.campaign, [(never, world.bd.id), (rejected, world.bd.id)])
        await world.check_in()
        await world.check_in(poi=rejected, away_m=800)  # kept as evidence, rejected
        before_campaign = await world.event(at=clock() - timedelta(days=3))
        clock.move(days=31)
        too_old = await world.event()
        no_follow_up = await world.event(poi=never)
        long_after_rejected = await world.event(poi=rejected)
        not_targeted = await world.event(poi=untargeted)
        expected = {
            before_campaign["id"]: "outside_campaign",
            too_old["id"]: "follow_up_too_old",
            no_follow_up["id"]: "no_follow_up",
            not_targeted["id"]: "not_targeted",
        }
        for event_id, reason in expected.items():
            [row] = await world.attribution(event_id)
            assert (row["credited"], row["reason"], row["goal_reason"]) == (False, reason, "not_credited"), row
        [row] = await world.attribution(long_after_rejected["id"])
        # 31 days after the rejected check-in, which never counts: as if never visited.
        assert row["reason"] == "no_follow_up"
        uncredited = await client.get(
            f"/v1/events/campaigns/{world.campaign}/attributions?credited=false", headers=world.ops.headers
        )
        assert {r["reason"] for r in uncredited.json()["items"]} >= {"outside_campaign", "follow_up_too_old"}


async def test_only_rejected_check_ins_within_the_window_earn_nothing(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        await world.check_in(away_m=800)
        clock.move(days=2)
        [row] = await world.attribution((await world.event())["id"])
        assert (row["credited"], row["reason"]) == (False, "only_rejected_visits")


async def test_a_late_visit_re_attributes_after_the_commit(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        clock.move(hours=1)
        event = await world.event()  # occurred an hour from the real now: the visit below comes before it
        [row] = await world.attribution(event["id"])
        assert row["reason"] == "no_follow_up"
        await world.check_in()
        [still] = await world.attribution(event["id"])
        assert still["reason"] == "no_follow_up"  # not yet: the re-attribution runs on the queue
        assert await drain_events(factory.database, world.tenant) == 1
        [row] = await world.attribution(event["id"])
        assert (row["credited"], row["reason"], row["counts_toward_goal"]) == (True, "visited", True)
        # A check-in at a merchant with no later events queues nothing.
        await world.check_in(poi=await factory.poi(world.tenant, *SHOP))
        assert await drain_events(factory.database, world.tenant) == 0


async def test_a_logged_follow_up_credits_and_a_reassignment_moves_credit(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "order_count", "target": 2})
        clock.move(hours=1)
        event = await world.event("order")
        patched = await client.patch(
            f"/v1/work-items/{world.work_item}", json={"notes": "Called the owner"}, headers=world.bd.headers
        )
        assert patched.status_code == 200, patched.text
        assert await drain_events(factory.database, world.tenant) == 1
        [row] = await world.attribution(event["id"])
        assert (row["credited"], row["reason"], row["counts_toward_goal"]) == (True, "followed_up", True)
        other = await factory.user(world.tenant, name="Cy BD")
        moved = await client.patch(
            f"/v1/work-items/{world.work_item}", json={"assignee_id": str(other.id)}, headers=world.ops.headers
        )
        assert moved.status_code == 200, moved.text
        assert await drain_events(factory.database, world.tenant) == 1
        [row] = await world.attribution(event["id"])
        assert (row["assignee_id"], row["credited"], row["reason"]) == (str(other.id), False, "no_follow_up")


async def test_targets_added_later_get_their_rows(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        later = await factory.poi(world.tenant, *SHOP)
        await world.check_in(poi=later)
        clock.move(days=3)
        event = await world.event(poi=later)
        [row] = await world.attribution(event["id"])
        assert row["reason"] == "not_targeted"
        assert row["campaign_id"] is None
        await assign(client, world.ops, world.campaign, [(later, world.bd.id)])
        assert await drain_events(factory.database, world.tenant) == 1
        [row] = await world.attribution(event["id"])
        assert (row["campaign_id"], row["reason"], row["credited"]) == (world.campaign, "visited", True)


async def test_the_tenants_window_decides(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        put = await client.put("/v1/events/settings", json={"attribution_window_days": 7}, headers=world.ops.headers)
        assert put.status_code == 200
        await world.check_in()
        clock.move(days=6, hours=23)
        inside = await world.event()
        clock.move(hours=2)
        outside = await world.event()
        assert [r["reason"] for r in await world.attribution(inside["id"])] == ["visited"]
        [row] = await world.attribution(outside["id"])
        assert (row["reason"], row["window_days"]) == ("follow_up_too_old", 7)
        # A wider window re-attributes the stored events (after the commit, by the queue).
        put = await client.put("/v1/events/settings", json={"attribution_window_days": 8}, headers=world.ops.headers)
        assert put.status_code == 200
        assert await drain_events(factory.database, world.tenant) == 1  # one merchant with events
        [row] = await world.attribution(outside["id"])
        assert (row["reason"], row["window_days"]) == ("visited", 8)
        same = await client.put("/v1/events/settings", json={"attribution_window_days": 8}, headers=world.ops.headers)
        assert same.status_code == 200
        assert await drain_events(factory.database, world.tenant) == 0  # unchanged: nothing to redo


async def test_signings_are_recorded_per_merchant_whatever_their_order(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        now = clock()
        await world.event(at=now - timedelta(days=1))
        await world.event(at=now - timedelta(days=5))  # a late, earlier signing
        await world.event("order", at=now)
        async with factory.database.sessions() as session:
            signed = await events_service.signed_at(session, world.tenant, [world.poi, uuid.uuid4()])
        assert list(signed) == [world.poi]
        first, last = signed[world.poi]
        assert abs((first - (now - timedelta(days=5))).total_seconds()) < 1
        assert abs((last - (now - timedelta(days=1))).total_seconds()) < 1


# -- arrival order does not matter -------------------------------------------------------------------------------

_FACTS = st.lists(
    st.one_of(
        st.tuples(st.just("visit"), st.integers(0, 45), st.sampled_from(["verified", "uncertain", "rejected"])),
        st.tuples(st.just("event"), st.integers(0, 45), st.sampled_from(["signing", "recharge", "order"])),
    ),
    min_size=1,
    max_size=8,
)


async def _insert_visit(factory: Factory, tenant: UUID, user: UUID, poi: UUID, at: datetime, status: str) -> None:
    """A visit row as check_in() writes it (and its hook), at a chosen time."""
    async with factory.database.sessions() as session:
        session.add(
            Visit(
                tenant_id=tenant,
                id=uuid.uuid4(),
                user_id=user,
                poi_id=poi,
                status="open",
                checked_in_at=at,
                check_in_request_hash="0" * 64,
                check_in_fix={},
                check_in_location=point_ewkt(*SHOP),
                check_in_accuracy_m=8.0,
                check_in_is_mock=False,
                check_in_trusted_at=at,
                check_in_received_at=at,
                check_in_status=status,
                check_in_confidence=1.0,
                check_in_distance_m=0.0,
                check_in_reasons=[],
            )
        )
        await session.flush()
        await events_service.follow_up_recorded(session, tenant, poi, at)
        await session.commit()


Fact = tuple[str, int, str]  # ("visit", days before the base, verdict) | ("event", days before the base, kind)


async def _play(factory: Factory, client: Client, facts: list[tuple[str, Fact]], drain_on: int) -> list[Any]:
    """Apply the facts in this order (events named by their place in the original list), running the queue after
    every other arrival, then to the end; answer every stored attribution."""
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "recharge_amount", "target": 100})
        clock.move(days=60)
        base = clock()
        for n, (name, (what, days_before, detail)) in enumerate(facts):
            at = base - timedelta(days=days_before)
            if what == "visit":
                await _insert_visit(factory, world.tenant, world.bd.id, world.poi, at, detail)
            else:
                await world.event(detail, at=at, external_id=name)
            if n % 2 == drain_on:
                await drain_events(factory.database, world.tenant)
        await drain_events(factory.database, world.tenant)
        return await _answers(factory, world.tenant)


async def _answers(factory: Factory, tenant: UUID) -> list[Any]:
    async with factory.database.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT e.external_id, a.credited, a.reason, a.counts_toward_goal, a.goal_reason,"
                " extract(epoch FROM e.occurred_at - a.followed_at) AS gap"
                " FROM event_attributions a JOIN business_events e"
                " ON e.tenant_id = a.tenant_id AND e.id = a.event_id"
                " WHERE a.tenant_id = :t AND e.tenant_id = :t ORDER BY e.external_id"
            ),
            {"t": tenant},
        )
        return [(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else round(float(r[5]))) for r in rows]


@given(facts=_FACTS, seed=st.integers(0, 2**32 - 1))
@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_attribution_does_not_depend_on_arrival_order(
    factory: Factory, client: Client, facts: list[Fact], seed: int
) -> None:
    """Two tenants get the same facts (visits, late or not, and events, late or not) in two orders, with the queue
    run at different moments: every event ends with the same credits, reasons and crediting visit."""
    named = [(f"fact-{n}", fact) for n, fact in enumerate(facts)]
    shuffled = named[:]
    random.Random(seed).shuffle(shuffled)
    assert await _play(factory, client, named, 1) == await _play(factory, client, shuffled, 0)


async def test_goal_met_is_measured_from_business_events_where_a_source_is_connected(
    factory: Factory, client: Client
) -> None:
    """With an order or contract system connected (an active integration key), a BD's "goal met" stands only on
    credited events that meet the goal: the outcome they type is not enough. Without one, the typed outcome is
    what there is."""
    answers = {"decision_maker_present": True, "competitor": "a"}
    with held_clock(client) as clock:
        world = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        await world.check_in()
        claim = {"status": "goal_met", "outcome": {"signed": True}, "answers": answers}
        typed = await client.patch(f"/v1/work-items/{world.work_item}", json=claim, headers=world.bd.headers)
        assert typed.status_code == 422, typed.text
        assert typed.json()["code"] == "goal_not_met"
        assert "business event" in typed.json()["detail"]
        await world.event("recharge")  # credited (the visit), but not the goal's kind
        again = await client.patch(f"/v1/work-items/{world.work_item}", json=claim, headers=world.bd.headers)
        assert again.status_code == 422, again.text
        clock.move(days=1)
        await world.event("signing")
        met = await client.patch(f"/v1/work-items/{world.work_item}", json=claim, headers=world.bd.headers)
        assert met.status_code == 200, met.text
        assert met.json()["work_item"]["status"] == "goal_met"
    # Another tenant's signing at its own merchant of the same name never meets this one's goal.
    with held_clock(client) as clock:
        other = await World(factory, client, clock).build({"kind": "sign", "target": 1})
        await other.check_in()  # the signing above was the other tenant's: none here
        refused = await client.patch(
            f"/v1/work-items/{other.work_item}",
            json={"status": "goal_met", "outcome": {"signed": True}, "answers": answers},
            headers=other.bd.headers,
        )
        assert refused.status_code == 422
