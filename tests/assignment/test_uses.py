"""The engine's other uses: campaign targets `assign: rule` (beside explicit and the lead holder), the group
a job is dispatched within, and imported merchants that name no holder."""

from __future__ import annotations

import asyncio
from collections import Counter

from mobile_contract.auth import Role
from tests.factories import Factory
from tests.intake.test_imports import run_imports, upload
from tests.jobs.helpers import SITE, create_job, technician
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


async def test_a_job_rule_names_the_group_dispatch_chooses_from(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    near = await technician(factory, client, ops, tenant, at=(SITE[0] + 0.01, SITE[1]), name="Near")
    far = await technician(factory, client, ops, tenant, at=(SITE[0] + 0.2, SITE[1]), name="Far")
    rules = [
        {
            "name": "fiber in huangpu",
            "kind": "job",
            "when": {"job_types": ["return_visit"], "skills": ["fiber"], "regions": ["huangpu"]},
            "group": {"user_ids": [str(far.id)]},
        },
        {"name": "leads", "group": {"user_ids": [str(near.id)]}},  # a lead rule: never applies to jobs
    ]
    saved = await client.put("/v1/assignment/rules", json={"rules": rules}, headers=ops.headers)
    assert saved.status_code == 200, saved.text
    job = await create_job(client, ops)
    dry = (await client.post(f"/v1/jobs/{job['id']}/dispatch", json={"dry_run": True}, headers=ops.headers)).json()
    assert dry["chosen"] == str(far.id)  # the nearer technician is outside the rule's group
    assert "fiber in huangpu" in dry["explanation"]
    assert [c["technician_id"] for c in dry["candidates"]] == [str(far.id)]
    assert (await client.get(f"/v1/assignment/decisions/{job['id']}", headers=ops.headers)).json() == []
    real = (await client.post(f"/v1/jobs/{job['id']}/dispatch", json={}, headers=ops.headers)).json()
    assert real["chosen"] == str(far.id)
    [decision] = (await client.get(f"/v1/assignment/decisions/{job['id']}", headers=ops.headers)).json()
    assert decision["kind"] == "job"
    assert decision["chosen"] == str(far.id)
    other = await create_job(client, ops, job_type="install")  # no job rule matches: everyone is considered
    unmatched = (
        await client.post(f"/v1/jobs/{other['id']}/dispatch", json={"dry_run": True}, headers=ops.headers)
    ).json()
    assert unmatched["chosen"] == str(near.id)
    assert "No job rule matches" in unmatched["explanation"]


async def test_imported_rows_naming_no_holder_are_routed_by_the_rules(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team = await factory.team(tenant)
    a, b = [await factory.user(tenant, team_id=team, login=False) for _ in range(2)]
    named = await factory.user(tenant, login=False)
    rules = {
        "rules": [{"name": "restaurants", "when": {"categories": ["restaurant"]}, "group": {"team_id": str(team)}}]
    }
    assert (await client.put("/v1/assignment/rules", json=rules, headers=ops.headers)).status_code == 200
    header = "name,category,lat,lon,holder"
    rows = [f"面馆{i},restaurant,{SITE[0] + 0.01 * i},{SITE[1]}," for i in range(4)]
    rows += [f"咖啡馆,cafe,{SITE[0] - 0.01},{SITE[1]},", f"小店,restaurant,{SITE[0] - 0.02},{SITE[1]},{named.username}"]
    created = await upload(client, ops.headers, "\n".join([header, *rows]) + "\n")
    assert created.status_code == 202, created.text
    await run_imports(factory.database, tenant)
    held = {
        user: await factory.count("SELECT count(*) FROM pois WHERE tenant_id = :t AND holder_id = :u", t=tenant, u=user)
        for user in (a.id, b.id, named.id)
    }
    assert held == {a.id: 2, b.id: 2, named.id: 1}  # the cafe matches no rule and has no fallback: it stays in the pool
    assert await factory.count("SELECT count(*) FROM pois WHERE tenant_id = :t AND holder_id IS NULL", t=tenant) == 1
    decided = await factory.count("SELECT count(*) FROM assignment_decisions WHERE tenant_id = :t", t=tenant)
    assert decided == 5


async def test_parallel_target_batches_over_two_groups_never_deadlock(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    east, west = await factory.team(tenant, "East"), await factory.team(tenant, "West")
    for team in (east, west, east, west):
        await factory.user(tenant, team_id=team, login=False)
    rules = [
        {"name": "cafes", "when": {"categories": ["cafe"]}, "group": {"team_id": str(east)}},
        {"name": "restaurants", "when": {"categories": ["restaurant"]}, "group": {"team_id": str(west)}},
    ]
    assert (await client.put("/v1/assignment/rules", json={"rules": rules}, headers=ops.headers)).status_code == 200
    batches = []
    for first, second in [("cafe", "restaurant"), ("restaurant", "cafe")] * 3:
        pois = [await factory.poi(tenant, category=first), await factory.poi(tenant, category=second)]
        batches.append(pois)
    campaigns = [await create_campaign(client, ops) for _ in batches]
    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/campaigns/{campaign}/targets",
                json={"assign": "rule", "targets": [{"poi_id": str(p)} for p in pois]},
                headers=ops.headers,
            )
            for campaign, pois in zip(campaigns, batches, strict=True)
        )
    )
    assert [r.status_code for r in responses] == [200] * len(batches)
    assert all(len(r.json()["created"]) == 2 for r in responses)
    turns = await factory.count("SELECT sum(turns) FROM assignment_cursors WHERE tenant_id = :t", t=tenant)
    assert turns == 2 * len(batches)


async def test_a_dry_run_on_jobs_uses_job_rules_only(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant, name="Tech")
    bd = await factory.user(tenant, login=False)
    job = await create_job(client, ops)
    proposed = {
        "rules": [
            {"name": "leads", "group": {"user_ids": [str(bd.id)]}},
            {"name": "fiber", "kind": "job", "when": {"skills": ["fiber"]}, "group": {"user_ids": [str(tech.id)]}},
        ],
        "fallback": {"group": {"user_ids": [str(bd.id)]}},
    }
    response = await client.post(
        "/v1/assignment/rules/dry-run",
        json={"rules": proposed, "kind": "job", "record_ids": [job["id"]]},
        headers=ops.headers,
    )
    assert response.status_code == 200, response.text
    [outcome] = response.json()["outcomes"]
    assert (outcome["rule"], outcome["rule_index"], outcome["chosen"]) == ("fiber", 1, str(tech.id))
    other = await client.post(
        "/v1/assignment/rules/dry-run",
        json={
            "rules": {"rules": proposed["rules"][:1], "fallback": proposed["fallback"]},
            "kind": "job",
            "record_ids": [job["id"]],
        },
        headers=ops.headers,
    )
    assert other.json()["outcomes"][0]["rule"] is None  # the lead fallback never takes a job
