"""Claims online and offline: exactly one of concurrent claims wins, the others are told the lead is taken; caps,
cooldown, release with a reason, assignment, extension, hand-over; the history of every transition."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from backend.leads.release import release_due
from mobile_contract.auth import Role
from tests.factories import Factory
from tests.leads.helpers import SHOP, Client, claim, claim_mutation, now, pinned, push


async def _adopt(client: Client, admin_headers: dict[str, str], **rules: object) -> None:
    response = await client.put("/v1/leads/policy", json=rules, headers=admin_headers)
    assert response.status_code == 200, response.text


async def test_a_claim_takes_a_pool_lead_and_its_history_says_who_when_why(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, name="Wang")
    poi = await factory.poi(tenant, *SHOP)
    t0 = now()
    with pinned(t0):
        response = await claim(client, bd, poi)
    assert response.status_code == 200, response.text
    lead = response.json()
    assert lead["state"] == "private"
    assert lead["how"] == "claimed"
    assert lead["holder"] == {"user_id": str(bd.id), "display_name": "Wang"}
    # Defaults: 15 days without a visit come first (45 days of protection, 30 without a signing).
    assert lead["release_cause"] == "no_visit"
    assert lead["release_at"].startswith((t0 + timedelta(days=15)).date().isoformat())
    assert lead["warning"] is False
    with pinned(t0):
        again = await claim(client, bd, poi)  # a retried claim answers the lead as it is
    assert again.status_code == 200
    assert again.json()["since"] == lead["since"]
    history = (await client.get(f"/v1/leads/{poi}/history", headers=bd.headers)).json()["items"]
    assert [(h["action"], h["actor_id"], h["to_user_id"]) for h in history] == [("claim", str(bd.id), str(bd.id))]


async def test_concurrent_online_and_offline_claims_have_exactly_one_winner(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bds = [await factory.user(tenant) for _ in range(6)]
    poi = await factory.poi(tenant, *SHOP)
    online = [claim(client, bd, poi) for bd in bds[:3]]
    offline = [push(client, bd, [claim_mutation(1, poi)]) for bd in bds[3:]]
    answers = await asyncio.gather(*online, *offline)
    wins, taken = 0, 0
    for response in answers[:3]:
        if response.status_code == 200:
            wins += 1
        else:
            assert (response.status_code, response.json()["code"]) == (409, "lead_taken"), response.text
            taken += 1
    for response in answers[3:]:
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        if result["status"] == "applied":
            wins += 1
        else:
            assert (result["status"], result["code"]) == ("rejected", "lead_taken"), result
            taken += 1
    assert (wins, taken) == (1, 5)
    holders = await factory.count(
        "SELECT count(*) FROM pois WHERE tenant_id = :t AND id = :p AND holder_id IS NOT NULL", t=tenant, p=poi
    )
    assert holders == 1
    claims = await factory.count("SELECT count(*) FROM lead_events WHERE tenant_id = :t AND action = 'claim'", t=tenant)
    assert claims == 1


async def test_a_claim_over_a_cap_answers_claim_limit_reached_with_the_numbers(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    await _adopt(client, admin.headers, max_held={"bd": 2}, max_claims_per_day={"bd": 3})
    bd = await factory.user(tenant)
    pois = [await factory.poi(tenant, *SHOP) for _ in range(5)]
    t0 = now()
    with pinned(t0):
        assert (await claim(client, bd, pois[0])).status_code == 200
        assert (await claim(client, bd, pois[1])).status_code == 200
        over = await claim(client, bd, pois[2])
        assert over.status_code == 409
        assert over.json()["code"] == "claim_limit_reached"
        assert (over.json()["limit"], over.json()["count"], over.json()["cap"]) == ("held", 2, 2)
        # A released lead frees a place; a third claim today is still within three a day.
        released = await client.post(f"/v1/leads/{pois[0]}/release", json={"reason": "closed"}, headers=bd.headers)
        assert released.status_code == 200
        assert released.json()["state"] == "pool"
        assert (await claim(client, bd, pois[2])).status_code == 200
        await client.post(f"/v1/leads/{pois[1]}/release", json={"reason": "moved"}, headers=bd.headers)
        per_day = await claim(client, bd, pois[3])
    assert per_day.status_code == 409
    assert (per_day.json()["limit"], per_day.json()["count"], per_day.json()["cap"]) == ("per_day", 3, 3)
    with pinned(t0 + timedelta(days=1, minutes=1)):  # 24 hours later the day's claims are behind
        assert (await claim(client, bd, pois[3])).status_code == 200
    # Offline, the same refusal is a rejected result with the same code.
    with pinned(t0 + timedelta(days=1, minutes=2)):
        response = await push(client, bd, [claim_mutation(1, pois[4])])
    [result] = response.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", "claim_limit_reached")


async def test_won_leads_do_not_count_toward_the_cap(factory: Factory, client: Client) -> None:
    from backend.leads.pool import on_signing

    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    await _adopt(client, admin.headers, max_held={"bd": 1}, max_claims_per_day={"bd": 10})
    bd = await factory.user(tenant)
    first, second = await factory.poi(tenant, *SHOP), await factory.poi(tenant, *SHOP)
    assert (await claim(client, bd, first)).status_code == 200
    async with factory.database.sessions() as session:
        assert await on_signing(session, tenant, first, now()) is True
        assert await on_signing(session, tenant, first, now()) is False  # idempotent
        await session.commit()
    assert (await client.get(f"/v1/leads/{first}", headers=bd.headers)).json()["state"] == "won"
    assert (await claim(client, bd, second)).status_code == 200
    other = await factory.user(tenant)
    taken = await claim(client, other, first)
    assert taken.json()["code"] == "lead_taken"
    assert taken.json()["state"] == "won"
    refused = await client.post(f"/v1/leads/{first}/release", json={"reason": "x"}, headers=bd.headers)
    assert refused.json()["code"] == "lead_won"


async def test_a_former_holder_waits_out_the_cooldown(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    t0 = now()
    with pinned(t0):
        await claim(client, bd, poi)
        await client.post(f"/v1/leads/{poi}/release", json={"reason": "not interested"}, headers=bd.headers)
    with pinned(t0 + timedelta(days=6)):
        refused = await claim(client, bd, poi)
    assert (refused.status_code, refused.json()["code"]) == (409, "lead_cooldown"), refused.text
    with pinned(t0 + timedelta(days=7, seconds=1)):
        assert (await claim(client, bd, poi)).status_code == 200


async def test_extensions_by_the_bd_are_limited_and_a_supervisor_s_are_not(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    bd = await factory.user(tenant, team_id=team)
    poi = await factory.poi(tenant, *SHOP)
    t0 = now()
    with pinned(t0):
        first = (await claim(client, bd, poi)).json()
        too_long = await client.post(f"/v1/leads/{poi}/extend", json={"days": 8}, headers=bd.headers)
        assert too_long.json()["code"] == "extension_limit_reached"
        for _ in range(2):
            ok = await client.post(f"/v1/leads/{poi}/extend", json={"days": 7}, headers=bd.headers)
            assert ok.status_code == 200, ok.text
        third = await client.post(f"/v1/leads/{poi}/extend", json={"days": 1}, headers=bd.headers)
        assert third.json()["code"] == "extension_limit_reached"
        by_sup = await client.post(
            f"/v1/leads/{poi}/extend", json={"days": 30, "reason": "big deal"}, headers=sup.headers
        )
    assert by_sup.status_code == 200, by_sup.text
    lead = by_sup.json()
    assert (lead["extensions_used"], lead["extended_days"]) == (2, 44)
    assert lead["release_at"] > first["release_at"]
    stranger = await factory.user(tenant)
    assert (await client.post(f"/v1/leads/{poi}/extend", json={"days": 1}, headers=stranger.headers)).json()[
        "code"
    ] == "lead_not_held"


async def test_assignment_and_the_hand_over_of_a_leaver_s_leads(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    leaver = await factory.user(tenant, team_id=team)
    heir = await factory.user(tenant, team_id=team)
    pois = [await factory.poi(tenant, *SHOP) for _ in range(3)]
    for poi in pois:
        response = await client.post(f"/v1/leads/{poi}/assign", json={"user_id": str(leaver.id)}, headers=sup.headers)
        assert (response.status_code, response.json()["how"]) == (200, "assigned"), response.text
    assert (
        await client.post(f"/v1/leads/{pois[0]}/assign", json={"user_id": str(heir.id)}, headers=leaver.headers)
    ).status_code == 403
    moved = await client.post(
        "/v1/leads/handover",
        json={"from_user_id": str(leaver.id), "to_user_id": str(heir.id), "reason": "left the company"},
        headers=sup.headers,
    )
    assert moved.json() == {"released": 0, "reassigned": 3}, moved.text
    back = await client.post(
        "/v1/leads/handover", json={"from_user_id": str(heir.id), "reason": "team closed"}, headers=sup.headers
    )
    assert back.json() == {"released": 3, "reassigned": 0}
    history = (await client.get(f"/v1/leads/{pois[0]}/history", headers=sup.headers)).json()["items"]
    assert [h["action"] for h in history] == ["assign", "assign", "release"]
    assert history[1]["reason"] == "left the company"
    assert history[2]["from_user_id"] == str(heir.id)


async def test_another_tenant_s_ids_and_bad_input(factory: Factory, client: Client) -> None:
    tenant, other_tenant = await factory.tenant(), await factory.tenant()
    bd = await factory.user(tenant)
    foreign = await factory.poi(other_tenant, *SHOP)
    for path in ("claim", "extend", "release", "history", ""):
        url = f"/v1/leads/{foreign}/{path}".rstrip("/")
        method = client.get if path in ("history", "") else client.post
        body = {"days": 1} if path == "extend" else {"reason": "x"} if path == "release" else None
        response = await (
            method(url, headers=bd.headers) if body is None else client.post(url, json=body, headers=bd.headers)
        )
        assert response.status_code == 404, (path, response.text)
    unknown = await push(client, bd, [claim_mutation(1, uuid.uuid4())])
    assert unknown.json()["results"][0]["code"] == "not_found"
    poi = await factory.poi(tenant, *SHOP)
    for body in ({}, {"reason": ""}, {"reason": "x", "extra": 1}):
        assert (await client.post(f"/v1/leads/{poi}/release", json=body, headers=bd.headers)).status_code == 422
    for body in ({"days": 0}, {"days": 366}, {"days": "x"}):
        assert (await client.post(f"/v1/leads/{poi}/extend", json=body, headers=bd.headers)).status_code == 422
    bad_policy = await client.put("/v1/leads/policy", json={"protection_days": -1}, headers=bd.headers)
    assert bad_policy.status_code == 422
    assert (await client.put("/v1/leads/policy", json={}, headers=bd.headers)).status_code == 403
    tech = await factory.user(tenant, Role.TECHNICIAN)
    assert (await claim(client, tech, poi)).status_code == 403


async def test_the_release_sweep_is_idempotent_and_the_policy_is_versioned(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    bd = await factory.user(tenant)
    pois = [await factory.poi(tenant, *SHOP) for _ in range(3)]
    t0 = now()
    with pinned(t0):
        for poi in pois:
            await claim(client, bd, poi)
    await _adopt(client, admin.headers, no_visit_days=20, protection_days=20, no_signing_days=20)
    await _adopt(client, admin.headers, no_visit_days=40, protection_days=40, no_signing_days=40)
    policy = (await client.get("/v1/leads/policy", headers=bd.headers)).json()
    assert policy["version"] == 2
    assert policy["policy"]["protection_days"] == 40
    assert (await release_due(factory.database, t0 + timedelta(days=39), only_tenant=tenant)).released == 0
    first = await release_due(factory.database, t0 + timedelta(days=40, seconds=1), only_tenant=tenant, batch=2)
    assert (first.released, first.holders, first.batches) == (3, 1, 2)
    assert (await release_due(factory.database, t0 + timedelta(days=41), only_tenant=tenant)).released == 0
    history = (await client.get(f"/v1/leads/{pois[0]}/history", headers=bd.headers)).json()["items"]
    assert [(h["action"], h["actor_id"], h["reason"]) for h in history][-1] == ("release", None, "no_visit")


async def test_managers_cannot_reach_another_tenant_s_people_or_merchants(factory: Factory, client: Client) -> None:
    tenant, other_tenant = await factory.tenant(), await factory.tenant()
    team = await factory.team(tenant)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    mine = await factory.user(tenant, team_id=team)
    foreigner = await factory.user(other_tenant)
    poi = await factory.poi(tenant, *SHOP)
    foreign_poi = await factory.poi(other_tenant, *SHOP)
    assign_foreigner = await client.post(
        f"/v1/leads/{poi}/assign", json={"user_id": str(foreigner.id)}, headers=sup.headers
    )
    assert assign_foreigner.status_code == 404
    assign_foreign_poi = await client.post(
        f"/v1/leads/{foreign_poi}/assign", json={"user_id": str(mine.id)}, headers=sup.headers
    )
    assert assign_foreign_poi.status_code == 404
    for body in (
        {"from_user_id": str(foreigner.id), "reason": "x"},
        {"from_user_id": str(mine.id), "to_user_id": str(foreigner.id), "reason": "x"},
    ):
        assert (await client.post("/v1/leads/handover", json=body, headers=sup.headers)).status_code == 404
    assert (await client.post("/v1/leads/handover", json={"reason": "x"}, headers=sup.headers)).status_code == 422
    bd_handover = await client.post(
        "/v1/leads/handover", json={"from_user_id": str(mine.id), "reason": "x"}, headers=mine.headers
    )
    assert bd_handover.status_code == 403
