"""GET /v1/tracking/exceptions: the day's flagged check-ins, short dwells, long gaps and reused photos in the
caller's scope, most serious first; nothing of another team or tenant; bad dates and zones are 422."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.queue.service import Registry
from backend.queue.worker import run_due
from backend.tracking import derived, exceptions
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser, fix
from tests.jobs.helpers import SITE, create_job, step, technician
from tests.media.helpers import make_job, reencoded, site_photo, upload

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)
URL = "/v1/tracking/exceptions"


async def _check_in(client: Client, user: FieldUser, poi: uuid.UUID, the_fix: dict[str, Any]) -> str:
    answer = await client.post(
        "/v1/visits", json={"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": the_fix}, headers=user.headers
    )
    assert answer.status_code == 201, answer.text
    visit_id: str = answer.json()["id"]
    return visit_id


def _at(moment: datetime, lat: float, lon: float) -> dict[str, Any]:
    """A fix captured at `moment` (no monotonic age: the server takes the phone's clock, judged with less trust)."""
    body = {"id": str(uuid.uuid4()), **fix(lat, lon), "captured_at": moment.isoformat()}
    body.pop("age_ms", None)
    return body


async def test_the_days_exceptions_in_scope_most_serious_first(client: Client, factory: Factory) -> None:
    tenant, other_tenant = await factory.tenant(), await factory.tenant()
    team, other_team = await factory.team(tenant), await factory.team(tenant)
    boss = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    bd = await factory.user(tenant, Role.BD, team_id=team, name="Ann")
    bo = await factory.user(tenant, Role.BD, team_id=team, name="Bo")
    tech = await factory.user(tenant, Role.TECHNICIAN, team_id=team, name="Tom")
    outsider = await factory.user(tenant, Role.BD, team_id=other_team)
    stranger = await factory.user(other_tenant, Role.BD)
    poi = await factory.poi(tenant, *SHOP, name="Noodle Bar", radius_m=50)

    rejected = await _check_in(client, bd, poi, fix(*SHOP, is_mock=True))
    uncertain = await _check_in(client, bo, poi, fix(*SHOP, accuracy_m=70))  # half its disc in the fence: uncertain
    short = await _check_in(client, bd, poi, fix(*SHOP))
    await _check_in(client, bd, poi, fix(*SHOP))  # verified: not an exception
    await _check_in(client, outsider, poi, fix(*SHOP, is_mock=True))  # another team
    stranger_poi = await factory.poi(other_tenant, *SHOP)
    await _check_in(client, stranger, stranger_poi, fix(*SHOP, is_mock=True))  # another tenant
    # The trail judgment of check-ins marks a check-in followed by leaving at once with this reason.
    async with factory.database.sessions() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE visits SET check_in_reasons = array_append(check_in_reasons, 'short_dwell') "
                 "WHERE tenant_id = :t AND id = :v"),
            {"t": tenant, "v": uuid.UUID(short)},
        )  # fmt: skip
        await session.commit()

    # A reused photo: the tech's job photo was first sent by someone else for another job.
    first_job, second_job = await make_job(factory, tenant, outsider), await make_job(factory, tenant, tech)
    original = site_photo(7)
    assert (await upload(client, outsider, first_job, original)).status_code == 201
    reused = await upload(client, tech, second_job, reencoded(original))
    assert reused.status_code == 201, reused.text
    assert "reused_photo" in reused.json()["flags"]

    # A long gap in yesterday's trail: 10:00, 10:05, then nothing until 11:20 (UTC).
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    trail = [_at(yesterday + timedelta(minutes=m), *SHOP) for m in (0, 5, 80, 85)]
    posted = await client.post(
        "/v1/tracking/positions", json={"device_id": "p", "positions": trail}, headers=bd.headers
    )
    assert posted.json()["accepted"] == 4, posted.text
    derive = Registry()
    derive.register(derived.DERIVE_DAY, derived.handle_derive_day)
    assert await run_due(factory.database, derive, tenant_id=tenant) == 1  # the day's stops, trips and gaps

    today = await client.get(URL, headers=boss.headers)
    assert today.status_code == 200, today.text
    items = today.json()["items"]
    got = [(item["kind"], item["severity"], item.get("photo_id") or item.get("visit_id")) for item in items]
    assert set(got) == {
        ("flagged_check_in", 1, rejected),
        ("reused_photo", 1, reused.json()["id"]),
        ("flagged_check_in", 2, uncertain),
        ("short_dwell", 2, short),
    }, items
    assert [item["severity"] for item in items] == sorted(item["severity"] for item in items)
    assert {item["user_id"] for item in items} == {str(bd.id), str(bo.id), str(tech.id)}
    flagged = next(item for item in items if item.get("visit_id") == rejected)
    assert flagged["point"] == {"lat": SHOP[0], "lon": SHOP[1]}
    assert "mock_location" in flagged["reasons"]

    before = await client.get(URL, params={"date": yesterday.date().isoformat(), "tz": "UTC"}, headers=boss.headers)
    gaps = [item for item in before.json()["items"] if item["kind"] == "long_gap"]
    assert len(gaps) == 1
    assert gaps[0]["user_id"] == str(bd.id)
    assert gaps[0]["at"].startswith(f"{yesterday.date().isoformat()}T10:05")
    assert gaps[0]["ends_at"].startswith(f"{yesterday.date().isoformat()}T11:20")
    assert gaps[0]["reasons"] == ["unknown"]
    assert gaps[0]["point"] == {"lat": SHOP[0], "lon": SHOP[1]}  # where the trail fell silent

    # The BD sees their own exceptions only; another tenant's supervisor sees none of these.
    own = await client.get(URL, headers=bd.headers)
    assert {item["user_id"] for item in own.json()["items"]} == {str(bd.id)}
    foreign = await factory.user(other_tenant, Role.SUPERVISOR, scope="all")
    theirs = await client.get(URL, headers=foreign.headers)
    assert {item["user_id"] for item in theirs.json()["items"]} <= {str(stranger.id)}


