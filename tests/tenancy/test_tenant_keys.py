"""Ids a phone chooses are keyed within the tenant: no existence oracle, and no reference across tenants.

Before, `id` alone was the primary key, so a create with an id another tenant had used answered 409
`idempotency_conflict`: the caller learnt that the id existed elsewhere. Now another tenant's id is as free as a
fresh one, on every create endpoint and every sync mutation that creates a record, and the database itself refuses
a row that points into another tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import ForeignKeyConstraint, Uuid, text
from sqlalchemy.exc import IntegrityError

from backend.tables import Base
from mobile_contract.auth import Role
from tests.events.helpers import Clock, event_body, integration
from tests.factories import Factory, FieldUser, fix
from tests.jobs.helpers import job_body
from tests.media.helpers import make_job, site_photo
from tests.tasks.helpers import assign, campaign_body, create_campaign

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)

# Every way a phone (or the console) names a new record. `sync` goes through POST /v1/sync/push.
CHANNELS = {
    "pois": ("http", "sync"),
    "visits": ("http", "sync"),
    "jobs": ("http",),
    "campaigns": ("http",),
    "photos": ("http",),
}
SYNC_CREATES = {"pois": "poi.create", "visits": "visit.check_in"}


@dataclass
class Side:
    """One tenant, with what its creates need: a BD and a merchant, operations, a technician on a job."""

    tenant: UUID
    bd: FieldUser
    ops: FieldUser
    tech: FieldUser
    poi: UUID
    job: UUID


async def side(factory: Factory) -> Side:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    return Side(
        tenant=tenant,
        bd=await factory.user(tenant),
        ops=await factory.user(tenant, Role.OPS),
        tech=tech,
        poi=await factory.poi(tenant, *SHOP),
        job=await make_job(factory, tenant, tech),
    )


def body_for(table: str, record_id: UUID, me: Side, variant: int) -> dict[str, Any] | bytes:
    """The create's body; `variant` changes its content (0 is the same content in both tenants)."""
    if table == "pois":
        return {
            "id": str(record_id),
            "name": f"Noodle House {variant}",
            "category": "restaurant",
            "location": {"lat": SHOP[0], "lon": SHOP[1]},
            "contacts": [{"name": "Wang Jun", "role": "owner"}],
        }
    if table == "visits":
        return {"id": str(record_id), "poi_id": str(me.poi), "fix": fix(*SHOP), "note": f"note {variant}"}
    if table == "jobs":
        return job_body(id=str(record_id), customer_name=f"Chen Hui {variant}")
    if table == "campaigns":
        return campaign_body(id=str(record_id), title=f"Recharge push {variant}")
    return site_photo(variant)


async def create(
    client: Client, table: str, channel: str, me: Side, body: dict[str, Any] | bytes, record_id: UUID
) -> Any:
    """Create once; answers (status, record) with HTTP's 201/200, or a sync result's `applied` as 201/200."""
    if channel == "sync":
        mutation = {
            "id": uuid.uuid4().int % 2**62,
            "name": SYNC_CREATES[table],
            "args": body,
            "created_at": datetime.now(UTC).isoformat(),
        }
        response = await client.post(
            "/v1/sync/push", json={"client_id": "phone", "mutations": [mutation]}, headers=me.bd.headers
        )
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert result["status"] == "applied", result
        return result["result"]
    if table == "photos":
        assert isinstance(body, bytes)
        return await client.put(
            f"/v1/photos/{record_id}",
            content=body,
            params={"job_id": str(me.job)},
            headers={**me.tech.headers, "Content-Type": "image/jpeg"},
        )
    user = {"pois": me.bd, "visits": me.bd, "jobs": me.ops, "campaigns": me.ops}[table]
    return await client.post(f"/v1/{table}", json=body, headers=user.headers)


async def row(factory: Factory, table: str, tenant: UUID, record_id: UUID) -> Any:
    async with factory.database.sessions() as session:
        return await session.scalar(
            text(f"SELECT to_jsonb(t) FROM {table} t WHERE tenant_id = :t AND id = :id"),  # noqa: S608 - our names
            {"t": tenant, "id": record_id},
        )


