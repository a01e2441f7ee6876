"""A signing event from an integration wins the lead: locked to its holder, exempt from the release sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.leads.release import release_due
from mobile_contract.auth import Role
from tests.events.helpers import event_body, held_clock, integration
from tests.factories import Factory
from tests.leads.helpers import SHOP, Client, claim


async def test_a_signing_event_wins_the_lead_and_stops_its_release(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *SHOP)
    assert (await claim(client, bd, poi)).status_code == 200
    with held_clock(client) as clock:
        crm = await integration(factory, client, clock, admin)
        sent = await crm.send(event_body(poi, occurred_at=datetime.now(UTC) - timedelta(minutes=5)))
        assert sent.status_code in (200, 201), sent.text
        again = await crm.send(event_body(poi, occurred_at=datetime.now(UTC) - timedelta(minutes=1)))
        assert again.status_code in (200, 201), again.text
    lead = (await client.get(f"/v1/leads/{poi}", headers=bd.headers)).json()
    assert (lead["state"], lead["holder"]["user_id"], lead["release_at"]) == ("won", str(bd.id), None)
    assert (
        await release_due(factory.database, datetime.now(UTC) + timedelta(days=400), only_tenant=tenant)
    ).released == 0
    history = (await client.get(f"/v1/leads/{poi}/history", headers=bd.headers)).json()["items"]
    # The win is dated by the signing (it happened before the claim reached us here): history is in time order.
    assert sorted((h["action"], h["reason"] or "") for h in history) == [("claim", ""), ("win", "signing")]
