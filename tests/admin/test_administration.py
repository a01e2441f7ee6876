"""Tenant administration by a tenant admin: the team tree, users with one-time set-password tokens, disabling
with immediate effect, password resets; and the permissions table that decides who may do it."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser

Client = AsyncTestClient  # type: ignore[type-arg]


async def _team(client: Client, admin: FieldUser, name: str, parent: str | None = None) -> dict[str, Any]:
    response = await client.post("/v1/teams", json={"name": name, "parent_id": parent}, headers=admin.headers)
    assert response.status_code == 201, response.text
    team: dict[str, Any] = response.json()
    return team


async def _paths(factory: Factory, tenant: uuid.UUID) -> dict[str, str]:
    async with factory.database.sessions() as session:
        from sqlalchemy import text

        rows = await session.execute(text("SELECT id, path FROM teams WHERE tenant_id = :t"), {"t": tenant})
        return {str(r.id): r.path for r in rows}


async def test_the_team_tree_is_built_renamed_and_moved_with_its_subtree(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    north = await _team(client, admin, "North")
    east = await _team(client, admin, "East", north["id"])
    east_a = await _team(client, admin, "East A", east["id"])
    south = await _team(client, admin, "South")
    assert east_a["depth"] == 2

    renamed = await client.patch(f"/v1/teams/{east['id']}", json={"name": "East Bund"}, headers=admin.headers)
    assert renamed.json()["name"] == "East Bund"
    moved = await client.patch(f"/v1/teams/{east['id']}", json={"parent_id": south["id"]}, headers=admin.headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == south["id"]
    paths = await _paths(factory, tenant)
    assert paths[east["id"]] == f"{paths[south['id']]}{east['id']}/"
    assert paths[east_a["id"]] == f"{paths[east['id']]}{east_a['id']}/"  # the subtree followed

    # a supervisor of South now sees East's people (team_and_below follows the path)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=uuid.UUID(south["id"]))
    bd = await factory.user(tenant, Role.BD, team_id=uuid.UUID(east_a["id"]))
    seen = (await client.get("/v1/users", headers=sup.headers)).json()["items"]
    assert str(bd.id) in {u["id"] for u in seen}

    for parent in (east["id"], east_a["id"]):  # under itself, under a team below it
        cycle = await client.patch(f"/v1/teams/{east['id']}", json={"parent_id": parent}, headers=admin.headers)
        assert cycle.status_code == 409
        assert cycle.json()["code"] == "team_cycle"
    root = await client.patch(f"/v1/teams/{east['id']}", json={"parent_id": None}, headers=admin.headers)
    assert root.json()["depth"] == 0
    assert (await _paths(factory, tenant))[east_a["id"]] == f"/{east['id']}/{east_a['id']}/"

    other = await factory.user(await factory.tenant(), Role.ADMIN)
    assert (await client.patch(f"/v1/teams/{east['id']}", json={"name": "x"}, headers=other.headers)).status_code == 404
    under_theirs = await client.post("/v1/teams", json={"name": "x", "parent_id": north["id"]}, headers=other.headers)
    assert under_theirs.status_code == 404
    assert (await client.post("/v1/teams", json={"name": ""}, headers=admin.headers)).status_code == 422
    assert (await client.post("/v1/teams", json={"name": "a\x00"}, headers=admin.headers)).status_code == 422
    assert (await client.patch(f"/v1/teams/{east['id']}", json={"x": 1}, headers=admin.headers)).status_code == 422
    assert (await client.post("/v1/teams", json={"name": "x"}, headers=sup.headers)).status_code == 403
    assert (await client.patch(f"/v1/teams/{east['id']}", json={"name": "x"}, headers=sup.headers)).status_code == 403


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 5)), min_size=1, max_size=8))
async def test_any_sequence_of_moves_keeps_every_path_its_parents_path(
    factory: Factory, client: Client, moves: list[tuple[int, int]]
) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    teams = [await _team(client, admin, f"T{n}") for n in range(6)]
    for child, parent in moves:
        body = {"parent_id": None if parent < 0 else teams[parent]["id"]}
        response = await client.patch(f"/v1/teams/{teams[child]['id']}", json=body, headers=admin.headers)
        assert response.status_code in (200, 409), response.text
    listed = (await client.get("/v1/teams", headers=admin.headers)).json()["items"]
    parents = {t["id"]: t["parent_id"] for t in listed}
    paths = await _paths(factory, tenant)
    for team_id, parent_id in parents.items():
        expected = (paths[parent_id] if parent_id else "/") + f"{team_id}/"
        assert paths[team_id] == expected  # consistent, hence acyclic


async def test_a_user_is_created_sets_a_password_once_and_logs_in(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    team = await _team(client, admin, "Jing'an")
    username = f"new-{uuid.uuid4().hex[:8]}@test"
    body = {"username": username, "display_name": "Wang Fang", "role": "bd", "team_id": team["id"]}
    created = await client.post("/v1/users", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    user, link = created.json()["user"], created.json()["set_password"]
    assert user["data_scope"] == "self"
    assert user["team_id"] == team["id"]
    login = {"username": username, "password": "a new password 1", "device_id": "d1"}
    assert (await client.post("/v1/auth/token", json=login)).status_code == 401  # no password yet

    chosen = {"token": link["token"], "password": "a new password 1"}
    assert (await client.post("/v1/auth/set-password", json=chosen)).status_code == 204
    again = await client.post("/v1/auth/set-password", json=chosen)
    assert again.status_code == 400
    assert again.json()["code"] == "set_password_token_invalid"
    assert (await client.post("/v1/auth/token", json=login)).status_code == 200

    async with factory.database.sessions() as session:
        from sqlalchemy import text

        stored = await session.scalar(
            text("SELECT token_hash FROM set_password_tokens WHERE tenant_id = :t AND user_id = :u"),
            {"t": tenant, "u": uuid.UUID(user["id"])},
        )
    assert stored != link["token"]
    assert len(stored) == 64  # the sha256, never the token

    taken = await client.post("/v1/users", json={**body, "username": username.upper()}, headers=admin.headers)
    assert taken.status_code == 409
    assert taken.json()["code"] == "username_taken"
    bad_bodies: list[dict[str, Any]] = [
        {**body, "role": "king"},
        {**body, "username": "a b"},
        {**body, "display_name": ""},
        {**body, "data_scope": "galaxy"},
        {**body, "extra": 1},
        {k: v for k, v in body.items() if k != "role"},
    ]
    for bad in bad_bodies:
        assert (await client.post("/v1/users", json=bad, headers=admin.headers)).status_code == 422, bad
    assert (await client.post("/v1/auth/set-password", json={"token": "nope", "password": "x" * 10})).status_code == 400
    short = await client.post("/v1/auth/set-password", json={"token": "nope", "password": "short"})
    assert short.status_code == 422

    other = await factory.user(await factory.tenant(), Role.ADMIN)
    their_team = {**body, "username": f"x-{uuid.uuid4().hex[:6]}@test"}
    assert (await client.post("/v1/users", json=their_team, headers=other.headers)).status_code == 404
    for role in (Role.OPS, Role.SUPERVISOR, Role.BD):
        someone = await factory.user(tenant, role)
        assert (await client.post("/v1/users", json=their_team, headers=someone.headers)).status_code == 403


async def test_disable_edit_and_reset_take_effect_at_once(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    bd = await factory.user(tenant, Role.BD)
    tokens = await factory.login(bd.username, device_id="d2")
    assert (await client.get("/v1/me", headers=bd.headers)).status_code == 200

    disabled = await client.post(f"/v1/users/{bd.id}/disable", headers=admin.headers)
    assert disabled.status_code == 200
    assert disabled.json()["is_active"] is False
    refused = await client.get("/v1/me", headers=bd.headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "account_disabled"
    refresh = {"refresh_token": tokens["refresh_token"], "device_id": "d2"}
    assert (await client.post("/v1/auth/refresh", json=refresh)).status_code == 401
    assert (await client.post(f"/v1/users/{bd.id}/enable", headers=admin.headers)).json()["is_active"] is True
    relogged = await factory.login(bd.username)
    headers = {"Authorization": f"Bearer {relogged['access_token']}"}
    assert (await client.get("/v1/me", headers=headers)).status_code == 200

    promoted = await client.patch(f"/v1/users/{bd.id}", json={"role": "supervisor"}, headers=admin.headers)
    assert promoted.json()["role"] == "supervisor"
    assert promoted.json()["data_scope"] == "team_and_below"
    stale = await client.get("/v1/me", headers=headers)
    assert stale.status_code == 401
    assert stale.json()["code"] == "token_stale"
    renamed = await client.patch(f"/v1/users/{bd.id}", json={"display_name": "Li Na"}, headers=admin.headers)
    assert renamed.json()["display_name"] == "Li Na"

    relogged = await factory.login(bd.username)
    headers = {"Authorization": f"Bearer {relogged['access_token']}"}
    reset = await client.post(f"/v1/users/{bd.id}/password-reset", headers=admin.headers)
    assert reset.status_code == 200
    assert (await client.get("/v1/me", headers=headers)).status_code == 401
    new = {"token": reset.json()["token"], "password": "another password"}
    assert (await client.post("/v1/auth/set-password", json=new)).status_code == 204
    login = {"username": bd.username, "password": "another password", "device_id": "d3"}
    assert (await client.post("/v1/auth/token", json=login)).status_code == 200

    assert (await client.post(f"/v1/users/{admin.id}/disable", headers=admin.headers)).status_code == 409
    demoted = await client.patch(f"/v1/users/{admin.id}", json={"role": "bd"}, headers=admin.headers)
    assert demoted.status_code == 409
    other = await factory.user(await factory.tenant(), Role.ADMIN)
    for path in ("disable", "enable", "password-reset"):
        assert (await client.post(f"/v1/users/{bd.id}/{path}", headers=other.headers)).status_code == 404
    assert (await client.patch(f"/v1/users/{bd.id}", json={"role": "bd"}, headers=other.headers)).status_code == 404
    assert (await client.get(f"/v1/users/{bd.id}", headers=other.headers)).status_code == 404
    ops = await factory.user(tenant, Role.OPS)
    assert (await client.post(f"/v1/users/{bd.id}/disable", headers=ops.headers)).status_code == 403
    assert (await client.patch(f"/v1/users/{bd.id}", json={"role": "bd"}, headers=ops.headers)).status_code == 403
    bad = await client.patch(f"/v1/users/{bd.id}", json={"team_id": str(uuid.uuid4())}, headers=admin.headers)
    assert bad.status_code == 404
    assert (await client.patch(f"/v1/users/{bd.id}", json={"role": 3}, headers=admin.headers)).status_code == 422


async def test_permissions_are_tenant_configuration(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    ops = await factory.user(tenant, Role.OPS)
    table = (await client.get("/v1/admin/permissions", headers=admin.headers)).json()["features"]
    campaigns = next(f for f in table if f["feature"] == "manage_campaigns")
    assert campaigns == {"feature": "manage_campaigns", "roles": ["admin", "ops"], "default": True}
    assert (await client.get("/v1/admin/permissions", headers=ops.headers)).status_code == 403

    from tests.tasks.helpers import campaign_body

    assert (await client.post("/v1/campaigns", json=campaign_body(), headers=ops.headers)).status_code == 201
    changed = await client.put(
        "/v1/admin/permissions",
        json={
            "features": [
                {"feature": "manage_campaigns", "roles": ["admin"]},
                {"feature": "manage_users", "roles": ["admin", "ops"]},
            ]
        },
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await client.post("/v1/campaigns", json=campaign_body(), headers=ops.headers)).status_code == 403
    invite = {"username": f"o-{uuid.uuid4().hex[:6]}@test", "display_name": "O", "role": "bd"}
    assert (await client.post("/v1/users", json=invite, headers=ops.headers)).status_code == 201

    other = await factory.tenant()  # another tenant keeps the defaults
    their_ops = await factory.user(other, Role.OPS)
    assert (await client.post("/v1/campaigns", json=campaign_body(), headers=their_ops.headers)).status_code == 201

    back = await client.put("/v1/admin/permissions", json={"defaults": ["manage_campaigns"]}, headers=admin.headers)
    assert next(f for f in back.json()["features"] if f["feature"] == "manage_campaigns")["default"] is True
    assert (await client.post("/v1/campaigns", json=campaign_body(), headers=ops.headers)).status_code == 201

    lockout = {"features": [{"feature": "manage_permissions", "roles": ["ops"]}]}
    assert (await client.put("/v1/admin/permissions", json=lockout, headers=admin.headers)).status_code == 422
    for bad in (
        {"features": [{"feature": "fly", "roles": []}]},
        {"features": [{"feature": "add_merchants", "roles": ["x"]}]},
        {"x": 1},
    ):
        assert (await client.put("/v1/admin/permissions", json=bad, headers=admin.headers)).status_code == 422
    assert (await client.put("/v1/admin/permissions", json={}, headers=ops.headers)).status_code == 403


async def test_creates_are_retried_safely(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    body = {"id": str(uuid.uuid4()), "name": "Pudong"}
    first = await client.post("/v1/teams", json=body, headers=admin.headers)
    again = await client.post("/v1/teams", json=body, headers=admin.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert (await client.post("/v1/teams", json={**body, "name": "Other"}, headers=admin.headers)).status_code == 409

    user = {"username": f"r-{uuid.uuid4().hex[:6]}@test", "display_name": "Zhao Lei", "role": "technician"}
    made = await client.post("/v1/users", json=user, headers=admin.headers)
    retried = await client.post("/v1/users", json=user, headers=admin.headers)
    assert (made.status_code, retried.status_code) == (201, 200)
    old, new = made.json()["set_password"]["token"], retried.json()["set_password"]["token"]
    assert (await client.post("/v1/auth/set-password", json={"token": old, "password": "p" * 12})).status_code == 400
    assert (await client.post("/v1/auth/set-password", json={"token": new, "password": "p" * 12})).status_code == 204
    assert (await client.post("/v1/users", json=user, headers=admin.headers)).status_code == 409  # password chosen


async def test_a_feature_taken_from_a_role_is_refused_where_it_was_hard_coded(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    ops = await factory.user(tenant, Role.OPS)
    tech = await factory.user(tenant, Role.TECHNICIAN)
    policy = {"default_geofence_radius_m": 150}
    profile = {"skills": ["fiber"], "regions": ["huangpu"]}
    assert (await client.patch("/v1/tenant/verification-policy", json=policy, headers=ops.headers)).status_code == 403
    assert (
        await client.put(f"/v1/technicians/{tech.id}/profile", json=profile, headers=ops.headers)
    ).status_code == 204
    assert (await client.get("/v1/technicians", headers=ops.headers)).status_code == 200

    given_and_taken = {
        "features": [
            {"feature": "edit_verification_policy", "roles": ["admin", "ops"]},
            {"feature": "manage_technicians", "roles": ["admin", "supervisor"]},
        ]
    }
    assert (await client.put("/v1/admin/permissions", json=given_and_taken, headers=admin.headers)).status_code == 200
    assert (await client.patch("/v1/tenant/verification-policy", json=policy, headers=ops.headers)).status_code == 200
    assert (
        await client.put(f"/v1/technicians/{tech.id}/profile", json=profile, headers=ops.headers)
    ).status_code == 403
    assert (await client.get("/v1/technicians", headers=ops.headers)).status_code == 403


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(allowed=st.sets(st.sampled_from([Role.BD, Role.SUPERVISOR, Role.OPS])))
async def test_a_feature_is_allowed_exactly_to_the_roles_the_tenant_gives_it(
    factory: Factory, client: Client, allowed: set[Role]
) -> None:
    from tests.tasks.helpers import campaign_body

    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    roles = sorted({Role.ADMIN, *allowed})
    body = {"features": [{"feature": "manage_campaigns", "roles": roles}]}
    assert (await client.put("/v1/admin/permissions", json=body, headers=admin.headers)).status_code == 200
    for role in (Role.BD, Role.SUPERVISOR, Role.OPS, Role.TECHNICIAN):
        user = await factory.user(tenant, role)
        created = await client.post("/v1/campaigns", json=campaign_body(), headers=user.headers)
        assert created.status_code == (201 if role in allowed else 403), (role, created.text)
