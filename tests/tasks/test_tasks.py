"""Campaigns, targeting, work items: the rules, the scopes, the merchant view, and bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient

from backend.tasks.service import expire_due
from mobile_contract.auth import Role
from tests.factories import Factory, fix
from tests.tasks.helpers import assign, campaign_body, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)


async def test_campaign_targets_and_the_bd_follows_them(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    campaign_id = await create_campaign(client, ops)
    [item_id] = await assign(client, ops, campaign_id, [(poi, bd.id)])
    item = (await client.get(f"/v1/work-items/{item_id}", headers=bd.headers)).json()
    assert item["status"] == "assigned"
    assert item["campaign"]["goal"] == {"kind": "recharge_amount", "target": 500.0}
    assert item["form_version"] == 2
    # A check-in the server rejects (far from the shop) is kept, but starts nothing.
    far = await client.post(
        "/v1/visits",
        json={"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(SHOP[0] + 0.01, SHOP[1], ago_s=600)},
        headers=bd.headers,
    )
    assert far.json()["check_in"]["verdict"]["status"] == "rejected"
    assert (await client.get(f"/v1/work-items/{item_id}", headers=bd.headers)).json()["status"] == "assigned"
    # The first check-in at the merchant links the visit and starts the work.
    visit = await client.post(
        "/v1/visits", json={"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(*SHOP)}, headers=bd.headers
    )
    item = (await client.get(f"/v1/work-items/{item_id}", headers=bd.headers)).json()
    assert item["status"] == "in_progress"
    assert item["visit_ids"] == [visit.json()["id"]]
    # Closing as goal met needs the outcome to meet the goal and the required answers.
    early = await client.patch(f"/v1/work-items/{item_id}", json={"status": "goal_met"}, headers=bd.headers)
    assert early.status_code == 422
    low = await client.patch(
        f"/v1/work-items/{item_id}",
        json={"status": "goal_met", "outcome": {"recharge_amount": 200}, "answers": {"decision_maker_present": True}},
        headers=bd.headers,
    )
    assert low.status_code == 422
    assert low.json()["code"] == "goal_not_met"
    done = await client.patch(
        f"/v1/work-items/{item_id}",
        json={
            "status": "goal_met",
            "outcome": {"recharge_amount": 800},
            "answers": {"decision_maker_present": True, "competitor": "a"},
            "notes": "Owner recharged 800",
        },
        headers=bd.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["work_item"]["status"] == "goal_met"
    assert done.json()["conflicts"] == []


async def test_answers_must_fit_the_form(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    [item_id] = await assign(client, ops, await create_campaign(client, ops), [(await factory.poi(tenant), bd.id)])
    for answers in (
        {"unknown_question": 1},
        {"competitor": "c"},
        {"monthly_volume": "lots"},
        {"decision_maker_present": "yes"},
        {"monthly_volume": True},
    ):
        response = await client.patch(f"/v1/work-items/{item_id}", json={"answers": answers}, headers=bd.headers)
        assert response.status_code == 422, answers
        assert response.json()["errors"], answers
    closing = await client.patch(f"/v1/work-items/{item_id}", json={"status": "visited_not_met"}, headers=bd.headers)
    assert closing.status_code == 422  # the required question is unanswered
    assert closing.json()["errors"][0]["field"] == "answers.decision_maker_present"


async def test_assign_to_the_lead_holder_and_skips(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    held = await factory.poi(tenant, holder_id=bd.id)
    unheld = await factory.poi(tenant)
    foreign = await factory.poi(await factory.tenant())
    campaign_id = await create_campaign(client, ops)
    response = await client.post(
        f"/v1/campaigns/{campaign_id}/targets",
        json={"assign": "poi_holder", "targets": [{"poi_id": str(p)} for p in (held, unheld, foreign, held)]},
        headers=ops.headers,
    )
    body = response.json()
    assert len(body["created"]) == 1
    assert [s["reason"] for s in body["skipped"]] == ["no_holder", "not_found", "already_targeted"]
    stranger = await factory.user(await factory.tenant(), login=False)
    explicit = await client.post(
        f"/v1/campaigns/{campaign_id}/targets",
        json={"targets": [{"poi_id": str(unheld), "assignee_id": str(stranger.id)}]},
        headers=ops.headers,
    )
    assert explicit.json()["skipped"][0]["reason"] == "assignee_not_found"


async def test_only_operations_manage_campaigns_and_other_tenants_see_nothing(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    assert (await client.post("/v1/campaigns", json=campaign_body(), headers=bd.headers)).status_code == 403
    campaign_id = await create_campaign(client, ops)
    [item_id] = await assign(client, ops, campaign_id, [(await factory.poi(tenant), bd.id)])
    other = await factory.tenant()
    other_ops = await factory.user(other, Role.OPS)
    other_bd = await factory.user(other)
    assert (await client.get(f"/v1/work-items/{item_id}", headers=other_ops.headers)).status_code == 404
    assert (
        await client.patch(f"/v1/work-items/{item_id}", json={"notes": "x"}, headers=other_bd.headers)
    ).status_code == 404
    assert (
        await client.patch(
            f"/v1/work-items/{item_id}", json={"assignee_id": str(other_bd.id)}, headers=other_ops.headers
        )
    ).status_code == 404
    targets = await client.post(
        f"/v1/campaigns/{campaign_id}/targets",
        json={"targets": [{"poi_id": str(uuid.uuid4()), "assignee_id": str(other_bd.id)}]},
        headers=other_ops.headers,
    )
    assert targets.status_code == 404
    assert (await client.get(f"/v1/campaigns/{campaign_id}/progress", headers=other_ops.headers)).status_code == 404
    # Reassigning to a user of another tenant is refused and changes nothing.
    move = await client.patch(f"/v1/work-items/{item_id}", json={"assignee_id": str(other_bd.id)}, headers=ops.headers)
    assert move.status_code == 404
    assert (await client.get(f"/v1/work-items/{item_id}", headers=bd.headers)).json()["assignee_id"] == str(bd.id)


async def test_campaign_bad_input(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    now = datetime.now(UTC)
    bad = [
        campaign_body(ends_at=(now - timedelta(days=5)).isoformat()),
        campaign_body(time_zone="Mars/Olympus_Mons"),
        campaign_body(type="spam"),
        campaign_body(goal={"kind": "sign", "target": -1}),
        campaign_body(form={"fields": [{"key": "a", "label": "A", "type": "text"}] * 2}),
        campaign_body(form={"fields": [{"key": "a", "label": "A", "type": "choice"}]}),
        campaign_body(form={"fields": [{"key": "Bad Key", "label": "A", "type": "text"}]}),
        campaign_body(starts_at="2026-01-01T00:00:00"),
        campaign_body(extra=1),
    ]
    for body in bad:
        response = await client.post("/v1/campaigns", json=body, headers=ops.headers)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_failed"
    campaign_id = await create_campaign(client, ops)
    for targets in ({"targets": []}, {"targets": [{"poi_id": "x"}]}, {"targets": [{}]}, {"assign": "random"}):
        response = await client.post(f"/v1/campaigns/{campaign_id}/targets", json=targets, headers=ops.headers)
        assert response.status_code == 422, targets


async def test_progress_and_lists_follow_the_data_scope(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    north, south = await factory.team(tenant, "North"), await factory.team(tenant, "South")
    ops = await factory.user(tenant, Role.OPS)
    sup_north = await factory.user(tenant, Role.SUPERVISOR, team_id=north)
    bd_north = await factory.user(tenant, team_id=north, name="North BD")
    bd_south = await factory.user(tenant, team_id=south, name="South BD")
    campaign_id = await create_campaign(client, ops)
    pois = [await factory.poi(tenant, name=f"P{i}") for i in range(3)]
    await assign(client, ops, campaign_id, [(pois[0], bd_north.id), (pois[1], bd_north.id), (pois[2], bd_south.id)])
    by_assignee = (
        await client.get(f"/v1/campaigns/{campaign_id}/progress", params={"by": "assignee"}, headers=sup_north.headers)
    ).json()
    assert [(r["name"], r["total"], r["assigned"]) for r in by_assignee["rows"]] == [("North BD", 2, 2)]
    everyone = (
        await client.get(f"/v1/campaigns/{campaign_id}/progress", params={"by": "target"}, headers=ops.headers)
    ).json()
    assert [r["name"] for r in everyone["rows"]] == ["P0", "P1", "P2"]
    mine = (await client.get("/v1/work-items", headers=bd_south.headers)).json()["items"]
    assert [i["poi_id"] for i in mine] == [str(pois[2])]
    assert (
        await client.get(f"/v1/campaigns/{campaign_id}/progress", params={"by": "x"}, headers=ops.headers)
    ).status_code == 422


async def test_merchant_view_lists_open_work_items_of_everyone(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd1, bd2 = await factory.user(tenant), await factory.user(tenant)
    poi = await factory.poi(tenant)
    first = await create_campaign(client, ops, title="Churn follow-up", type="churn_follow_up")
    second = await create_campaign(client, ops, title="Signing")
    await assign(client, ops, first, [(poi, bd1.id)])
    await assign(client, ops, second, [(poi, bd2.id)])
    view = (await client.get(f"/v1/pois/{poi}", headers=bd1.headers)).json()
    assert {(w["campaign_title"], w["assignee_id"]) for w in view["open_work_items"]} == {
        ("Churn follow-up", str(bd1.id)),
        ("Signing", str(bd2.id)),
    }


async def test_expired_campaigns_close_their_open_work_items(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    now = datetime.now(UTC)
    campaign_id = await create_campaign(
        client, ops, starts_at=(now - timedelta(days=3)).isoformat(), ends_at=(now + timedelta(seconds=1)).isoformat()
    )
    [item_id] = await assign(client, ops, campaign_id, [(await factory.poi(tenant), bd.id)])
    async with factory.database.sessions() as session:
        assert await expire_due(session, now + timedelta(seconds=5)) >= 1
        await session.commit()
    item = (await client.get(f"/v1/work-items/{item_id}", headers=bd.headers)).json()
    assert item["status"] == "expired"
    reopen = await client.patch(f"/v1/work-items/{item_id}", json={"status": "in_progress"}, headers=bd.headers)
    assert reopen.json()["conflicts"] == [{"field": "status", "resolution": "server_kept"}]
    assert reopen.json()["work_item"]["status"] == "expired"
