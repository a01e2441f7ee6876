"""Who may see a job, checked before anything else; the pool without the customer's identity; dispatch within
the dispatcher's scope; coordinates in the caller's system; and the step names tied to one definition."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from backend.app import SYNC_REGISTRY as REGISTRY
from backend.jobs.models import JOB_STATUSES
from backend.jobs.service import ASSIGNEE_STEPS, RULES, STEPS, JobStep
from backend.jobs.sync import JOB_STEPS
from geo.crs import Crs, from_wgs84
from mobile_contract.auth import Role
from mobile_contract.jobs import JobAction, JobStatus
from tests.factories import Factory, FieldUser, fix
from tests.jobs.helpers import SITE, arrived_job, create_job, job_body, step, technician

Client = AsyncTestClient  # type: ignore[type-arg]

# A valid request for every route about one job: the probe must reach the handler, not stop at the contract.
_BODIES: dict[str, Any] = {
    "getJob": None,
    "dispatchJob": {"dry_run": False},
    "assignJob": "technician",
    "grabJob": None,
    "jobStep": {"reason": "probing", "appointment_at": None},
    "enterJobCode": {"code": "123456"},
    "resendJobCode": None,
    "listJobPhotos": None,
}


def _absent(text: str, *words: str) -> None:
    found = [word for word in words if word in text]
    assert not found, found


def _job_routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path, operation id) of every route that names a job in its path: a new one is probed too."""
    found = []
    for route in app.routes:
        if "{job_id" not in route.path:
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.operation_id is None:
                continue  # Litestar's own OPTIONS answer
            for method in sorted(handler.http_methods):
                found.append((method, route.path, str(handler.operation_id)))
    return found


async def _probe(client: Client, user: FieldUser, method: str, path: str, op: str, job_id: str, tech: str) -> Any:
    url = path.replace("{job_id:uuid}", job_id)
    if "{step:" in url:
        return [
            await client.post(url.replace("{step:str}", s.value), json=_BODIES[op], headers=user.headers) for s in STEPS
        ]
    body = _BODIES[op]
    if body == "technician":
        body = {"technician_id": tech}
    return [await client.request(method, url, json=body, headers=user.headers)]


async def test_a_job_is_not_found_on_every_route_by_whoever_may_not_see_it(factory: Factory, client: Client) -> None:
    ops, tech, job_id = await arrived_job(factory, client, job_type="install")
    pooled = await create_job(client, ops, dispatch="pool")
    tenant = ops.tenant_id
    other = await factory.tenant()
    other_ops = await factory.user(other, Role.OPS)
    callers = [
        await factory.user(tenant, Role.BD),  # same tenant, but a BD sees no jobs at all
        await technician(factory, client, ops, tenant),  # same tenant, not the assignee
        other_ops,
        await technician(factory, client, other_ops, other),
    ]
    routes = _job_routes(client.app)
    assert {op for _, _, op in routes} == set(_BODIES), "a job route without a probe body"
    before = await factory.count("SELECT count(*) FROM job_events WHERE tenant_id = :t", t=tenant)
    for user in callers:
        for method, path, op in routes:
            for target in (job_id, pooled["id"], str(uuid.uuid4())):
                if (
                    target == pooled["id"]
                    and op == "grabJob"
                    and user.role is Role.TECHNICIAN
                    and user.tenant_id == tenant
                ):
                    continue  # a pooled job is for this technician to grab
                for answer in await _probe(client, user, method, path, op, target, str(tech.id)):
                    assert answer.status_code == 404, (user.role, method, path, target, answer.text)
                    assert answer.json()["code"] == "not_found"
                    _absent(answer.text, "Chen", "fiber")  # nothing about the job
    assert await factory.count("SELECT count(*) FROM job_events WHERE tenant_id = :t", t=tenant) == before


async def test_a_bd_assigning_a_job_learns_nothing_about_it_or_the_technician(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant, name="Wang Wei", skills=["gas"])
    job = await create_job(client, ops)
    bd = await factory.user(tenant, Role.BD)
    answer = await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=bd.headers)
    assert answer.status_code == 404
    _absent(answer.text, "Wang", "fiber", "skills")


async def test_the_pool_shows_technicians_what_to_decide_on_and_not_who_the_customer_is(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops, dispatch="pool", notes="Gate code 4711, ask for Mrs Chen")
    near = {"lat": SITE[0], "lon": SITE[1]}
    [listed] = (await client.get("/v1/jobs/pool", params=near, headers=tech.headers)).json()
    assert set(listed) == {
        "id",
        "job_type",
        "region",
        "area",
        "distance_m",
        "required_skills",
        "window_start",
        "window_end",
        "priority",
        "policy",
    }
    _absent(str(listed), "Chen", "Huaihai", "4711")
    assert listed["area"] == {"lat": round(SITE[0], 2), "lon": round(SITE[1], 2)}
    assert listed["distance_m"] < 1.0
    # The technician sees the customer once the job is theirs, not before.
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=tech.headers)).status_code == 404
    taken = await client.post(f"/v1/jobs/{job['id']}/grab", headers=tech.headers)
    assert taken.status_code == 200, taken.text
    assert taken.json()["customer_name"] == "Chen Hui"
    for role in (Role.BD, Role.OPS, Role.SUPERVISOR):
        user = await factory.user(tenant, role)
        assert (await client.get("/v1/jobs/pool", params=near, headers=user.headers)).status_code == 403
    for bad in ({"lat": 91, "lon": 0}, {"lat": 0}, {"lat": 0, "lon": 0, "radius_m": 0}, {**near, "crs": "osgb"}):
        assert (await client.get("/v1/jobs/pool", params=bad, headers=tech.headers)).status_code == 422


