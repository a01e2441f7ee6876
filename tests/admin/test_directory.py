"""The lists a console and a phone need: campaigns, job types, users, teams, technicians, jobs, each paged and in
the caller's tenant and scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from mobile_contract.auth import Role
from tests.factories import Factory
from tests.jobs.helpers import create_job, technician
from tests.tasks.helpers import create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]


async def _all(client: Client, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_campaigns_list_pages_and_one_reads(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant, Role.BD)
    ids = [await create_campaign(client, ops, title=f"Push {n}") for n in range(5)]
    listed = await _all(client, "/v1/campaigns", bd.headers, limit=2)
    assert sorted(c["id"] for c in listed) == sorted(ids)
    one = await client.get(f"/v1/campaigns/{ids[0]}", headers=bd.headers)
    assert one.status_code == 200
    assert one.json()["title"] == "Push 0"

    other = await factory.user(await factory.tenant(), Role.OPS)
    assert (await client.get(f"/v1/campaigns/{ids[0]}", headers=other.headers)).status_code == 404
    assert (await client.get("/v1/campaigns", headers=other.headers)).json()["items"] == []
    assert (await client.get("/v1/campaigns", params={"cursor": "!!"}, headers=bd.headers)).status_code in (400, 422)
    assert (await client.get("/v1/campaigns", params={"limit": 0}, headers=bd.headers)).status_code in (400, 422)
    assert (await client.get("/v1/campaigns/not-a-uuid", headers=bd.headers)).status_code in (400, 404)


async def test_job_types_are_listed(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    types = (await client.get("/v1/job-types", headers=tech.headers)).json()
    assert "return_visit" in {t["key"] for t in types}
    assert all(set(t["policy"]) == {"code", "location", "photos"} for t in types)
    assert (await client.get("/v1/job-types")).status_code == 401


async def test_users_and_teams_within_the_callers_scope(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    north = await factory.team(tenant, "North")
    north_east = await factory.team(tenant, "North East", parent=north)
    south = await factory.team(tenant, "South")
    lead = await factory.user(tenant, Role.SUPERVISOR, team_id=north, scope="team_and_below")
    narrow = await factory.user(tenant, Role.SUPERVISOR, team_id=north, scope="team")
    bd_ne = await factory.user(tenant, Role.BD, team_id=north_east)
    bd_s = await factory.user(tenant, Role.BD, team_id=south)
    ops = await factory.user(tenant, Role.OPS, scope="all")

    seen = {u["id"] for u in await _all(client, "/v1/users", lead.headers, limit=1)}
    assert seen == {str(lead.id), str(narrow.id), str(bd_ne.id)}
    assert {u["id"] for u in await _all(client, "/v1/users", narrow.headers)} == {str(lead.id), str(narrow.id)}
    assert {u["id"] for u in await _all(client, "/v1/users", bd_s.headers)} == {str(bd_s.id)}
    everyone = await _all(client, "/v1/users", ops.headers, role="bd")
    assert {u["id"] for u in everyone} == {str(bd_ne.id), str(bd_s.id)}

    teams = await _all(client, "/v1/teams", lead.headers, limit=1)
    assert [t["id"] for t in teams] == [str(north), str(north_east)]  # tree order: the parent first
    assert [t["depth"] for t in teams] == [0, 1]
    assert {t["id"] for t in await _all(client, "/v1/teams", ops.headers)} == {str(north), str(north_east), str(south)}
    assert [t["id"] for t in await _all(client, "/v1/teams", narrow.headers)] == [str(north)]

    other = await factory.user(await factory.tenant(), Role.ADMIN, scope="all")
    assert {u["id"] for u in await _all(client, "/v1/users", other.headers)} == {str(other.id)}
    assert await _all(client, "/v1/teams", other.headers) == []
    assert (await client.get("/v1/users", params={"team_id": "x"}, headers=ops.headers)).status_code in (400, 422)
    assert (await client.get("/v1/users", params={"role": "king"}, headers=ops.headers)).status_code in (400, 422)
    assert (await client.get("/v1/teams", params={"cursor": "%%%"}, headers=ops.headers)).status_code in (400, 422)


async def test_technicians_with_their_profiles(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant, skills=["fiber", "tv"], name="A tech")
    bare = await factory.user(tenant, Role.TECHNICIAN, name="B tech")
    await factory.user(tenant, Role.BD)
    listed = await _all(client, "/v1/technicians", ops.headers, limit=1)
    assert [t["id"] for t in listed] == [str(tech.id), str(bare.id)]
    assert listed[0]["profile"]["skills"] == ["fiber", "tv"]
    assert listed[0]["profile"]["location"]["lat"] is not None
    assert listed[1]["profile"] is None
    gcj = (await client.get("/v1/technicians", params={"crs": "gcj02"}, headers=ops.headers)).json()["items"]
    assert gcj[0]["profile"]["location"] != listed[0]["profile"]["location"]

    bd = await factory.user(tenant, Role.BD)
    assert (await client.get("/v1/technicians", headers=bd.headers)).status_code == 403
    assert (await client.get("/v1/technicians", headers=tech.headers)).status_code == 403
    other = await factory.user(await factory.tenant(), Role.OPS)
    assert (await client.get("/v1/technicians", headers=other.headers)).json()["items"] == []
    assert (await client.get("/v1/technicians", params={"crs": "utm"}, headers=ops.headers)).status_code in (400, 422)


async def test_jobs_are_paged_and_filtered(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    now = datetime.now(UTC)
    later = now + timedelta(days=3)
    jobs = [await create_job(client, ops, priority=p) for p in (1, 2, 3, 2)]
    far = await create_job(
        client, ops, window_start=later.isoformat(), window_end=(later + timedelta(hours=4)).isoformat()
    )
    await client.post(f"/v1/jobs/{jobs[0]['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)

    paged = await _all(client, "/v1/jobs", ops.headers, limit=2)
    assert len(paged) == 5
    assert len({j["id"] for j in paged}) == 5
    assert [j["priority"] for j in paged] == sorted(j["priority"] for j in paged)
    assigned = await _all(client, "/v1/jobs", ops.headers, assignee_id=str(tech.id))
    assert [j["id"] for j in assigned] == [jobs[0]["id"]]
    assert [j["id"] for j in await _all(client, "/v1/jobs", ops.headers, status="assigned")] == [jobs[0]["id"]]
    window = {"from": (later - timedelta(hours=1)).isoformat(), "to": (later + timedelta(hours=1)).isoformat()}
    assert [j["id"] for j in await _all(client, "/v1/jobs", ops.headers, **window)] == [far["id"]]
    assert [j["id"] for j in await _all(client, "/v1/jobs", tech.headers)] == [jobs[0]["id"]]

    backwards = {"from": window["to"], "to": window["from"]}
    assert (await client.get("/v1/jobs", params=backwards, headers=ops.headers)).status_code == 422
    assert (await client.get("/v1/jobs", params={"from": "yesterday"}, headers=ops.headers)).status_code in (400, 422)
    assert (await client.get("/v1/jobs", params={"cursor": "abc"}, headers=ops.headers)).status_code in (400, 422)
    other = await factory.user(await factory.tenant(), Role.OPS)
    assert await _all(client, "/v1/jobs", other.headers) == []
    stranger = await _all(client, "/v1/jobs", other.headers, assignee_id=str(tech.id))
    assert stranger == []
