"""Assignment rules: each strategy, the fallback, skipped people with their reasons, dry runs that save nothing,
versions, another tenant's ids, roles without the permission, and round-robin fairness (a property over the turn
order, and parallel requests through the ASGI client)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.assignment.rules import next_in_turn
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.leads.helpers import Client, now, pinned


async def _save(client: Client, ops: FieldUser, rules: list[dict[str, Any]], fallback: Any = None) -> Any:
    response = await client.put(
        "/v1/assignment/rules", json={"rules": rules, "fallback": fallback}, headers=ops.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _route(client: Client, ops: FieldUser, poi: UUID) -> dict[str, Any]:
    response = await client.post(f"/v1/intake/leads/{poi}/route", headers=ops.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _holder(factory: Factory, tenant: UUID, poi: UUID) -> str | None:
    async with factory.database.sessions() as session:
        return await session.scalar(
            text("SELECT holder_id::text FROM pois WHERE tenant_id = :t AND id = :p"), {"t": tenant, "p": poi}
        )


async def _set_user(factory: Factory, user: FieldUser, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    async with factory.database.sessions() as session:
        await session.execute(
            text(f"UPDATE users SET {sets} WHERE tenant_id = :t AND id = :u"),  # noqa: S608
            {"t": user.tenant_id, "u": user.id, **values},
        )
        await session.commit()


async def _team_of(factory: Factory, tenant: UUID, n: int) -> tuple[UUID, list[FieldUser]]:
    team = await factory.team(tenant, "East")
    bds = [await factory.user(tenant, Role.BD, team_id=team, login=False) for _ in range(n)]
    return team, sorted(bds, key=lambda u: u.id)


async def test_round_robin_takes_turns_in_a_team_and_stores_each_decision(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, bds = await _team_of(factory, tenant, 3)
    saved = await _save(
        client,
        ops,
        [{"name": "restaurants east", "when": {"categories": ["restaurant"]}, "group": {"team_id": str(team)}}],
    )
    assert saved["version"] == 1
    pois = [await factory.poi(tenant, category="restaurant") for _ in range(6)]
    chosen = [(await _route(client, ops, p))["chosen"] for p in pois]
    assert chosen == [str(b.id) for b in bds] * 2
    assert [await _holder(factory, tenant, p) for p in pois] == chosen
    decisions = (await client.get(f"/v1/assignment/decisions/{pois[0]}", headers=ops.headers)).json()
    assert len(decisions) == 1
    assert decisions[0]["rule"] == "restaurants east"
    assert decisions[0]["rule_version"] == 1
    assert "round_robin" in decisions[0]["explanation"]
    history = (await client.get(f"/v1/leads/{pois[0]}/history", headers=ops.headers)).json()
    assert history["items"][-1]["action"] == "assign"
    assert history["items"][-1]["reason"] == "rule: restaurants east"


async def test_least_loaded_picks_who_holds_fewest_leads(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    busy, free = await factory.user(tenant, login=False), await factory.user(tenant, login=False)
    for _ in range(2):
        await factory.poi(tenant, holder_id=busy.id)
    await factory.poi(tenant, holder_id=free.id)
    group = {"user_ids": [str(busy.id), str(free.id)]}
    await _save(client, ops, [{"name": "all", "group": group, "strategy": "least_loaded"}])
    first = await _route(client, ops, await factory.poi(tenant))
    assert first["chosen"] == str(free.id)
    assert "fewest open leads (1)" in first["explanation"]
    second = await _route(client, ops, await factory.poi(tenant))  # now 2 and 2: the lower id
    assert second["chosen"] == str(min(busy.id, free.id))


async def test_capacity_skips_people_at_their_cap_and_says_so(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    full, room = await factory.user(tenant, login=False), await factory.user(tenant, login=False)
    await factory.poi(tenant, holder_id=full.id)
    await factory.poi(tenant, holder_id=full.id)
    await factory.poi(tenant, holder_id=room.id)
    group = {"user_ids": [str(full.id), str(room.id)]}
    await _save(client, ops, [{"name": "capped", "group": group, "strategy": "capacity", "cap": 2}])
    first = await _route(client, ops, await factory.poi(tenant))
    assert first["chosen"] == str(room.id)
    assert first["skipped"] == [{"user_id": str(full.id), "reason": "at_cap"}]
    poi = await factory.poi(tenant)
    second = await _route(client, ops, poi)
    assert second["chosen"] is None
    assert {s["reason"] for s in second["skipped"]} == {"at_cap"}
    assert await _holder(factory, tenant, poi) is None


async def test_inactive_and_on_leave_people_are_skipped_with_their_reason(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, (a, b, c) = await _team_of(factory, tenant, 3)
    t0 = now()
    await _set_user(factory, a, is_active=False)
    # The leave is set by the tenant's admin (PATCH /v1/users/{id}), as in the app; an ops user may not.
    admin = await factory.user(tenant, Role.ADMIN)
    leave = {"on_leave_until": (t0 + timedelta(days=3)).isoformat()}
    assert (await client.patch(f"/v1/users/{b.id}", json=leave, headers=ops.headers)).status_code == 403
    patched = await client.patch(f"/v1/users/{b.id}", json=leave, headers=admin.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["on_leave_until"] is not None
    bad = await client.patch(f"/v1/users/{b.id}", json={"on_leave_until": "tomorrow"}, headers=admin.headers)
    assert bad.status_code == 422
    await _save(client, ops, [{"name": "team", "group": {"team_id": str(team)}}])
    with pinned(t0):
        outcome = await _route(client, ops, await factory.poi(tenant))
    assert outcome["chosen"] == str(c.id)
    assert sorted((s["user_id"], s["reason"]) for s in outcome["skipped"]) == sorted(
        [(str(a.id), "inactive"), (str(b.id), "on_leave")]
    )
    with pinned(t0 + timedelta(days=4)):  # the leave is over
        after = await _route(client, ops, await factory.poi(tenant))
    assert [s["reason"] for s in after["skipped"]] == ["inactive"]


async def test_nothing_matches_the_fallback_takes_it_and_no_fallback_leaves_it(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd, backup = await factory.user(tenant, login=False), await factory.user(tenant, login=False)
    rules = [{"name": "cafes", "when": {"categories": ["cafe"]}, "group": {"user_ids": [str(bd.id)]}}]
    await _save(client, ops, rules, fallback={"group": {"user_ids": [str(backup.id)]}})
    cafe, shop = await factory.poi(tenant, category="cafe"), await factory.poi(tenant, category="grocery")
    assert (await _route(client, ops, cafe))["chosen"] == str(bd.id)
    fallback = await _route(client, ops, shop)
    assert fallback["rule"] == "fallback"
    assert fallback["chosen"] == str(backup.id)
    await _save(client, ops, rules)
    lone = await _route(client, ops, await factory.poi(tenant, category="grocery"))
    assert lone["chosen"] is None
    assert lone["rule"] is None


async def test_a_team_with_nobody_free_keeps_the_lead_in_its_queue(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, (a,) = await _team_of(factory, tenant, 1)
    await _set_user(factory, a, is_active=False)
    await _save(client, ops, [{"name": "team", "group": {"team_id": str(team)}}])
    poi = await factory.poi(tenant)
    outcome = await _route(client, ops, poi)
    assert outcome["chosen"] is None
    assert outcome["team_id"] == str(team)
    assert "team's queue" in outcome["explanation"]
    assert await _holder(factory, tenant, poi) is None


async def test_rules_match_by_territory(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    inside_bd, other_bd = await factory.user(tenant, login=False), await factory.user(tenant, login=False)
    ring = [{"lat": 31.22, "lon": 121.46}, {"lat": 31.22, "lon": 121.48}, {"lat": 31.24, "lon": 121.48}]
    territory = (await client.post("/v1/territories", json={"name": "T", "ring": ring}, headers=ops.headers)).json()[
        "id"
    ]
    rules = [{"name": "in T", "when": {"territories": [territory]}, "group": {"user_ids": [str(inside_bd.id)]}}]
    await _save(client, ops, rules, fallback={"group": {"user_ids": [str(other_bd.id)]}})
    inside = await factory.poi(tenant, 31.225, 121.475)
    outside = await factory.poi(tenant, 31.30, 121.60)
    assert (await _route(client, ops, inside))["chosen"] == str(inside_bd.id)
    assert (await _route(client, ops, outside))["chosen"] == str(other_bd.id)


async def test_a_dry_run_answers_per_record_and_saves_nothing(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, (a, b) = await _team_of(factory, tenant, 2)
    t0 = now()
    await _set_user(factory, b, on_leave_until=t0 + timedelta(days=1))
    pois = [await factory.poi(tenant, category="restaurant") for _ in range(3)]
    proposed = {"rules": [{"name": "team", "when": {"categories": ["restaurant"]}, "group": {"team_id": str(team)}}]}
    response = await client.post(
        "/v1/assignment/rules/dry-run",
        json={"rules": proposed, "record_ids": [str(p) for p in pois], "as_of": t0.isoformat()},
        headers=ops.headers,
    )
    assert response.status_code == 200, response.text
    outcomes = response.json()["outcomes"]
    assert [o["record_id"] for o in outcomes] == [str(p) for p in pois]
    assert all(o["chosen"] == str(a.id) for o in outcomes)
    assert all(o["skipped"] == [{"user_id": str(b.id), "reason": "on_leave"}] for o in outcomes)
    assert outcomes[0]["rule"] == "team"
    assert outcomes[0]["rule_index"] == 0
    # nothing saved: no rule set, no decision, no cursor, no lead moved
    assert (await client.get("/v1/assignment/rules", headers=ops.headers)).json()["version"] == 0
    for table in ("assignment_decisions", "assignment_cursors", "assignment_rule_versions"):
        assert await factory.count(f"SELECT count(*) FROM {table} WHERE tenant_id = :t", t=tenant) == 0  # noqa: S608
    assert [await _holder(factory, tenant, p) for p in pois] == [None] * 3
    sample = await client.post(
        "/v1/assignment/rules/dry-run", json={"rules": proposed, "sample": 2}, headers=ops.headers
    )
    assert len(sample.json()["outcomes"]) == 2
    later = await client.post(
        "/v1/assignment/rules/dry-run",
        json={"rules": proposed, "record_ids": [str(pois[0])], "as_of": (t0 + timedelta(days=2)).isoformat()},
        headers=ops.headers,
    )
    assert later.json()["outcomes"][0]["skipped"] == []  # the leave is over by then


async def test_a_dry_run_takes_turns_as_the_real_run_would(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, bds = await _team_of(factory, tenant, 2)
    pois = [await factory.poi(tenant) for _ in range(4)]
    proposed = {"rules": [{"name": "team", "group": {"team_id": str(team)}}]}
    dry = await client.post(
        "/v1/assignment/rules/dry-run",
        json={"rules": proposed, "record_ids": [str(p) for p in pois]},
        headers=ops.headers,
    )
    predicted = [o["chosen"] for o in dry.json()["outcomes"]]
    assert predicted == [str(bds[0].id), str(bds[1].id)] * 2
    await _save(client, ops, proposed["rules"])
    assert [(await _route(client, ops, p))["chosen"] for p in pois] == predicted


async def test_every_save_is_a_version_kept_as_the_audit_trail(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant, login=False)
    group = {"user_ids": [str(bd.id)]}
    await _save(client, ops, [{"name": "one", "group": group}])
    second = await _save(client, ops, [{"name": "two", "group": group, "strategy": "least_loaded"}])
    assert second["version"] == 2
    assert second["saved_by"] == str(ops.id)
    versions = (await client.get("/v1/assignment/rules/versions", headers=ops.headers)).json()
    assert [(v["version"], v["rules"][0]["name"]) for v in versions] == [(2, "two"), (1, "one")]


async def test_bad_rule_sets_are_422(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team = await factory.team(tenant)
    bd = await factory.user(tenant, login=False)
    bad: list[dict[str, Any]] = [
        {"rules": [{"name": "both", "group": {"team_id": str(team), "user_ids": [str(bd.id)]}}]},
        {"rules": [{"name": "neither", "group": {}}]},
        {"rules": [{"name": "x", "group": {"team_id": str(team)}, "strategy": "lottery"}]},
        {"rules": [{"name": "x", "group": {"team_id": str(team)}, "cap": 0}]},
        {"rules": [{"name": "", "group": {"team_id": str(team)}}]},
        {"rules": [{"name": "x", "group": {"team_id": "not-a-uuid"}}]},
        {"rules": [{"name": "x", "group": {"team_id": str(team)}, "when": {"colour": ["red"]}}]},
    ]
    for body in bad:
        response = await client.put("/v1/assignment/rules", json=body, headers=ops.headers)
        assert response.status_code == 422, (body, response.text)
        dry = await client.post("/v1/assignment/rules/dry-run", json={"rules": body}, headers=ops.headers)
        assert dry.status_code == 422, (body, dry.text)


async def test_another_tenants_ids_are_404(factory: Factory, client: Client) -> None:
    mine, theirs = await factory.tenant(), await factory.tenant()
    ops = await factory.user(mine, Role.OPS)
    their_team = await factory.team(theirs)
    their_bd = await factory.user(theirs, login=False)
    their_poi = await factory.poi(theirs)
    my_bd = await factory.user(mine, login=False)
    for group in ({"team_id": str(their_team)}, {"user_ids": [str(their_bd.id)]}):
        response = await client.put(
            "/v1/assignment/rules", json={"rules": [{"name": "x", "group": group}]}, headers=ops.headers
        )
        assert response.status_code == 404, response.text
    territory = {"territories": [str(uuid.uuid4())]}
    response = await client.put(
        "/v1/assignment/rules",
        json={"rules": [{"name": "x", "when": territory, "group": {"user_ids": [str(my_bd.id)]}}]},
        headers=ops.headers,
    )
    assert response.status_code == 404
    proposed = {"rules": [{"name": "x", "group": {"user_ids": [str(my_bd.id)]}}]}
    dry = await client.post(
        "/v1/assignment/rules/dry-run", json={"rules": proposed, "record_ids": [str(their_poi)]}, headers=ops.headers
    )
    assert dry.status_code == 404
    assert (await client.post(f"/v1/intake/leads/{their_poi}/route", headers=ops.headers)).status_code == 404
    assert (await client.get(f"/v1/assignment/decisions/{their_poi}", headers=ops.headers)).json() == []
    assert await _holder(factory, theirs, their_poi) is None


async def test_roles_without_the_permission_are_refused(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant, Role.BD)
    supervisor = await factory.user(tenant, Role.SUPERVISOR)
    technician = await factory.user(tenant, Role.TECHNICIAN)
    poi = await factory.poi(tenant)
    body = {"rules": [{"name": "x", "group": {"user_ids": [str(bd.id)]}}]}
    for user in (bd, supervisor, technician):
        assert (await client.put("/v1/assignment/rules", json=body, headers=user.headers)).status_code == 403
        dry = await client.post("/v1/assignment/rules/dry-run", json={"rules": body}, headers=user.headers)
        assert dry.status_code == 403
    for user in (bd, technician):
        assert (await client.get("/v1/assignment/rules", headers=user.headers)).status_code == 403
        assert (await client.post(f"/v1/intake/leads/{poi}/route", headers=user.headers)).status_code == 403
        assert (await client.get(f"/v1/assignment/decisions/{poi}", headers=user.headers)).status_code == 403
    assert (await client.get("/v1/assignment/rules", headers=supervisor.headers)).status_code == 200


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 12), m=st.integers(0, 100), start=st.integers(0, 12))
def test_round_robin_gives_each_of_n_people_floor_or_ceil_of_m_over_n(n: int, m: int, start: int) -> None:
    people = [uuid.UUID(int=i * 7919 + 1) for i in range(n)]
    last: UUID | None = people[start % n] if start < n else None
    counts: Counter[UUID] = Counter()
    for _ in range(m):
        last = next_in_turn(people, last)
        counts[last] += 1
    assert sum(counts.values()) == m
    assert all(m // n <= counts[p] <= -(-m // n) for p in people)


async def test_parallel_assignments_keep_the_round_robin_fair(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, bds = await _team_of(factory, tenant, 3)
    await _save(client, ops, [{"name": "team", "group": {"team_id": str(team)}}])
    pois = [await factory.poi(tenant) for _ in range(12)]
    responses = await asyncio.gather(*(client.post(f"/v1/intake/leads/{p}/route", headers=ops.headers) for p in pois))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    counts = Counter(r.json()["chosen"] for r in responses)
    assert counts == {str(b.id): 4 for b in bds}
    turns = await factory.count("SELECT turns FROM assignment_cursors WHERE tenant_id = :t", t=tenant)
    assert turns == 12


async def test_a_team_gives_leads_to_its_bds_and_a_list_skips_other_roles(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team, (bd,) = await _team_of(factory, tenant, 1)
    await factory.user(tenant, Role.SUPERVISOR, team_id=team, login=False)  # the team's supervisor: not in turn
    tech = await factory.user(tenant, Role.TECHNICIAN, team_id=team, login=False)
    await _save(client, ops, [{"name": "team", "group": {"team_id": str(team)}}])
    outcomes = [await _route(client, ops, await factory.poi(tenant)) for _ in range(3)]
    assert {o["chosen"] for o in outcomes} == {str(bd.id)}
    assert outcomes[0]["skipped"] == []
    await _save(client, ops, [{"name": "list", "group": {"user_ids": [str(tech.id), str(bd.id)]}}])
    listed = await _route(client, ops, await factory.poi(tenant))
    assert listed["chosen"] == str(bd.id)
    assert listed["skipped"] == [{"user_id": str(tech.id), "reason": "role"}]


async def test_won_leads_do_not_count_as_load(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    winner, other = await factory.user(tenant, login=False), await factory.user(tenant, login=False)
    won = [await factory.poi(tenant, holder_id=winner.id) for _ in range(3)]
    await factory.poi(tenant, holder_id=other.id)
    async with factory.database.sessions() as session:
        for poi in won:
            await session.execute(
                text("INSERT INTO leads (tenant_id, poi_id, state, updated_at) VALUES (:t, :p, 'won', now())"),
                {"t": tenant, "p": poi},
            )
        await session.commit()
    group = {"user_ids": [str(winner.id), str(other.id)]}
    await _save(client, ops, [{"name": "all", "group": group, "strategy": "least_loaded"}])
    assert (await _route(client, ops, await factory.poi(tenant)))["chosen"] == str(winner.id)


async def test_the_tenants_permission_table_decides_who_writes_rules_and_territories(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    admin, ops = await factory.user(tenant, Role.ADMIN), await factory.user(tenant, Role.OPS)
    supervisor = await factory.user(tenant, Role.SUPERVISOR)
    bd = await factory.user(tenant, login=False)
    changes = {"features": [{"feature": f, "roles": ["admin", "supervisor"]} for f in _FEATURES]}
    changed = await client.put("/v1/admin/permissions", json=changes, headers=admin.headers)
    assert changed.status_code == 200, changed.text
    body = {"rules": [{"name": "x", "group": {"user_ids": [str(bd.id)]}}]}
    assert (await client.put("/v1/assignment/rules", json=body, headers=ops.headers)).status_code == 403
    assert (await client.put("/v1/assignment/rules", json=body, headers=supervisor.headers)).status_code == 200
    ring = [{"lat": 31.22, "lon": 121.46}, {"lat": 31.22, "lon": 121.48}, {"lat": 31.24, "lon": 121.48}]
    territory = {"name": "T", "ring": ring}
    assert (await client.post("/v1/territories", json=territory, headers=ops.headers)).status_code == 403
    assert (await client.post("/v1/territories", json=territory, headers=supervisor.headers)).status_code == 201


_FEATURES = ("manage_territories", "manage_assignment_rules")
