"""The policy's clocks: a believable visit refreshes the visit clock and a rejected one does not; the release reaches
the former holder's phone as removed and the pool's nearby at once; warnings (push, /expiring, the leads
collection); the simulation of a proposed policy; a private lead's contacts hidden from everyone but the holder and
their managers, online and in sync."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.leads.release import dates_of, release_due, warn_due
from mobile_contract.auth import Role
from mobile_contract.leads import LeadPolicy
from tests.factories import Factory, fix
from tests.leads.helpers import FAR, SHOP, Client, claim, now, pinned, pull
from tests.push.helpers import apns_token, register
from tests.tasks.helpers import assign, create_campaign


async def _check_in(client: Client, user: object, poi: UUID, at: tuple[float, float]) -> str:
    body = {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(*at, accuracy_m=8)}
    response = await client.post("/v1/visits", json=body, headers=user.headers)  # type: ignore[attr-defined]
    assert response.status_code == 201, response.text
    status: str = response.json()["check_in"]["verdict"]["status"]
    return status


async def test_a_believable_visit_refreshes_the_visit_clock_and_a_rejected_one_does_not(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    visited, faked = await factory.user(tenant), await factory.user(tenant)
    one, two = await factory.poi(tenant, *SHOP), await factory.poi(tenant, *SHOP)
    t0 = now() - timedelta(days=10)  # claimed ten days ago, visited today
    with pinned(t0):
        await claim(client, visited, one)
        await claim(client, faked, two)
    assert await _check_in(client, visited, one, SHOP) == "verified"
    assert await _check_in(client, faked, two, FAR) == "rejected"
    with pinned(now() + timedelta(seconds=2)):  # just after the check-in
        lead = (await client.get(f"/v1/leads/{one}", headers=visited.headers)).json()
    assert lead["last_visit_at"] is not None
    # The visit clock starts again today: released 15 days from now, not 5.
    assert datetime.fromisoformat(lead["release_at"]) >= now() + timedelta(days=15) - timedelta(minutes=1)
    swept = await release_due(factory.database, t0 + timedelta(days=16), only_tenant=tenant)
    assert swept.released == 1
    with pinned(t0 + timedelta(days=16)):
        assert (await client.get(f"/v1/leads/{one}", headers=visited.headers)).json()["state"] == "private"
        released = (await client.get(f"/v1/leads/{two}", headers=faked.headers)).json()
    assert (released["state"], released["holder"]) == ("pool", None)
    history = (await client.get(f"/v1/leads/{two}/history", headers=faked.headers)).json()["items"]
    assert (history[-1]["action"], history[-1]["reason"]) == ("release", "no_visit")


async def test_a_released_lead_leaves_the_holder_s_phone_and_enters_the_pool_s_nearby(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    holder, other = await factory.user(tenant), await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    t0 = now()
    with pinned(t0):
        await claim(client, holder, poi)
        before = await pull(client, holder)
    assert str(poi) in before["pois"]["upserted"]
    assert before["leads"]["upserted"][str(poi)]["state"] == "private"
    nearby = {"lat": SHOP[0], "lon": SHOP[1], "pool": "open"}
    assert str(poi) not in {
        p["id"] for p in (await client.get("/v1/pois/nearby", params=nearby, headers=other.headers)).json()["items"]
    }
    await register(client, holder, apns_token())
    assert (await release_due(factory.database, t0 + timedelta(days=46), only_tenant=tenant)).released == 1
    with pinned(t0 + timedelta(days=46)):
        after = await pull(client, holder, before["cursor"])  # type: ignore[arg-type]
    assert str(poi) in after["pois"]["removed"]
    assert str(poi) in after["leads"]["removed"]
    open_now = (await client.get("/v1/pois/nearby", params=nearby, headers=other.headers)).json()["items"]
    assert str(poi) in {p["id"] for p in open_now}
    pushes = await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND kind = 'push.deliver'", t=tenant
    )
    assert pushes == 1  # the former holder's phone is told to sync now


async def test_warnings_once_per_release_date_by_push_expiring_and_sync(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    bd = await factory.user(tenant, team_id=team)
    near, far = await factory.poi(tenant, *SHOP), await factory.poi(tenant, *SHOP)
    t0 = now()
    with pinned(t0):
        await claim(client, bd, near)
    with pinned(t0 + timedelta(days=5)):
        await claim(client, bd, far)
        cursor = (await pull(client, bd))["cursor"]
    await register(client, bd, apns_token())
    at = t0 + timedelta(days=13)  # `near` is released at t0 + 15 d, warned from t0 + 12 d
    assert await warn_due(factory.database, at, only_tenant=tenant) == 1
    assert await warn_due(factory.database, at + timedelta(hours=1), only_tenant=tenant) == 0  # once per date
    with pinned(at):
        mine = (await client.get("/v1/leads/expiring", headers=bd.headers)).json()["items"]
        team_view = (await client.get("/v1/leads/expiring", headers=sup.headers)).json()["items"]
        synced = await pull(client, bd, cursor)  # type: ignore[arg-type]
    assert [lead["id"] for lead in mine] == [str(near)]
    assert mine[0]["warning"] is True
    assert [lead["id"] for lead in team_view] == [str(near)]
    assert synced["leads"]["upserted"][str(near)]["warning"] is True
    pushes = await factory.count(
        "SELECT count(*) FROM background_jobs WHERE tenant_id = :t AND kind = 'push.deliver'", t=tenant
    )
    assert pushes == 1


async def test_the_simulation_answers_by_bd_and_changes_nothing(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    early, late = await factory.user(tenant, team_id=team, name="Early"), await factory.user(tenant, team_id=team)
    outsider = await factory.user(tenant)  # not in the supervisor's team: not in their simulation
    t0 = now()
    pois = [await factory.poi(tenant, *SHOP) for _ in range(4)]
    with pinned(t0):
        await claim(client, early, pois[0])
        await claim(client, early, pois[1])
        await claim(client, outsider, pois[3])
    with pinned(t0 + timedelta(days=5)):
        await claim(client, late, pois[2])
    body = {
        "policy": {"protection_days": 10, "no_visit_days": 10, "no_signing_days": 10, "warn_days": 6},
        "as_of": (t0 + timedelta(days=10, hours=1)).isoformat(),
    }
    response = await client.post("/v1/leads/policy/simulate", json=body, headers=sup.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["would_release"], result["would_warn"]) == (2, 1)
    by_bd = {bd["user_id"]: bd for bd in result["by_bd"]}
    assert set(by_bd) == {str(early.id), str(late.id)}
    assert sorted(by_bd[str(early.id)]["would_release"]) == sorted(map(str, pois[:2]))
    assert by_bd[str(late.id)]["would_warn"] == [str(pois[2])]
    assert (await client.post("/v1/leads/policy/simulate", json=body, headers=early.headers)).status_code == 403
    held = await factory.count("SELECT count(*) FROM pois WHERE tenant_id = :t AND holder_id IS NOT NULL", t=tenant)
    assert held == 4
    for bad in ({"policy": {}, "as_of": "2026-12-02T00:00:00"}, {"policy": {"warn_days": -1}, "as_of": body["as_of"]}):
        assert (await client.post("/v1/leads/policy/simulate", json=bad, headers=sup.headers)).status_code == 422


_DAYS = st.integers(min_value=1, max_value=60)
_VISITS = st.lists(st.tuples(st.integers(min_value=-5, max_value=40), st.booleans()), max_size=4)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(protection=_DAYS, no_visit=_DAYS, no_signing=_DAYS, extended=st.integers(0, 30), visits=_VISITS)
async def test_the_release_date_is_the_earliest_clock_pushed_back_by_extensions(
    factory: Factory, protection: int, no_visit: int, no_signing: int, extended: int, visits: list[tuple[int, bool]]
) -> None:
    """Generated policies, extensions and visits (day offsets from the claim, believable or rejected) against a
    plain model of the rule: the earliest of claim + protection, last believable visit since the claim (or the
    claim) + no_visit, claim + no_signing, each + the extended days. Visits before the claim do not count."""
    tenant = await factory.tenant()
    bd = await factory.user(tenant, login=False)
    since = now() - timedelta(days=100)
    poi = await factory.poi(tenant, *SHOP, holder_id=bd.id)
    async with factory.database.sessions() as session:
        await session.execute(
            text(
                "INSERT INTO leads (tenant_id, poi_id, state, how, since, extended_days)"
                " VALUES (:t, :p, 'private', 'claimed', :since, :ext)"
            ),
            {"t": tenant, "p": poi, "since": since, "ext": extended},
        )
        for offset, rejected in visits:
            at = since + timedelta(days=offset)
            await session.execute(
                text(
                    "INSERT INTO visits (tenant_id, id, user_id, poi_id, checked_in_at, check_in_request_hash,"
                    " check_in_fix, check_in_location, check_in_accuracy_m, check_in_is_mock, check_in_trusted_at,"
                    " check_in_received_at, check_in_status, check_in_confidence, check_in_distance_m,"
                    " check_in_reasons, status) VALUES (:t, :id, :u, :p, :at, 'x', '{}', 'SRID=4326;POINT(121 31)',"
                    " 5, false, :at, :at, :status, 1, 0, '{}', 'closed')"
                ),
                {
                    "t": tenant,
                    "id": uuid.uuid4(),
                    "u": bd.id,
                    "p": poi,
                    "at": at,
                    "status": "rejected" if rejected else "verified",
                },
            )
        await session.commit()
    policy = LeadPolicy(protection_days=protection, no_visit_days=no_visit, no_signing_days=no_signing)
    async with factory.database.sessions() as session:
        [dates] = (await dates_of(session, tenant, policy, since + timedelta(days=200))).values()
    believable = [since + timedelta(days=o) for o, rejected in visits if not rejected and o >= 0]
    visit_clock = max([since, *believable])
    expected = min(
        since + timedelta(days=protection + extended),
        visit_clock + timedelta(days=no_visit + extended),
        since + timedelta(days=no_signing + extended),
    )
    assert dates.release_at == expected
    assert dates.last_visit_at == (max(believable) if believable else None)


async def _with_contact(factory: Factory, tenant: UUID, holder: UUID | None) -> UUID:
    poi = await factory.poi(tenant, *SHOP, holder_id=holder)
    async with factory.database.sessions() as session:
        await session.execute(
            text(
                "INSERT INTO poi_contacts (tenant_id, id, poi_id, name, role, phone) "
                "VALUES (:t, :id, :p, 'Mrs Li', 'owner', '+86 138 0000 0000')"
            ),
            {"t": tenant, "id": uuid.uuid4(), "p": poi},
        )
        await session.commit()
    return poi


async def test_a_private_lead_s_contacts_are_the_holder_s_and_their_managers_only(
    factory: Factory, client: Client
) -> None:
    tenant = await factory.tenant()
    team, other_team = await factory.team(tenant), await factory.team(tenant, "Other")
    holder = await factory.user(tenant, team_id=team)
    sup = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    other_sup = await factory.user(tenant, Role.SUPERVISOR, team_id=other_team)
    ops = await factory.user(tenant, Role.OPS)
    stranger = await factory.user(tenant, team_id=team)
    private = await _with_contact(factory, tenant, holder.id)
    public = await _with_contact(factory, tenant, None)
    seen = {}
    for name, user in (("holder", holder), ("sup", sup), ("other_sup", other_sup), ("ops", ops), ("bd", stranger)):
        detail = (await client.get(f"/v1/pois/{private}", headers=user.headers)).json()
        seen[name] = detail["contacts"][0]["phone"]
        assert detail["contacts"][0]["name"] == "Mrs Li"  # the merchant and its people, without the number
        assert (await client.get(f"/v1/pois/{public}", headers=user.headers)).json()["contacts"][0]["phone"]
    number = "+86 138 0000 0000"
    assert seen == {"holder": number, "sup": number, "other_sup": None, "ops": number, "bd": None}
    # In sync: another BD with a work item on the merchant gets it without the number; the holder with it.
    [_] = await assign(client, ops, await create_campaign(client, ops), [(private, stranger.id)])
    assert (await pull(client, stranger))["pois"]["upserted"][str(private)]["contacts"][0]["phone"] is None
    assert (await pull(client, holder))["pois"]["upserted"][str(private)]["contacts"][0]["phone"] == number
