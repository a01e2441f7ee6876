"""The engine's other uses: campaign targets `assign: rule` (beside explicit and the lead holder)."""

from __future__ import annotations

from collections import Counter

from mobile_contract.auth import Role
from tests.factories import Factory
from tests.leads.helpers import Client
from tests.tasks.helpers import create_campaign


async def test_campaign_targets_by_rule_take_turns_and_explain_themselves(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team = await factory.team(tenant)
    bds = [await factory.user(tenant, team_id=team, login=False) for _ in range(2)]
    cafe_bd = await factory.user(tenant, login=False)
    rules = [
        {"name": "cafes", "when": {"categories": ["cafe"]}, "group": {"user_ids": [str(cafe_bd.id)]}},
        {"name": "restaurants", "when": {"categories": ["restaurant"]}, "group": {"team_id": str(team)}},
    ]
    saved = await client.put("/v1/assignment/rules", json={"rules": rules}, headers=ops.headers)
    assert saved.status_code == 200, saved.text
    restaurants = [await factory.poi(tenant, category="restaurant") for _ in range(4)]
    cafe = await factory.poi(tenant, category="cafe")
    grocery = await factory.poi(tenant, category="grocery")
    foreign = await factory.poi(await factory.tenant())
    campaign_id = await create_campaign(client, ops)
    targets = [{"poi_id": str(p)} for p in [*restaurants, cafe, grocery, foreign]]
    response = await client.post(
        f"/v1/campaigns/{campaign_id}/targets", json={"assign": "rule", "targets": targets}, headers=ops.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["created"]) == 5
    assert sorted(s["reason"] for s in body["skipped"]) == ["no_rule_choice", "not_found"]
    assignees = Counter(
        str(u)
        for u in [
            await factory.count(
                "SELECT count(*) FROM work_items WHERE tenant_id = :t AND assignee_id = :u", t=tenant, u=user.id
            )
            for user in [*bds, cafe_bd]
        ]
    )
    assert assignees == Counter({"2": 2, "1": 1})
    decisions = (await client.get(f"/v1/assignment/decisions/{cafe}", headers=ops.headers)).json()
    assert decisions[0]["kind"] == "target"
    assert decisions[0]["rule"] == "cafes"
    assert decisions[0]["chosen"] == str(cafe_bd.id)
