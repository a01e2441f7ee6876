"""GET /v1/tracking/live: everyone in the caller's scope with their newest fix, state, battery, open visit."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.tracking import live
from geo.crs import Crs, from_wgs84
from mobile_contract import tracking as wire
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser, fix

SHOP = (31.2304, 121.4737)
Client = AsyncTestClient  # type: ignore[type-arg]


async def _report(client: Client, user: FieldUser, lat: float, lon: float, **extra: Any) -> None:
    body = {"device_id": "p", "positions": [{"id": str(uuid.uuid4()), **fix(lat, lon, ago_s=5), **extra}]}
    answer = await client.post("/v1/tracking/positions", json=body, headers=user.headers)
    assert answer.status_code == 200, answer.text


def _by_user(answer: Any) -> dict[str, dict[str, Any]]:
    return {item["user_id"]: item for item in answer.json()["items"]}


async def test_a_supervisor_sees_their_team_and_nobody_else(client: Client, factory: Factory) -> None:
    tenant, other_tenant = await factory.tenant(), await factory.tenant()
    team, other_team = await factory.team(tenant), await factory.team(tenant)
    boss = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    walker = await factory.user(tenant, Role.BD, team_id=team, name="Ann Walker")
    sitter = await factory.user(tenant, Role.BD, team_id=team, name="Bo Sitter")
    silent = await factory.user(tenant, Role.BD, team_id=team, name="Cy Silent")
    elsewhere = await factory.user(tenant, Role.BD, team_id=other_team)
    stranger = await factory.user(other_tenant, Role.BD)
    await _report(client, walker, *SHOP, speed_mps=1.4, battery=71, charging=False)
    await _report(client, sitter, 31.24, 121.48, speed_mps=0.1, battery=15, charging=True)
    await _report(client, elsewhere, *SHOP)
    await _report(client, stranger, *SHOP)

    answer = await client.get("/v1/tracking/live", headers=boss.headers)
    assert answer.status_code == 200, answer.text
    people = _by_user(answer)
    assert set(people) == {str(u.id) for u in (boss, walker, sitter, silent)}
    assert people[str(walker.id)]["state"] == "moving"
    assert people[str(walker.id)]["battery"] == 71
    assert people[str(walker.id)]["position"]["point"] == {"lat": SHOP[0], "lon": SHOP[1]}
    assert 0 <= people[str(walker.id)]["position"]["age_s"] < 120
    assert people[str(sitter.id)]["state"] == "stopped"
    assert people[str(sitter.id)]["charging"] is True
    assert people[str(silent.id)] == {
        "user_id": str(silent.id),
        "display_name": "Cy Silent",
        "role": "bd",
        "team_id": str(team),
        "state": "offline",
        "position": None,
        "battery": None,
        "charging": None,
        "open_visit": None,
        "open_job": None,
    }
    assert answer.json()["offline_after_s"] == live.OFFLINE_AFTER_S


async def test_a_bd_sees_only_themself(client: Client, factory: Factory) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    bd = await factory.user(tenant, Role.BD, team_id=team)
    colleague = await factory.user(tenant, Role.BD, team_id=team)
    await _report(client, bd, *SHOP)
    await _report(client, colleague, *SHOP)
    answer = await client.get("/v1/tracking/live", headers=bd.headers)
    assert list(_by_user(answer)) == [str(bd.id)]


async def test_the_open_visit_and_positions_in_the_callers_crs(client: Client, factory: Factory) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    boss = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    bd = await factory.user(tenant, Role.BD, team_id=team)
    poi = await factory.poi(tenant, *SHOP, name="Noodle Bar")
    visit = await client.post(
        "/v1/visits",
        json={"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(*SHOP, accuracy_m=8)},
        headers=bd.headers,
    )
    assert visit.status_code == 201, visit.text
    await _report(client, bd, *SHOP)
    answer = await client.get("/v1/tracking/live", params={"crs": "gcj02"}, headers=boss.headers)
    person = _by_user(answer)[str(bd.id)]
    assert person["open_visit"]["poi_name"] == "Noodle Bar"
    assert person["open_visit"]["id"] == visit.json()["id"]
    assert person["open_visit"]["check_in_status"] == "verified"
    lat, lon = from_wgs84(*SHOP, Crs.GCJ02)
    assert person["position"]["point"] == {"lat": round(lat, 7), "lon": round(lon, 7)}


async def test_bad_input_and_no_token(client: Client, factory: Factory) -> None:
    tenant = await factory.tenant()
    boss = await factory.user(tenant, Role.SUPERVISOR)
    assert (await client.get("/v1/tracking/live")).status_code == 401
    bad = await client.get("/v1/tracking/live", params={"crs": "mercator"}, headers=boss.headers)
    assert bad.status_code in (400, 422)
    assert bad.headers["content-type"].startswith("application/problem+json")


@given(
    age=st.one_of(st.none(), st.floats(min_value=0, max_value=10 * live.OFFLINE_AFTER_S)),
    speed=st.one_of(st.none(), st.floats(min_value=0, max_value=60)),
    activity=st.one_of(st.none(), st.sampled_from(["still", "walking", "in_vehicle", "unknown", "tilting"])),
)
def test_the_state_rule(age: float | None, speed: float | None, activity: str | None) -> None:
    state = live.live_state(age, speed, activity)
    if age is None or age > live.OFFLINE_AFTER_S:
        assert state is wire.LiveState.OFFLINE
    elif speed is not None:
        assert (state is wire.LiveState.MOVING) == (speed >= live.MOVING_FROM_MPS)
    else:
        assert (state is wire.LiveState.MOVING) == (activity in live.MOVING_ACTIVITIES)