async def test_bad_dates_and_zones_are_422(client: Client, factory: Factory) -> None:
    tenant = await factory.tenant()
    boss = await factory.user(tenant, Role.SUPERVISOR)
    for params in ({"date": "2026-13-01"}, {"date": "yesterday"}, {"tz": "Mars/Olympus"}, {"date": "20261201"}):
        answer = await client.get(URL, params=params, headers=boss.headers)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["code"] == "validation_failed"
    assert (await client.get(URL)).status_code == 401


@given(day=st.dates(), zone=st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York", "Europe/London"]))
def test_a_day_is_local_midnight_to_midnight(day: Any, zone: str) -> None:
    local, tz, start, end = exceptions.day_bounds(day.isoformat(), zone, datetime.now(UTC))
    assert local == day
    assert start.astimezone(tz).date() == day
    assert start.astimezone(tz).hour == 0
    assert 23 * 3600 <= (end - start).total_seconds() <= 25 * 3600


async def test_a_rejected_arrival_is_an_exception_and_the_job_is_open_in_the_live_view(
    client: Client, factory: Factory
) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await technician(factory, client, ops, tenant, name="Tom")
    job = await create_job(client, ops)
    assigned = await client.post(
        f"/v1/jobs/{job['id']}/assign", json={"technician_id": str(tech.id)}, headers=ops.headers
    )
    assert assigned.status_code == 200, assigned.text
    assert (await step(client, tech, job["id"], "accept")).status_code == 200
    arrived = await step(client, tech, job["id"], "arrive", fix=fix(*SITE, is_mock=True))
    assert arrived.status_code == 200, arrived.text

    items = (await client.get(URL, headers=ops.headers)).json()["items"]
    assert [(item["kind"], item["severity"], item["job_id"], item["title"]) for item in items] == [
        ("flagged_check_in", 1, job["id"], "Arrival at Chen Hui: rejected")
    ]
    assert "mock_location" in items[0]["reasons"]
    assert items[0]["point"] == {"lat": SITE[0], "lon": SITE[1]}

    people = (await client.get("/v1/tracking/live", headers=ops.headers)).json()["items"]
    on_site = next(person for person in people if person["user_id"] == str(tech.id))
    assert on_site["open_job"] == {
        "id": job["id"],
        "status": "arrived",
        "customer_name": "Chen Hui",
        "address": "88 Huaihai Middle Rd, Huangpu",
    }
