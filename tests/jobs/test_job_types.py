"""Job types as tenant configuration: ops and admins add them and change what proves them done; a job keeps the
policy it was created with; another tenant's types are not ours; the permission table decides who may."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from mobile_contract.auth import Role
from tests.factories import Factory

Client = AsyncTestClient  # type: ignore[type-arg]

BODY: dict[str, Any] = {
    "key": "meter_reading",
    "name": "Meter reading",
    "policy": {"code": False, "location": True, "photos": 2},
}


async def test_a_job_type_is_added_replayed_changed_and_kept_by_its_jobs(factory: Factory, client: Client) -> None:
    tenant, other = await factory.tenant(), await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    their_ops = await factory.user(other, Role.OPS)
    created = await client.post("/v1/job-types", json=BODY, headers=ops.headers)
    assert created.status_code == 201, created.text
    assert created.json() == BODY
    again = await client.post("/v1/job-types", json=BODY, headers=ops.headers)
    assert again.status_code == 200
    clash = await client.post("/v1/job-types", json={**BODY, "name": "Other"}, headers=ops.headers)
    assert clash.status_code == 409
    assert clash.json()["code"] == "idempotency_conflict"
    keys = [t["key"] for t in (await client.get("/v1/job-types", headers=ops.headers)).json()]
    assert "meter_reading" in keys
    assert "meter_reading" not in [
        t["key"] for t in (await client.get("/v1/job-types", headers=their_ops.headers)).json()
    ]
    # The same key in another tenant is that tenant's own type; ours is not theirs to change.
    assert (
        await client.patch("/v1/job-types/meter_reading", json={"name": "X"}, headers=their_ops.headers)
    ).status_code == 404
    assert (
        await client.post("/v1/job-types", json={**BODY, "name": "Theirs"}, headers=their_ops.headers)
    ).status_code == 201
    changed = await client.patch(
        "/v1/job-types/meter_reading",
        json={"policy": {"code": True, "location": True, "photos": 0}},
        headers=ops.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["policy"] == {"code": True, "location": True, "photos": 0}
    assert changed.json()["name"] == "Meter reading"
    assert (await client.post("/v1/job-types", json={**BODY, "key": "x_y"}, headers=bd.headers)).status_code == 403
    assert (
        await client.patch("/v1/job-types/meter_reading", json={"name": "X"}, headers=bd.headers)
    ).status_code == 403


async def test_bad_job_types_are_refused(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    for bad in (
        {**BODY, "key": "Meter Reading"},
        {**BODY, "key": ""},
        {**BODY, "name": ""},
        {**BODY, "policy": {"code": False, "location": True, "photos": -1}},
        {**BODY, "policy": {"code": False, "location": True, "photos": 99}},
        {**BODY, "extra": 1},
    ):
        answer = await client.post("/v1/job-types", json=bad, headers=ops.headers)
        assert answer.status_code == 422, (bad, answer.text)
    assert (await client.patch("/v1/job-types/nope", json={"name": "X"}, headers=ops.headers)).status_code == 404
    assert (await client.patch("/v1/job-types/BAD KEY", json={"name": "X"}, headers=ops.headers)).status_code in (
        400,
        404,
        422,
    )


async def test_who_manages_job_types_is_the_tenants_permission_table(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    ops = await factory.user(tenant, Role.OPS)
    changed = await client.put(
        "/v1/admin/permissions",
        json={"features": [{"feature": "manage_job_types", "roles": ["admin"]}]},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await client.post("/v1/job-types", json=BODY, headers=ops.headers)).status_code == 403
    assert (await client.post("/v1/job-types", json=BODY, headers=admin.headers)).status_code == 201
