"""The lead pool in the WatermelonDB app: a `leads` row created on the phone is a claim (`poi.claim`); of two phones
claiming the same merchant offline exactly one holds it after syncing, and its row carries the protection dates."""

from __future__ import annotations

from tests.factories import Factory
from tests.live_server import LiveServer
from tests.watermelon.harness import StartPhone

SHOP = (31.2304, 121.4737)


def _claim_row(poi: str) -> dict[str, object]:
    return {"id": poi, "poi_name": "", "state": "pool", "extensions_used": 0, "extended_days": 0, "warning": False}


async def test_two_phones_claim_one_merchant_offline_and_one_holds_it(
    factory: Factory, phones: StartPhone, live_server: LiveServer
) -> None:
    tenant = await factory.tenant()
    bd_a, bd_b = await factory.user(tenant, name="BD A"), await factory.user(tenant, name="BD B")
    poi = str(await factory.poi(tenant, *SHOP, name="Noodle House"))
    phone_a = await phones("phone-a", bd_a.headers["Authorization"].removeprefix("Bearer "))
    phone_b = await phones("phone-b", bd_b.headers["Authorization"].removeprefix("Bearer "))
    await phone_a.sync()
    await phone_b.sync()
    await phone_a.create("leads", _claim_row(poi))
    await phone_b.create("leads", _claim_row(poi))
    await phone_a.sync()
    await phone_b.sync()
    await phone_a.sync()
    await phone_b.sync()
    holders = await factory.count(
        "SELECT count(*) FROM pois WHERE tenant_id = :t AND id = :p AND holder_id = :u", t=tenant, p=poi, u=bd_a.id
    )
    assert holders == 1
    lead = (await phone_a.dump())["leads"][poi]
    assert (lead["state"], lead["holder_id"], lead["poi_name"]) == ("private", str(bd_a.id), "Noodle House")
    assert lead["release_at"] > lead["since"]
    assert lead["_status"] == "synced"
    assert poi not in (await phone_b.dump()).get("leads", {})  # refused: the server's truth came back
    refused = await factory.count(
        "SELECT count(*) FROM sync_mutations WHERE user_id = :u AND status = 'rejected' AND code = 'lead_taken'",
        u=bd_b.id,
    )
    assert refused == 1
