"""POST /v1/events: integration keys, the signature, idempotency, bad input and other tenants' ids."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from backend.events.keys import seal, sign, unseal
from mobile_contract.auth import Role
from tests.events.helpers import SHOP, Client, Integration, event_body, held_clock, integration
from tests.factories import Factory

NO_FIXTURE_RESET = [HealthCheck.function_scoped_fixture]


async def _setup(factory: Factory, client: Client, clock: Any) -> tuple[uuid.UUID, Integration, uuid.UUID]:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    poi = await factory.poi(tenant, *SHOP)
    return tenant, await integration(factory, client, clock, admin), poi


# -- keys --------------------------------------------------------------------------------------------------------


async def test_keys_are_issued_by_admin_and_ops_shown_once_and_several_work_until_revoked(
    factory: Factory, client: Client
) -> None:
    with held_clock(client) as clock:
        tenant = await factory.tenant()
        admin = await factory.user(tenant, Role.ADMIN)
        ops = await factory.user(tenant, Role.OPS)
        bd = await factory.user(tenant)
        poi = await factory.poi(tenant, *SHOP)
        refused = await client.post("/v1/events/keys", json={"label": "x"}, headers=bd.headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
        old = await integration(factory, client, clock, admin)
        new = await integration(factory, client, clock, ops)
        listed = (await client.get("/v1/events/keys", headers=ops.headers)).json()["items"]
        assert {k["id"] for k in listed} == {old.key_id, new.key_id}
        assert all("secret" not in k for k in listed)
        assert old.secret.startswith("gwk_")
        assert old.secret[:10] in {k["hint"] for k in listed}
        now = clock()
        for each in (old, new):  # rotation: both active at once
            answer = await each.send(event_body(poi, occurred_at=now))
            assert answer.status_code == 201, answer.text
        revoked = await client.delete(f"/v1/events/keys/{old.key_id}", headers=admin.headers)
        assert revoked.status_code == 204
        after = await old.send(event_body(poi, occurred_at=now))
        assert after.status_code == 401
        assert after.json()["code"] == "integration_key_invalid"
        assert (await new.send(event_body(poi, occurred_at=now))).status_code == 201
        listed = (await client.get("/v1/events/keys", headers=ops.headers)).json()["items"]
        assert [k["revoked_at"] is not None for k in listed if k["id"] == old.key_id] == [True]


async def test_another_tenants_key_cannot_be_revoked_and_bds_cannot_list(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        _, mine, _ = await _setup(factory, client, clock)
        other = await factory.tenant()
        other_admin = await factory.user(other, Role.ADMIN)
        bd = await factory.user(other)
        answer = await client.delete(f"/v1/events/keys/{mine.key_id}", headers=other_admin.headers)
        assert answer.status_code == 404
        assert (await client.get("/v1/events/keys", headers=bd.headers)).status_code == 403
        assert (await client.delete(f"/v1/events/keys/{uuid.uuid4()}", headers=other_admin.headers)).status_code == 404


def test_a_sealed_secret_opens_only_for_its_own_row() -> None:
    kek, tenant, key = b"k" * 32, uuid.uuid4(), uuid.uuid4()
    sealed = seal(kek, tenant, key, "gwk_secret")
    assert unseal(kek, tenant, key, sealed) == "gwk_secret"
    assert unseal(kek, uuid.uuid4(), key, sealed) is None  # copied into another tenant's row
    assert unseal(kek, tenant, uuid.uuid4(), sealed) is None
    assert unseal(b"j" * 32, tenant, key, sealed) is None
    assert b"gwk_secret" not in sealed


# -- the signature -----------------------------------------------------------------------------------------------


async def test_missing_wrong_and_stale_signatures_are_401_with_their_codes(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        _, sender, poi = await _setup(factory, client, clock)
        body = json.dumps(event_body(poi, occurred_at=clock())).encode()
        bare = await client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
        assert (bare.status_code, bare.json()["code"]) == (401, "signature_missing")
        wrong = await sender.send_raw(body, secret="gwk_not-the-secret")
        assert (wrong.status_code, wrong.json()["code"]) == (401, "signature_invalid")
        now = int(clock().timestamp())
        stale = await sender.send_raw(body, at=now - 301)
        assert (stale.status_code, stale.json()["code"]) == (401, "stale_timestamp")
        ahead = await sender.send_raw(body, at=now + 301)
        assert (ahead.status_code, ahead.json()["code"]) == (401, "stale_timestamp")
        headers = sender.headers(body)
        for name, value in [
            ("X-Groundwork-Timestamp", "12ab"),
            ("X-Groundwork-Key-Id", "not-a-uuid"),
            ("X-Groundwork-Key-Id", str(uuid.uuid4())),
            ("X-Groundwork-Signature", "v0=abc"),
        ]:
            answer = await client.post("/v1/events", content=body, headers={**headers, name: value})
            assert answer.status_code == 401, (name, value, answer.text)
            assert answer.json()["code"] in {"signature_invalid", "integration_key_invalid"}
        # While a sender rotates keys it may send several values: one matching is enough.
        several = {**headers, "X-Groundwork-Signature": "v1=" + "0" * 64 + ", " + headers["X-Groundwork-Signature"]}
        assert (await client.post("/v1/events", content=body, headers=several)).status_code == 201
        assert (await client.post("/v1/events", content=body, headers=headers)).status_code == 200  # its replay


async def test_a_signed_request_is_refused_once_the_clock_passes_the_tolerance(
    factory: Factory, client: Client
) -> None:
    """The replay window: the same signed bytes, sent again as time moves (no sleeping: the clock moves)."""
    with held_clock(client) as clock:
        _, sender, poi = await _setup(factory, client, clock)
        body = json.dumps(event_body(poi, occurred_at=clock())).encode()
        headers = sender.headers(body)
        first = await client.post("/v1/events", content=body, headers=headers)
        assert first.status_code == 201
        clock.move(seconds=299)
        again = await client.post("/v1/events", content=body, headers=headers)
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        clock.move(seconds=2)
        late = await client.post("/v1/events", content=body, headers=headers)
        assert (late.status_code, late.json()["code"]) == (401, "stale_timestamp")


@given(body=st.binary(max_size=600), flip=st.integers(0, 10_000))
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
async def test_any_body_verifies_when_signed_and_fails_when_a_byte_changes(
    factory: Factory, client: Client, body: bytes, flip: int
) -> None:
    with held_clock(client) as clock:
        _, sender, _ = await _setup(factory, client, clock)
        signed = await sender.send_raw(body)
        # Past the signature: whatever the bytes, a 4xx about the body, never a 401 and never a 500.
        assert signed.status_code in (201, 415, 422), signed.text
        assert signed.json().get("code") not in {"signature_invalid", "signature_missing", "stale_timestamp"}
        if body:
            i = flip % len(body)
            tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
            headers = sender.headers(body)
            answer = await client.post("/v1/events", content=tampered, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (401, "signature_invalid")


@given(secret=st.text(min_size=1, max_size=60), body=st.binary(max_size=300), timestamp=st.integers(0, 2**34))
def test_sign_is_hmac_sha256_over_timestamp_dot_body(secret: str, body: bytes, timestamp: int) -> None:
    import hashlib
    import hmac

    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sign(secret, timestamp, body) == f"v1={expected}"


# -- idempotency -------------------------------------------------------------------------------------------------


async def test_a_replay_answers_the_stored_result_and_another_body_is_409(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        tenant, sender, poi = await _setup(factory, client, clock)
        at = clock() - timedelta(days=2)  # late events are fine
        body = event_body(poi, occurred_at=at, kind="recharge", amount="199.00", currency="CNY")
        first = await sender.send(body)
        assert first.status_code == 201, first.text
        assert first.json()["amount"] == "199.00"
        assert first.json()["status"] == "accepted"
        clock.move(hours=1)
        # The same event written otherwise (key order, amount's scale, the offset of occurred_at) is the same.
        same = {
            **dict(reversed(list(body.items()))),
            "amount": "199.0",
            "occurred_at": at.astimezone(UTC).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        }
        again = await sender.send(same)
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        changed = await sender.send({**body, "amount": "200.00"})
        assert (changed.status_code, changed.json()["code"]) == (409, "idempotency_conflict")
        other_source = await sender.send({**body, "source": "billing"})
        assert other_source.status_code == 201
        assert other_source.json()["id"] != first.json()["id"]
        assert await factory.count("SELECT count(*) FROM business_events WHERE tenant_id = :t", t=tenant) == 2


async def test_concurrent_duplicates_store_one_event_and_answer_it_to_all(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        tenant, sender, poi = await _setup(factory, client, clock)
        body = json.dumps(event_body(poi, occurred_at=clock(), kind="order")).encode()
        answers = await asyncio.gather(*[sender.send_raw(body) for _ in range(8)])
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
        assert len({a.json()["id"] for a in answers}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") != "true" for a in answers) == 1
        assert await factory.count("SELECT count(*) FROM business_events WHERE tenant_id = :t", t=tenant) == 1


@given(variants=st.lists(st.sampled_from(["order", "signing"]), min_size=2, max_size=6))
@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
async def test_concurrent_sends_of_one_id_with_mixed_bodies_store_one_and_refuse_the_others(
    factory: Factory, client: Client, variants: list[str]
) -> None:
    """Whichever body wins the race is the event; every send of that body answers it, every other body is 409."""
    with held_clock(client) as clock:
        tenant, sender, poi = await _setup(factory, client, clock)
        at = clock()
        bodies = [event_body(poi, occurred_at=at, kind=kind, external_id="race") for kind in variants]
        answers = await asyncio.gather(*[sender.send(body) for body in bodies])
        assert sum(a.status_code == 201 for a in answers) == 1
        winner = next(a.json() for a in answers if a.status_code == 201)
        for kind, answer in zip(variants, answers, strict=True):
            if kind == winner["kind"]:
                assert answer.status_code in (200, 201)
                assert answer.json() == winner
            else:
                assert (answer.status_code, answer.json()["code"]) == (409, "idempotency_conflict")
        assert await factory.count("SELECT count(*) FROM business_events WHERE tenant_id = :t", t=tenant) == 1


@given(plan=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["same", "changed"])), min_size=1, max_size=12))
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
async def test_any_sequence_of_replays_stores_each_event_once(
    factory: Factory, client: Client, plan: list[tuple[int, str]]
) -> None:
    with held_clock(client) as clock:
        tenant, sender, poi = await _setup(factory, client, clock)
        at = clock()
        bodies = [event_body(poi, occurred_at=at, kind="order", external_id=f"o-{i}") for i in range(4)]
        first_answer: dict[int, Any] = {}
        for index, variant in plan:
            body = bodies[index] if variant == "same" else {**bodies[index], "kind": "signing"}
            answer = await sender.send(body)
            if index not in first_answer:
                assert answer.status_code == 201
                first_answer[index] = (variant, answer.json())
            elif variant == first_answer[index][0]:
                assert answer.status_code == 200
                assert answer.json() == first_answer[index][1]
            else:
                assert (answer.status_code, answer.json()["code"]) == (409, "idempotency_conflict")
        stored = await factory.count("SELECT count(*) FROM business_events WHERE tenant_id = :t", t=tenant)
        assert stored == len(first_answer)


# -- merchants, bad input, other tenants ------------------------------------------------------------------------


async def test_merchant_by_external_code_and_unknown_merchants_are_refused_and_kept(
    factory: Factory, client: Client
) -> None:
    with held_clock(client) as clock:
        tenant, sender, poi = await _setup(factory, client, clock)
        ops = await factory.user(tenant, Role.OPS)
        body = event_body(None, occurred_at=clock(), merchant={"external_code": "M-1001"})
        unknown = await sender.send(body)
        assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_merchant")
        kept = "SELECT count(*) FROM refused_events WHERE tenant_id = :t AND code = 'unknown_merchant'"
        assert await factory.count(kept, t=tenant) == 1
        [refusal] = (await client.get("/v1/events/refused", headers=ops.headers)).json()["items"]
        assert (refusal["code"], refusal["external_id"]) == ("unknown_merchant", body["external_id"])
        assert refusal["body"]["merchant"] == {"external_code": "M-1001", "id": None}
        other_ops = await factory.user(await factory.tenant(), Role.OPS)
        assert (await client.get("/v1/events/refused", headers=other_ops.headers)).json()["items"] == []
        bd = await factory.user(tenant)
        assert (await client.get("/v1/events/refused", headers=bd.headers)).status_code == 403
        coded = await client.put(
            f"/v1/events/merchants/{poi}/external-code", json={"external_code": "M-1001"}, headers=ops.headers
        )
        assert coded.status_code == 200, coded.text
        retried = await sender.send(body)  # the refusal held no idempotency key
        assert retried.status_code == 201, retried.text
        assert retried.json()["merchant_id"] == str(poi)
        other_poi = await factory.poi(tenant, *SHOP)
        taken = await client.put(
            f"/v1/events/merchants/{other_poi}/external-code", json={"external_code": "M-1001"}, headers=ops.headers
        )
        assert (taken.status_code, taken.json()["code"]) == (409, "merchant_code_taken")


async def test_another_tenants_merchant_never_matches(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        _, sender, _ = await _setup(factory, client, clock)
        other = await factory.tenant()
        other_ops = await factory.user(other, Role.OPS)
        foreign = await factory.poi(other, *SHOP)
        await client.put(
            f"/v1/events/merchants/{foreign}/external-code", json={"external_code": "F-1"}, headers=other_ops.headers
        )
        for merchant in ({"id": str(foreign)}, {"external_code": "F-1"}):
            answer = await sender.send(event_body(None, occurred_at=clock(), merchant=merchant))
            assert (answer.status_code, answer.json()["code"]) == (422, "unknown_merchant"), merchant
        mine_ops = other_ops  # and the other way: setting a code on a merchant of another tenant is a 404
        _, _, poi = await _setup(factory, client, clock)
        put = await client.put(
            f"/v1/events/merchants/{poi}/external-code", json={"external_code": "X"}, headers=mine_ops.headers
        )
        assert put.status_code == 404


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": "-1", "currency": "CNY"}, "validation_failed"),
        ({"amount": "1e13", "currency": "CNY"}, "validation_failed"),
        ({"amount": "10000000000000", "currency": "CNY"}, "validation_failed"),
        ({"amount": 199.5, "currency": "CNY"}, "validation_failed"),  # a decimal string, never a float
        ({"amount": "1.00001", "currency": "CNY"}, "validation_failed"),
        ({"amount": "NaN", "currency": "CNY"}, "validation_failed"),
        ({"amount": "10"}, "validation_failed"),
        ({"amount": "10", "currency": "cny"}, "validation_failed"),
        ({"amount": "10", "currency": "ABC"}, "unknown_currency"),
        ({"amount": "10.5", "currency": "JPY"}, "unknown_currency"),
        ({"kind": "recharge", "amount": None, "currency": None}, "validation_failed"),
        ({"kind": "refund"}, "validation_failed"),
        ({"merchant": {}}, "validation_failed"),
        ({"merchant": {"id": str(uuid.uuid4()), "external_code": "A"}}, "validation_failed"),
        ({"occurred_at": "2026-12-01T10:00:00"}, "validation_failed"),
        ({"occurred_at": "1969-12-31T23:59:59Z"}, "validation_failed"),
        ({"source": "Has Spaces"}, "validation_failed"),
        ({"external_id": ""}, "validation_failed"),
        ({"external_id": "x" * 129}, "validation_failed"),
        ({"unexpected": 1}, "validation_failed"),
    ],
)
async def test_bad_events_are_4xx_with_stable_codes(
    factory: Factory, client: Client, change: dict[str, Any], code: str
) -> None:
    with held_clock(client) as clock:
        _, sender, poi = await _setup(factory, client, clock)
        body = {k: v for k, v in {**event_body(poi, occurred_at=clock()), **change}.items() if v is not None}
        answer = await sender.send(body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == code


async def test_an_event_in_the_future_is_refused_and_jpy_without_decimals_is_fine(
    factory: Factory, client: Client
) -> None:
    with held_clock(client) as clock:
        tenant, sender, poi = await _setup(factory, client, clock)
        ahead = await sender.send(event_body(poi, occurred_at=clock() + timedelta(minutes=6)))
        assert (ahead.status_code, ahead.json()["code"]) == (422, "occurred_in_future")
        drift = await sender.send(event_body(poi, occurred_at=clock() + timedelta(minutes=4)))
        assert drift.status_code == 201
        yen = await sender.send(event_body(poi, occurred_at=clock(), kind="recharge", amount="1200", currency="JPY"))
        assert yen.status_code == 201, yen.text
        assert await factory.count("SELECT count(*) FROM refused_events WHERE tenant_id = :t", t=tenant) == 1


async def test_not_json_is_422_after_the_signature(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        _, sender, _ = await _setup(factory, client, clock)
        for raw in (b"", b"not json", b"[1,2]", b'{"source": "crm"}', '{"a": "\u0000"}'.encode()):
            answer = await sender.send_raw(raw)
            assert answer.status_code == 422, (raw, answer.text)


async def test_reads_of_other_tenants_events_and_campaigns_are_404(factory: Factory, client: Client) -> None:
    with held_clock(client) as clock:
        _, sender, poi = await _setup(factory, client, clock)
        event = (await sender.send(event_body(poi, occurred_at=clock()))).json()
        other = await factory.tenant()
        other_ops = await factory.user(other, Role.OPS)
        answer = await client.get(f"/v1/events/{event['id']}/attribution", headers=other_ops.headers)
        assert answer.status_code == 404
        for path in ("attributions", "progress"):
            missing = await client.get(f"/v1/events/campaigns/{uuid.uuid4()}/{path}", headers=other_ops.headers)
            assert missing.status_code == 404


async def test_settings_window_is_per_tenant_and_bounded(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    assert (await client.get("/v1/events/settings", headers=ops.headers)).json() == {"attribution_window_days": 30}
    for bad in (0, 366, 3.5, None):
        answer = await client.put("/v1/events/settings", json={"attribution_window_days": bad}, headers=ops.headers)
        assert answer.status_code == 422
    put = await client.put("/v1/events/settings", json={"attribution_window_days": 7}, headers=ops.headers)
    assert put.json() == {"attribution_window_days": 7}
    assert (await client.get("/v1/events/settings", headers=ops.headers)).json() == {"attribution_window_days": 7}
    assert (await client.get("/v1/events/settings", headers=bd.headers)).status_code == 403
    other_ops = await factory.user(await factory.tenant(), Role.OPS)
    assert (await client.get("/v1/events/settings", headers=other_ops.headers)).json()["attribution_window_days"] == 30