async def created(
    client: Client, table: str, channel: str, me: Side, body: Any, record_id: UUID, *, first: bool
) -> dict[str, Any]:
    answer = await create(client, table, channel, me, body, record_id)
    if channel == "sync":
        return dict(answer)
    assert answer.status_code == (201 if first else 200), answer.text
    return dict(answer.json())


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table_and_channels=st.sampled_from(sorted(CHANNELS)).flatmap(
        lambda table: st.tuples(st.just(table), st.sampled_from(CHANNELS[table]), st.sampled_from(CHANNELS[table]))
    ),
    record_id=st.uuids(),
    same_content=st.booleans(),
)
async def test_another_tenants_id_creates_a_new_record_and_leaves_theirs_alone(
    factory: Factory,
    keyed_client: Client,
    table_and_channels: tuple[str, str, str],
    record_id: UUID,
    same_content: bool,
) -> None:
    table, a_channel, b_channel = table_and_channels
    a, b = await side(factory), await side(factory)
    a_body = body_for(table, record_id, a, 0)
    b_body = body_for(table, record_id, b, 0 if same_content else 1)

    first = await created(keyed_client, table, a_channel, a, a_body, record_id, first=True)
    assert first["id"] == str(record_id)
    theirs = await row(factory, table, a.tenant, record_id)
    assert theirs is not None

    # B's create with A's id: a new record in B, answered exactly as for a fresh id.
    mine = await created(keyed_client, table, b_channel, b, b_body, record_id, first=True)
    assert mine["id"] == str(record_id)
    assert await row(factory, table, b.tenant, record_id) is not None
    assert await row(factory, table, a.tenant, record_id) == theirs  # A's record untouched
    for me in (a, b):
        sql = f"SELECT count(*) FROM {table} WHERE tenant_id = :t AND id = :id"  # noqa: S608 - our names
        assert await factory.count(sql, t=me.tenant, id=record_id) == 1

    # A's retry is still a replay (HTTP 200; a sync create under a new mutation id applies as the same record).
    replay = await created(keyed_client, table, a_channel, a, a_body, record_id, first=False)
    assert replay["id"] == str(record_id)
    if a_channel == "http":
        assert replay == first
    assert await row(factory, table, a.tenant, record_id) == theirs
    # Each tenant reads its own record under the id.
    for me in (a, b):
        reader = {"pois": me.bd, "visits": me.bd, "jobs": me.ops, "campaigns": me.ops, "photos": me.tech}[table]
        path = f"/v1/campaigns/{record_id}/progress" if table == "campaigns" else f"/v1/{table}/{record_id}"
        read = await keyed_client.get(path, headers=reader.headers)
        assert read.status_code == 200, read.text
        if table != "campaigns":
            assert read.json()["id"] == str(record_id)


def _tenant_keyed_tables() -> dict[str, list[str]]:
    return {
        table.name: [column.name for column in table.primary_key.columns]
        for table in Base.metadata.tables.values()
        if "tenant_id" in table.c and [c.name for c in table.primary_key.columns][:1] == ["tenant_id"]
    }


def test_every_client_named_record_is_keyed_within_its_tenant() -> None:
    """The class, checked on the metadata: a tenant-owned table whose `id` has no server default (the client
    names it) is keyed (tenant_id, id), and every reference to such a table carries the tenant."""
    keyed = _tenant_keyed_tables()
    for table in Base.metadata.tables.values():
        if "tenant_id" not in table.c:
            continue
        named_by_client = "id" in table.c and isinstance(table.c.id.type, Uuid) and table.c.id.default is None
        if named_by_client:
            assert keyed.get(table.name, [])[:1] == ["tenant_id"], f"{table.name} is keyed by id alone"
        for constraint in table.foreign_key_constraints:
            if constraint.referred_table.name in keyed:
                assert constraint.column_keys[0] == "tenant_id", f"{table.name} -> {constraint.referred_table.name}"
    assert {"pois", "poi_contacts", "visits", "jobs", "campaigns", "work_items", "photos"} <= set(keyed)


def _composite_references() -> list[tuple[str, str, str]]:
    """(child table, referencing column, parent table) of every tenant-carrying foreign key."""
    found = []
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, ForeignKeyConstraint) and constraint.column_keys[0] == "tenant_id":
                found += [(table.name, key, constraint.referred_table.name) for key in constraint.column_keys[1:]]
    return sorted(found)


REFERENCES = _composite_references()