async def test_dispatch_picks_within_the_dispatchers_scope_and_the_dispatcher_keeps_seeing_the_job(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    team = await factory.team(tenant, "North")
    supervisor = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    # The best candidate by score stands at the site but belongs to no team of the supervisor's.
    outsider = await technician(factory, client, ops, tenant, name="Outsider")
    insider = await factory.user(tenant, Role.TECHNICIAN, team_id=team, name="Insider")
    profile = {"skills": ["fiber"], "regions": ["huangpu"], "location": {"lat": SITE[0] + 0.05, "lon": SITE[1]}}
    assert (
        await client.put(f"/v1/technicians/{insider.id}/profile", json=profile, headers=ops.headers)
    ).status_code == 204
    job = await create_job(client, supervisor)
    decision = await client.post(f"/v1/jobs/{job['id']}/dispatch", json={}, headers=supervisor.headers)
    assert decision.status_code == 200, decision.text
    assert decision.json()["chosen"] == str(insider.id)
    assert str(outsider.id) not in decision.text  # not even listed: not the supervisor's to assign
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=supervisor.headers)).status_code == 200
    manual = await client.post(
        f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(outsider.id)}, headers=supervisor.headers
    )
    assert manual.status_code == 404
    assert manual.json()["detail"] == "No technician with this id is visible to you."
    # Operations may assign anyone; the supervisor who created the job still sees it.
    moved = await client.post(
        f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(outsider.id)}, headers=ops.headers
    )
    assert moved.status_code == 200
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=supervisor.headers)).status_code == 200
    assert job["id"] in {j["id"] for j in (await client.get("/v1/jobs", headers=supervisor.headers)).json()["items"]}


async def test_every_candidate_a_dispatcher_is_offered_keeps_a_job_they_did_not_create_in_their_sight(
    factory: Factory, client: Client
) -> None:
    """Dispatch and visibility agree: the candidates a supervisor is offered are exactly the technicians in their
    scope, and whichever of them the supervisor assigns (by hand or by auto dispatch), the job stays theirs to see,
    though operations created it."""
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    north, south = await factory.team(tenant, "North"), await factory.team(tenant, "South")
    supervisor = await factory.user(tenant, Role.SUPERVISOR, team_id=north)
    insiders = [await factory.user(tenant, Role.TECHNICIAN, team_id=north, name=f"North {n}") for n in range(3)]
    outsider = await factory.user(tenant, Role.TECHNICIAN, team_id=south, name="South")
    for n, tech in enumerate([*insiders, outsider]):
        profile = {"skills": ["fiber"], "regions": ["huangpu"], "location": {"lat": SITE[0] + n / 100, "lon": SITE[1]}}
        put = await client.put(f"/v1/technicians/{tech.id}/profile", json=profile, headers=ops.headers)
        assert put.status_code == 204, put.text
    job = await create_job(client, ops)
    url = f"/v1/jobs/{job['id']}"
    dry = await client.post(f"{url}/dispatch", json={"dry_run": True}, headers=supervisor.headers)
    assert dry.status_code == 200, dry.text
    offered = [c["technician_id"] for c in dry.json()["candidates"]]
    assert set(offered) == {str(t.id) for t in insiders}
    for technician_id in offered:
        assigned = await client.post(f"{url}/assign", json={"technician_id": technician_id}, headers=supervisor.headers)
        assert assigned.status_code == 200, assigned.text
        assert (await client.get(url, headers=supervisor.headers)).status_code == 200
        listed = (await client.get("/v1/jobs", headers=supervisor.headers)).json()["items"]
        assert job["id"] in {j["id"] for j in listed}
    auto = await client.post(f"{url}/dispatch", json={}, headers=supervisor.headers)
    assert auto.status_code == 200, auto.text
    assert auto.json()["chosen"] in offered
    assert (await client.get(url, headers=supervisor.headers)).status_code == 200


