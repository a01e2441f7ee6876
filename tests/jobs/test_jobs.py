"""Jobs from dispatch to reviewed completion: the guarded lifecycle, dispatch three ways, the customer's code,
the arrival verdict, sync, and the bad-input and other-tenant cases."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from mobile_contract.auth import Role
from tests.factories import Factory, fix
from tests.jobs.helpers import SITE, arrived_job, create_job, job_body, sent_code, step, technician
from tests.media.helpers import reencoded, site_photo, upload

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_a_job_from_creation_to_approval_with_code_proof(
    factory: Factory, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ops, tech, job_id = await arrived_job(factory, client)
    job = (await client.get(f"/v1/jobs/{job_id}", headers=tech.headers)).json()
    assert job["status"] == "arrived"
    assert job["arrival"]["status"] == "verified"
    early = await step(client, tech, job_id, "complete")
    assert early.status_code == 409
    assert early.json()["code"] == "verification_incomplete"
    assert early.json()["missing"] == ["customer code not verified"]
    code = await sent_code(factory.database, tech.tenant_id)
    assert code not in caplog.text  # sent to the customer, never written to a log
    assert await factory.count("SELECT count(*) FROM background_jobs WHERE payload::text LIKE :c", c=f"%{code}%") == 0
    verified = await client.post(f"/v1/jobs/{job_id}/code", json={"code": code}, headers=tech.headers)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verification"
    assert verified.json()["code_verified"] is True
    done = await step(client, tech, job_id, "complete")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    approved = await step(client, ops, job_id, "approve")
    assert approved.json()["status"] == "approved"
    trail = [(e["action"], e["from_status"], e["to_status"]) for e in approved.json()["events"]]
    assert trail == [
        ("create", None, "new"),
        ("assign", "new", "assigned"),
        ("accept", "assigned", "accepted"),
        ("schedule", "accepted", "scheduled"),
        ("arrive", "scheduled", "arrived"),
        ("verify", "arrived", "verification"),
        ("complete", "verification", "completed"),
        ("approve", "completed", "approved"),
    ]
    assert "code" not in str(approved.json()["events"][5]["data"].get("code", ""))  # never the code itself


async def test_the_code_locks_after_five_wrong_tries_and_never_fits_another_job(
    factory: Factory, client: Client
) -> None:
    ops, tech, job_id = await arrived_job(factory, client)
    right = await sent_code(factory.database, tech.tenant_id)
    # A second job of the same technician gets its own code; the first job's code does not open it.
    second = await create_job(client, ops)
    await client.post(f"/v1/jobs/{second['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    await step(client, tech, second["id"], "accept")
    await step(client, tech, second["id"], "schedule", appointment_at=datetime.now(UTC).isoformat())
    await step(client, tech, second["id"], "arrive", fix=fix(*SITE))
    other_code = await sent_code(factory.database, tech.tenant_id)
    if other_code != right:
        crossed = await client.post(f"/v1/jobs/{job_id}/code", json={"code": other_code}, headers=tech.headers)
        assert crossed.json()["code"] == "code_invalid"
    wrong = "000000" if right != "000000" else "111111"
    answers = [
        await client.post(f"/v1/jobs/{job_id}/code", json={"code": wrong}, headers=tech.headers) for _ in range(6)
    ]
    codes = [a.json()["code"] for a in answers]
    assert codes[-1] == "code_attempts_exceeded"
    assert answers[-1].status_code == 423
    assert "code_invalid" in codes
    locked = await client.post(f"/v1/jobs/{job_id}/code", json={"code": right}, headers=tech.headers)
    assert locked.status_code == 423  # even the right code, once locked
    # Dispatch sends a new code (a minute after the last one: move the code's clock): it works, the old one not.
    await _age_code(factory, job_id)
    assert (await client.post(f"/v1/jobs/{job_id}/code/resend", headers=ops.headers)).status_code == 204
    fresh = await sent_code(factory.database, tech.tenant_id)
    ok = await client.post(f"/v1/jobs/{job_id}/code", json={"code": fresh}, headers=tech.headers)
    assert ok.status_code == 200, ok.text
    for bad in ({"code": "12345"}, {"code": "abcdef"}, {}, {"code": 123456}):
        assert (await client.post(f"/v1/jobs/{job_id}/code", json=bad, headers=tech.headers)).status_code == 422


async def _age_code(factory: Factory, job_id: str) -> None:
    async with factory.database.sessions() as session:
        await session.execute(
            text("UPDATE job_codes SET issued_at = issued_at - interval '2 minutes' WHERE job_id = :j"), {"j": job_id}
        )
        await session.commit()


async def test_transitions_out_of_order_are_refused_and_change_nothing(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops)
    await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    arrive = await step(client, tech, job["id"], "arrive", fix=fix(*SITE))
    assert arrive.status_code == 409
    assert arrive.json()["code"] == "invalid_transition"
    assert set(arrive.json()["allowed_actions"]) >= {"accept", "refuse"}
    approve = await step(client, tech, job["id"], "approve")
    assert approve.status_code == 403  # not a reviewer
    no_reason = await step(client, tech, job["id"], "refuse")
    assert no_reason.status_code == 422
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=tech.headers)).json()["status"] == "assigned"
    refused = await step(client, tech, job["id"], "refuse", reason="No ladder long enough for this site")
    assert refused.json()["status"] == "new"
    assert refused.json()["assignee_id"] is None
    assert refused.json()["events"][-1]["reason"] == "No ladder long enough for this site"
    bad_step = await client.post(f"/v1/jobs/{job['id']}/steps/teleport", json={}, headers=ops.headers)
    assert bad_step.status_code in (404, 422)


async def test_no_unassigning_once_work_has_started(factory: Factory, client: Client) -> None:
    ops, tech, job_id = await arrived_job(factory, client, job_type="measure")
    tenant = (await client.get("/v1/me", headers=ops.headers)).json()["tenant_id"]
    other = await technician(factory, client, ops, uuid.UUID(tenant))
    moved = await client.post(f"/v1/jobs/{job_id}/assign", json={"technician_id": str(other.id)}, headers=ops.headers)
    assert moved.status_code == 409
    assert moved.json()["code"] == "invalid_transition"
    held = await step(client, tech, job_id, "hold", reason="Customer asked to come back after lunch")
    assert held.json()["status"] == "on_hold"
    resumed = await step(client, tech, job_id, "resume")
    assert resumed.json()["status"] == "arrived"
    done = await step(client, tech, job_id, "complete")
    assert done.status_code == 200, done.text  # a measurement needs only the verified arrival


async def test_an_arrival_far_from_the_site_is_kept_but_does_not_prove_the_job(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops, job_type="measure")
    await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    await step(client, tech, job["id"], "accept")
    await step(client, tech, job["id"], "schedule", appointment_at=datetime.now(UTC).isoformat())
    far = await step(client, tech, job["id"], "arrive", fix=fix(SITE[0] + 0.01, SITE[1]))
    assert far.status_code == 200
    assert far.json()["arrival"]["status"] == "rejected"
    assert far.json()["events"][-1]["data"]["verdict"]["reasons"] == ["outside_geofence"]
    refused = await step(client, tech, job["id"], "complete")
    assert refused.json()["missing"] == ["arrival at the site not verified"]


async def test_automatic_dispatch_explains_itself_and_dry_run_changes_nothing(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    near = await technician(factory, client, ops, tenant, at=(SITE[0] + 0.01, SITE[1]), name="Near")
    far = await technician(factory, client, ops, tenant, at=(SITE[0] + 0.2, SITE[1]), name="Far")
    unskilled = await technician(factory, client, ops, tenant, skills=["plumbing"], name="Unskilled")
    elsewhere = await technician(factory, client, ops, tenant, regions=["pudong"], name="Elsewhere")
    off = await technician(factory, client, ops, tenant, available=False, name="Off")
    full = await technician(factory, client, ops, tenant, cap=0, name="Full")
    job = await create_job(client, ops)
    dry = await client.post(f"/v1/jobs/{job['id']}/dispatch", json={"dry_run": True}, headers=ops.headers)
    assert dry.status_code == 200, dry.text
    decision = dry.json()
    assert decision["chosen"] == str(near.id)
    assert "Near" in decision["explanation"]
    reasons = {c["technician_id"]: c["reasons"] for c in decision["candidates"]}
    assert reasons[str(unskilled.id)] == ["skills"]
    assert reasons[str(elsewhere.id)] == ["region"]
    assert reasons[str(off.id)] == ["unavailable"]
    assert reasons[str(full.id)] == ["daily_cap"]
    assert reasons[str(far.id)] == []
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=ops.headers)).json()["status"] == "new"
    real = await client.post(f"/v1/jobs/{job['id']}/dispatch", json={}, headers=ops.headers)
    assert real.json()["chosen"] == str(near.id)
    assigned = (await client.get(f"/v1/jobs/{job['id']}", headers=ops.headers)).json()
    assert assigned["status"] == "assigned"
    assert assigned["assignee_id"] == str(near.id)
    assert assigned["events"][-1]["data"]["dispatch"] == "auto"
    manual = await client.post(
        f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(unskilled.id)}, headers=ops.headers
    )
    assert manual.status_code == 409
    assert manual.json()["code"] == "not_eligible"


async def test_two_grabs_of_one_job_exactly_one_wins(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    techs = [await technician(factory, client, ops, tenant) for _ in range(4)]
    job = await create_job(client, ops, dispatch="pool")
    assert job["status"] == "pooled"
    nearby = await client.get("/v1/jobs/pool", params={"lat": SITE[0], "lon": SITE[1]}, headers=techs[0].headers)
    assert [p["id"] for p in nearby.json()] == [job["id"]]
    answers = await asyncio.gather(*(client.post(f"/v1/jobs/{job['id']}/grab", headers=t.headers) for t in techs))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"already_taken"}
    winner = next(a.json() for a in answers if a.status_code == 200)
    assert winner["status"] == "accepted"
    assert (
        await factory.count(
            "SELECT count(*) FROM job_events WHERE job_id = :j AND action = 'grab'", j=uuid.UUID(job["id"])
        )
    ) == 1


async def test_another_tenants_job_is_not_found_anywhere(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    job = await create_job(client, ops, dispatch="pool")
    other = await factory.tenant()
    other_ops = await factory.user(other, Role.OPS)
    other_tech = await technician(factory, client, other_ops, other)
    for user in (other_ops, other_tech):
        assert (await client.get(f"/v1/jobs/{job['id']}", headers=user.headers)).status_code == 404
        assert (await step(client, user, job["id"], "cancel", reason="not mine")).status_code == 404
    assert (await client.post(f"/v1/jobs/{job['id']}/grab", headers=other_tech.headers)).status_code == 404
    assert (await client.post(f"/v1/jobs/{job['id']}/dispatch", json={}, headers=other_ops.headers)).status_code == 404
    assert (
        await client.post(
            f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(other_tech.id)}, headers=other_ops.headers
        )
    ).status_code == 404
    assert (
        await client.post(f"/v1/jobs/{job['id']}/code", json={"code": "123456"}, headers=other_tech.headers)
    ).status_code == 404
    # Ids are keyed within the tenant: the other tenant's create under this id is simply a new job of its own.
    reused = await client.post("/v1/jobs", json=job_body(id=job["id"]), headers=other_ops.headers)
    assert reused.status_code == 201, reused.text
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=ops.headers)).json()["customer_name"] == job[
        "customer_name"
    ]
    assert (
        await client.put(f"/v1/technicians/{other_tech.id}/profile", json={}, headers=ops.headers)
    ).status_code == 404


async def test_create_bad_input_and_idempotency(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await factory.user(tenant, Role.TECHNICIAN)
    now = datetime.now(UTC)
    for body in (
        job_body(job_type="teleport"),
        job_body(window_end=(now - timedelta(days=2)).isoformat()),
        job_body(location={"lat": 100, "lon": 0}),
        job_body(customer_phone="call me"),
        job_body(priority=9),
        job_body(required_skills=["Fiber Optics"]),
        job_body(dispatch="everyone"),
        job_body(geofence_radius_m=1),
        job_body(extra=True),
    ):
        response = await client.post("/v1/jobs", json=body, headers=ops.headers)
        assert response.status_code == 422, body
    assert (await client.post("/v1/jobs", json=job_body(), headers=tech.headers)).status_code == 403
    body = job_body()
    first = await client.post("/v1/jobs", json=body, headers=ops.headers)
    again = await client.post("/v1/jobs", json=body, headers=ops.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    changed = await client.post("/v1/jobs", json={**body, "priority": 5}, headers=ops.headers)
    assert changed.status_code == 409


async def test_jobs_sync_to_the_technician_and_transitions_are_mutations(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    other = await technician(factory, client, ops, tenant)
    job = await create_job(client, ops)
    await client.post(f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    first = (await client.post("/v1/sync/pull", json={}, headers=tech.headers)).json()
    assert [j["id"] for j in first["changes"]["jobs"]["upserted"]] == [job["id"]]
    now = datetime.now(UTC)
    queued = [
        {"id": 1, "name": "job.accept", "args": {"job_id": job["id"]}, "created_at": now.isoformat()},
        {
            "id": 2,
            "name": "job.schedule",
            "created_at": now.isoformat(),
            "args": {"job_id": job["id"], "appointment_at": (now + timedelta(hours=1)).isoformat()},
        },
        {
            "id": 3,
            "name": "job.arrive",
            "args": {"job_id": job["id"], "fix": fix(*SITE)},
            "created_at": now.isoformat(),
        },
    ]
    results = (
        await client.post("/v1/sync/push", json={"client_id": "tech-phone", "mutations": queued}, headers=tech.headers)
    ).json()["results"]
    assert [r["status"] for r in results] == ["applied"] * 3, results
    code = await sent_code(factory.database, tech.tenant_id)
    wrong = {
        "id": 4,
        "name": "job.verify",
        "args": {"job_id": job["id"], "code": "999999" if code != "999999" else "888888"},
        "created_at": now.isoformat(),
    }
    right = {"id": 5, "name": "job.verify", "args": {"job_id": job["id"], "code": code}, "created_at": now.isoformat()}
    done = {"id": 6, "name": "job.complete", "args": {"job_id": job["id"]}, "created_at": now.isoformat()}
    results = (
        await client.post(
            "/v1/sync/push", json={"client_id": "tech-phone", "mutations": [wrong, right, done]}, headers=tech.headers
        )
    ).json()["results"]
    assert [(r["status"], r.get("code")) for r in results] == [
        ("rejected", "code_invalid"),
        ("applied", None),
        ("applied", None),
    ]
    later = (await client.post("/v1/sync/pull", json={"cursor": first["cursor"]}, headers=tech.headers)).json()
    assert later["changes"]["jobs"]["upserted"][0]["status"] == "completed"
    # A job taken away reaches the phone as removed.
    second = await create_job(client, ops)
    await client.post(f"/v1/jobs/{second['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    cursor = (await client.post("/v1/sync/pull", json={"cursor": later["cursor"]}, headers=tech.headers)).json()[
        "cursor"
    ]
    await client.post(f"/v1/jobs/{second['id']}/assign", json={"technician_id": str(other.id)}, headers=ops.headers)
    moved = (await client.post("/v1/sync/pull", json={"cursor": cursor}, headers=tech.headers)).json()
    assert moved["changes"]["jobs"]["removed"] == [second["id"]]


async def _back_date(factory: Factory, job_id: str, hours: float) -> None:
    """Move the code's and the arrival's clock `hours` back: as if the technician had arrived that long ago."""
    earlier = datetime.now(UTC) - timedelta(hours=hours)
    async with factory.database.sessions() as session:
        await session.execute(
            text(
                "UPDATE job_codes SET issued_at = :t, expires_at = CAST(:t AS timestamptz) + interval '4 hours'"
                " WHERE job_id = :j"
            ),
            {"j": job_id, "t": earlier},
        )
        await session.execute(  # the arrival's `trusted_at` is kept as ISO text in the evidence
            text(
                "UPDATE jobs SET arrival_visit = jsonb_set(arrival_visit, '{trusted_at}', to_jsonb(CAST(:t AS text)))"
                " WHERE id = :j"
            ),
            {"j": job_id, "t": earlier.isoformat()},
        )
        await session.commit()


async def test_an_expired_code_is_refused_but_one_typed_in_time_offline_counts(
    factory: Factory, client: Client
) -> None:
    _, tech, job_id = await arrived_job(factory, client)
    code = await sent_code(factory.database, tech.tenant_id)
    await _back_date(factory, job_id, 5)  # issued 5 hours ago: expired an hour ago
    late = await client.post(f"/v1/jobs/{job_id}/code", json={"code": code}, headers=tech.headers)
    assert late.status_code == 410
    assert late.json()["code"] == "code_expired"
    # A claim from before the code existed is no claim: it is judged as typed when the code was issued at the
    # earliest, so it does not revive an expired code either (issue 8: `at` 2000-01-01 was accepted).
    ancient = {"code": code, "at": "2000-01-01T00:00:00Z"}
    assert (await client.post(f"/v1/jobs/{job_id}/code", json=ancient, headers=tech.headers)).status_code == 410
    # Typed in at the site two hours ago, while the code was valid, and synced only now: it counts.
    typed_at = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    queued = {
        "id": 1,
        "name": "job.verify",
        "args": {"job_id": job_id, "code": code, "at": typed_at},
        "created_at": typed_at,
    }
    [result] = (
        await client.post("/v1/sync/push", json={"client_id": "t", "mutations": [queued]}, headers=tech.headers)
    ).json()["results"]
    assert result["status"] == "applied", result
    assert result["result"]["code_verified"] is True


async def test_an_offline_code_entry_cannot_claim_a_time_before_the_code_was_issued(
    factory: Factory, client: Client
) -> None:
    _, tech, job_id = await arrived_job(factory, client)
    code = await sent_code(factory.database, tech.tenant_id)
    issued_at = await factory.count(
        "SELECT extract(epoch FROM issued_at)::bigint FROM job_codes WHERE job_id = :j", j=job_id
    )
    answer = await client.post(
        f"/v1/jobs/{job_id}/code", json={"code": code, "at": "2000-01-01T00:00:00Z"}, headers=tech.headers
    )
    assert answer.status_code == 200, answer.text
    verified_at = await factory.count(
        "SELECT extract(epoch FROM code_verified_at)::bigint FROM jobs WHERE id = :j", j=uuid.UUID(job_id)
    )
    assert verified_at >= issued_at  # the claim was moved up to the code's issue, never believed
    verify = answer.json()["events"][-1]
    assert verify["action"] == "verify"


async def test_technicians_list_their_jobs_and_dispatchers_their_scope(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant)
    other = await technician(factory, client, ops, tenant)
    mine = await create_job(client, ops)
    theirs = await create_job(client, ops)
    await client.post(f"/v1/jobs/{mine['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    await client.post(f"/v1/jobs/{theirs['id']}/assign", json={"technician_id": str(other.id)}, headers=ops.headers)
    listed = (await client.get("/v1/jobs", headers=tech.headers)).json()["items"]
    assert [j["id"] for j in listed] == [mine["id"]]
    everyone = (await client.get("/v1/jobs", headers=ops.headers)).json()["items"]
    assert {j["id"] for j in everyone} == {mine["id"], theirs["id"]}
    assert (await client.get(f"/v1/jobs/{theirs['id']}", headers=tech.headers)).status_code == 404
    assert (await client.get("/v1/jobs", params={"status": "flying"}, headers=tech.headers)).status_code == 422


async def test_photo_proof_counts_only_photos_not_reused_from_another_job(factory: Factory, client: Client) -> None:
    ops, tech, job_id = await arrived_job(factory, client, job_type="repair")  # 1 photo + a verified arrival
    first_photo = site_photo(seed=41)
    stored = await upload(client, tech, uuid.UUID(job_id), first_photo)
    assert stored.status_code == 201, stored.text
    assert (await client.get(f"/v1/jobs/{job_id}", headers=tech.headers)).json()["proof_photos"] == 1
    assert (await step(client, tech, job_id, "complete")).status_code == 200
    # The next repair: the same picture, re-encoded and resized, is flagged and proves nothing.
    second = await create_job(client, ops, job_type="repair")
    await client.post(f"/v1/jobs/{second['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers)
    await step(client, tech, second["id"], "accept")
    await step(client, tech, second["id"], "schedule", appointment_at=datetime.now(UTC).isoformat())
    await step(client, tech, second["id"], "arrive", fix=fix(*SITE))
    reused = await upload(client, tech, uuid.UUID(second["id"]), reencoded(first_photo))
    assert reused.status_code == 201
    assert "reused_photo" in reused.json()["flags"]
    refused = await step(client, tech, second["id"], "complete")
    assert refused.status_code == 409
    assert refused.json()["missing"] == ["photos: 0 of 1"]
    # The reviewer sees the flagged evidence, and where it came from.
    review = (await client.get(f"/v1/jobs/{second['id']}/photos", headers=ops.headers)).json()
    assert review["items"][0]["reused_from"]["job_id"] == job_id