@pytest.fixture
async def two_tenants_with_everything(factory: Factory, keyed_client: Client) -> tuple[Side, Side]:
    """A and B, each with a merchant with contacts, a campaign targeting it, a BD's check-in there (which links
    the work item and writes its history; a change of its verdict), a job with its audit trail and a code, and a
    photo."""
    client = keyed_client
    sides = []
    for _ in range(2):
        me = await side(factory)
        poi = await client.post("/v1/pois", json=body_for("pois", uuid.uuid4(), me, 0), headers=me.bd.headers)
        assert poi.status_code == 201, poi.text
        me.poi = UUID(poi.json()["id"])
        await assign(client, me.ops, await create_campaign(client, me.ops), [(me.poi, me.bd.id)])
        visit = await client.post("/v1/visits", json=body_for("visits", uuid.uuid4(), me, 0), headers=me.bd.headers)
        assert visit.status_code == 201, visit.text
        job = await client.post("/v1/jobs", json=job_body(), headers=me.ops.headers)
        assert job.status_code == 201, job.text
        photo = await client.put(
            f"/v1/photos/{uuid.uuid4()}",
            content=site_photo(1),
            params={"job_id": str(me.job)},
            headers={**me.tech.headers, "Content-Type": "image/jpeg"},
        )
        assert photo.status_code == 201, photo.text
        # A merchant code and a signing event (its attribution and the merchant's signing row come with it).
        code = await client.put(
            f"/v1/events/merchants/{me.poi}/external-code", json={"external_code": "M-1"}, headers=me.ops.headers
        )
        assert code.status_code == 200, code.text
        sender = await integration(factory, client, Clock(), me.ops)
        event = await sender.send(event_body(me.poi, occurred_at=datetime.now(UTC)))
        assert event.status_code == 201, event.text
        async with factory.database.sessions() as session:  # a code, as an arrival would issue it
            await session.execute(
                text(
                    "INSERT INTO job_codes (tenant_id, job_id, code_hash, expires_at)"
                    " VALUES (:t, :job, 'x', now() + interval '1 hour')"
                ),
                {"t": me.tenant, "job": me.job},
            )
            await session.execute(  # a pair waiting in the duplicate review (intake)
                text(
                    "INSERT INTO merchant_duplicates (tenant_id, id, poi_id, candidate_id, verdict, similarity,"
                    " distance_m, reasons) VALUES (:t, :id, :poi, :poi, 'likely', 0.9, 1, '[]')"
                ),
                {"t": me.tenant, "id": uuid.uuid4(), "poi": me.poi},
            )
            await session.execute(  # a change of the check-in's verdict, as a re-judge would record it
                text(
                    "INSERT INTO visit_verdict_history (tenant_id, visit_id, claim, old_status, old_reasons,"
                    " new_status, new_reasons, why, changed_at) VALUES (:t, :visit, 'check_in', 'verified', '{}',"
                    " 'uncertain', '{short_dwell}', 'late_fixes', now())"
                ),
                {"t": me.tenant, "visit": UUID(visit.json()["id"])},
            )
            # What the trail derived at the merchant and the job site (tracking's presence and geofence events).
            for seq, (kind, poi_id, job_id) in enumerate([("merchant", me.poi, None), ("job_site", None, me.job)]):
                place = {"t": me.tenant, "u": me.bd.id, "seq": seq, "kind": kind, "poi": poi_id, "job": job_id}
                await session.execute(
                    text(
                        "INSERT INTO tracking_presence (tenant_id, user_id, day, seq, stop_seq, place_kind, poi_id,"
                        " job_id, started_at, ended_at, confidence)"
                        " VALUES (:t, :u, current_date, :seq, 0, :kind, :poi, :job, now(), now(), 1)"
                    ),
                    place,
                )
                await session.execute(
                    text(
                        "INSERT INTO tracking_fence_events (tenant_id, user_id, day, seq, at, kind, place_kind,"
                        " poi_id, job_id) VALUES (:t, :u, current_date, :seq, now(), 'enter', :kind, :poi, :job)"
                    ),
                    place,
                )
            await session.commit()
        sides.append(me)
    return sides[0], sides[1]


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reference=st.sampled_from(REFERENCES))
async def test_the_database_refuses_a_reference_into_another_tenant(
    factory: Factory, two_tenants_with_everything: tuple[Side, Side], reference: tuple[str, str, str]
) -> None:
    """Point one of B's rows at A's record (a direct write, past every service): a foreign-key violation."""
    a, b = two_tenants_with_everything
    child, column, parent = reference
    async with factory.database.sessions() as session:
        theirs = await session.scalar(
            text(f"SELECT id FROM {parent} WHERE tenant_id = :t LIMIT 1"),  # noqa: S608 - names from our metadata
            {"t": a.tenant},
        )
        mine = await session.scalar(
            text(f"SELECT ctid::text FROM {child} WHERE tenant_id = :t LIMIT 1"),  # noqa: S608
            {"t": b.tenant},
        )
    assert mine is not None, f"no {child} row in B"
    assert theirs is not None, f"no {parent} row in A"
    async with factory.database.sessions() as session:
        with pytest.raises(IntegrityError) as refused:
            await session.execute(
                text(f"UPDATE {child} SET {column} = :theirs WHERE ctid::text = :mine"),  # noqa: S608
                {"theirs": theirs, "mine": mine},
            )
        assert "foreign key" in str(refused.value.orig).lower()
        await session.rollback()


async def test_a_direct_insert_with_another_tenants_merchant_fails(factory: Factory) -> None:
    a, b = await factory.tenant(), await factory.tenant()
    theirs = await factory.poi(a)
    async with factory.database.sessions() as session:
        with pytest.raises(IntegrityError) as refused:
            await session.execute(
                text("INSERT INTO poi_contacts (tenant_id, id, poi_id, name) VALUES (:b, :id, :poi, 'Spy')"),
                {"b": b, "id": uuid.uuid4(), "poi": theirs},
            )
        assert "fk_poi_contacts_poi_id_pois" in str(refused.value.orig)
        await session.rollback()


def test_the_references_cover_every_link_between_tenant_records() -> None:
    assert {
        ("job_codes", "job_id", "jobs"),
        ("job_events", "job_id", "jobs"),
        ("photos", "job_id", "jobs"),
        ("poi_contacts", "poi_id", "pois"),
        ("visit_verdict_history", "visit_id", "visits"),
        ("visits", "poi_id", "pois"),
        ("work_item_history", "work_item_id", "work_items"),
        ("work_item_visits", "visit_id", "visits"),
        ("work_item_visits", "work_item_id", "work_items"),
        ("work_items", "campaign_id", "campaigns"),
        ("work_items", "poi_id", "pois"),
    } <= set(REFERENCES)