async def test_a_walk_in_arrives_straight_after_accepting(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops, job_type="measure")
    await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    early = await step(client, tech, job["id"], "arrive", fix=fix(*SITE))
    assert early.status_code == 409  # assigned, not yet accepted
    assert (await step(client, tech, job["id"], "accept")).status_code == 200
    arrived = await step(client, tech, job["id"], "arrive", fix=fix(*SITE))
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["status"] == "arrived"
    assert arrived.json()["arrival"]["status"] == "verified"


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
async def test_jobs_take_and_answer_coordinates_in_the_callers_system(
    factory: Factory, client: Client, crs: str
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    site = from_wgs84(SITE[0], SITE[1], Crs(crs))  # where a Chinese map SDK shows the site
    tech = await technician(factory, client, ops, tenant)
    body = job_body(location={"lat": site[0], "lon": site[1]}, job_type="measure")
    created = await client.post("/v1/jobs", params={"crs": crs}, json=body, headers=ops.headers)
    assert created.status_code == 201, created.text
    assert created.json()["location"] == pytest.approx({"lat": site[0], "lon": site[1]}, abs=1e-6)
    stored = (await client.get(f"/v1/jobs/{body['id']}", headers=ops.headers)).json()["location"]
    assert stored == pytest.approx({"lat": SITE[0], "lon": SITE[1]}, abs=1e-5)  # kept in WGS-84
    await client.post(f"/v1/jobs/{body['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    await step(client, tech, body["id"], "accept")
    # The phone reports the site in its map's system: judged at the site, not hundreds of metres off.
    arrived = await client.post(
        f"/v1/jobs/{body['id']}/steps/arrive", params={"crs": crs}, json={"fix": fix(*site)}, headers=tech.headers
    )
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["arrival"]["status"] == "verified"
    assert arrived.json()["arrival"]["distance_m"] < 5
    listed = (await client.get("/v1/jobs", params={"crs": crs}, headers=tech.headers)).json()["items"]
    assert listed[0]["location"] == pytest.approx({"lat": site[0], "lon": site[1]}, abs=1e-6)
    bad = await client.post(
        f"/v1/jobs/{body['id']}/steps/arrive", params={"crs": "utm"}, json={"fix": fix(*site)}, headers=tech.headers
    )
    assert bad.status_code == 422


async def test_a_queued_arrival_carries_its_crs(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops, job_type="measure")
    await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    now = datetime.now(UTC).isoformat()
    site = from_wgs84(SITE[0], SITE[1], Crs.GCJ02)
    queued = [
        {"id": 1, "name": "job.accept", "args": {"job_id": job["id"]}, "created_at": now},
        {
            "id": 2,
            "name": "job.arrive",
            "args": {"job_id": job["id"], "fix": fix(*site), "crs": "gcj02"},
            "created_at": now,
        },
    ]
    results = (
        await client.post("/v1/sync/push", json={"client_id": "p", "mutations": queued}, headers=tech.headers)
    ).json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert results[1]["result"]["arrival"]["status"] == "verified"


def test_step_names_have_one_definition() -> None:
    """The wire's JobAction is the list; the rules, the route's `{step}`, the sync mutations and the status
    check constraint are derived from it and from JobStatus."""
    assert set(RULES) == set(JobAction)
    assert [s.value for s in JobStep] == [a.value for a in STEPS]
    assert JOB_STEPS == ASSIGNEE_STEPS
    assert {f"job.{name}" for name in JOB_STEPS} <= set(REGISTRY.mutations)
    assert tuple(s.value for s in JobStatus) == JOB_STATUSES
    for rule in RULES.values():
        assert set(rule.sources) <= set(JobStatus)


async def test_bad_input_on_the_routes_that_changed_is_a_problem_with_a_code(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops, dispatch="pool")
    answers = [
        await client.post(f"/v1/jobs/{job['id']}/steps/verify", json={}, headers=ops.headers),  # has its own route
        await client.post(f"/v1/jobs/{job['id']}/steps/flying", json={}, headers=ops.headers),
        await client.post("/v1/jobs", params={"crs": "utm"}, json=job_body(), headers=ops.headers),
        await client.get("/v1/jobs", params={"crs": "GCJ02"}, headers=ops.headers),
        await client.get(f"/v1/jobs/{job['id']}", params={"crs": ""}, headers=ops.headers),
        await client.put(f"/v1/technicians/{tech.id}/profile", params={"crs": "wgs 84"}, json={}, headers=ops.headers),
        await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": "nobody"}, headers=ops.headers),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_failed"


async def test_a_pooled_jobs_area_stays_coarse_in_every_crs(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    await create_job(client, ops, dispatch="pool")
    for crs in ("gcj02", "bd09"):
        near = from_wgs84(SITE[0], SITE[1], Crs(crs))
        [listed] = (
            await client.get("/v1/jobs/pool", params={"lat": near[0], "lon": near[1], "crs": crs}, headers=tech.headers)
        ).json()
        assert listed["distance_m"] < 1.0  # the phone's position, converted, is at the site
        area = listed["area"]
        assert area == {"lat": round(area["lat"], 2), "lon": round(area["lon"], 2)}  # no more than 2 decimals
        assert abs(area["lat"] - near[0]) < 0.011
        assert abs(area["lon"] - near[1]) < 0.011
