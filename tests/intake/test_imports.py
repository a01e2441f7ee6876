"""Bulk intake of merchants: a file in, row-by-row judgement, a report, a review queue and merges that keep
everything of both merchants."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from backend.cli import main
from backend.db.engine import Database
from backend.intake.service import IMPORT_JOB, MAX_REPORTED, validate
from backend.intake.tasks import import_merchants
from backend.queue.service import Registry
from backend.queue.worker import run_due
from backend.settings import Settings
from geo.crs import Crs, from_wgs84
from mobile_contract.auth import Role
from tests.factories import Factory

Client = AsyncTestClient  # type: ignore[type-arg]
SHOP = (31.2304, 121.4737)


async def run_imports(database: Database, tenant_id: UUID) -> None:
    registry = Registry()
    registry.register(IMPORT_JOB, import_merchants)
    await run_due(database, registry, tenant_id=tenant_id)


async def upload(client: Client, headers: dict[str, str], body: str | bytes, content_type: str = "text/csv") -> Any:
    return await client.post(
        "/v1/intake/imports",
        content=body.encode() if isinstance(body, str) else body,
        headers={**headers, "Content-Type": content_type},
    )


def csv_of(rows: list[dict[str, Any]], header: str = "name,category,address,phone,lat,lon") -> str:
    keys = header.split(",")
    lines = [header] + [",".join(str(row.get(k, "")) for k in keys) for row in rows]
    return "\n".join(lines) + "\n"


async def test_a_csv_import_judges_each_row_and_reports(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    stored = await factory.poi(tenant, *SHOP, name="瑞幸咖啡(南京西路店)", address="南京西路1266号")
    body = "\ufeff名称,类别,地址,电话,纬度,经度,负责人\n" + "\n".join(
        [
            f"瑞幸咖啡（南京西路店）,cafe,南京西路1266号,,{SHOP[0] + 0.00005},{SHOP[1]},",  # the stored one: skipped
            f"瑞幸咖啡(淮海中路店),cafe,淮海中路,,{SHOP[0] + 0.005},{SHOP[1]},{bd.username}",  # another branch
            f"老王面馆,restaurant,,,{SHOP[0] + 0.01},{SHOP[1]},",
            f"老王面館,restaurant,,,{SHOP[0] + 0.0137},{SHOP[1]},",  # the row above, 400 m off: one or two? review
            f"无名小店,restaurant,,,999,{SHOP[1]},",  # refused: latitude
            f"神秘商店,restaurant,,,{SHOP[0]},{SHOP[1] + 0.02},nobody@test",  # refused: no such BD
        ]
    )
    created = await upload(client, ops.headers, body)
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "queued"
    await run_imports(factory.database, tenant)
    report = (await client.get(f"/v1/intake/imports/{created.json()['id']}", headers=ops.headers)).json()
    assert report["status"] == "done"
    assert (report["rows"], report["imported"], report["duplicates"], report["refused"]) == (6, 3, 1, 2)
    assert report["likely_duplicates"] == 1
    assert report["skipped"][0]["poi_id"] == str(stored)
    assert report["skipped"][0]["line"] == 2
    assert sorted(r["line"] for r in report["refused_rows"]) == [6, 7]
    assert any("nobody@test" in reason for r in report["refused_rows"] for reason in r["reasons"])
    held = await factory.count(
        "SELECT count(*) FROM pois WHERE tenant_id = :t AND holder_id = :bd AND source = 'import'", t=tenant, bd=bd.id
    )
    assert held == 1
    reviews = (await client.get("/v1/intake/duplicates", headers=ops.headers)).json()["items"]
    assert len(reviews) == 1
    assert {reviews[0]["merchant"]["name"], reviews[0]["candidate"]["name"]} == {"老王面馆", "老王面館"}
    # The held lead reaches its BD's phone.
    pull = await client.post("/v1/sync/pull", json={"cursor": None}, headers=bd.headers)
    assert any(p["name"] == "瑞幸咖啡(淮海中路店)" for p in pull.json()["changes"]["pois"]["upserted"])


async def test_a_retried_import_imports_nothing_twice(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    rows = [{"name": f"Shop {n}", "category": "shop", "lat": SHOP[0] + n * 0.01, "lon": SHOP[1]} for n in range(5)]
    created = await upload(client, ops.headers, json.dumps(rows), "application/json")
    import_id = UUID(created.json()["id"])
    await run_imports(factory.database, tenant)
    # A worker killed after storing the rows, before marking the import done: the job runs again.
    async with factory.database.sessions() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE merchant_imports SET status = 'running', content = :c WHERE tenant_id = :t AND id = :i"),
            {"c": json.dumps(rows).encode(), "t": tenant, "i": import_id},
        )
        await session.commit()
    from backend.intake.service import run_import

    again = await run_import(factory.database.sessions, tenant, import_id)
    assert again.imported == 5
    assert again.duplicates == 0
    assert await factory.count("SELECT count(*) FROM pois WHERE tenant_id = :t", t=tenant) == 5


async def test_coordinates_in_gcj02_are_stored_in_wgs84(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    lat, lon = from_wgs84(*SHOP, Crs.GCJ02)
    body = csv_of(
        [{"name": "AMap Shop", "category": "shop", "lat": lat, "lon": lon, "crs": "gcj02"}], "name,category,lat,lon,crs"
    )
    await upload(client, ops.headers, body)
    await run_imports(factory.database, tenant)
    async with factory.database.sessions() as session:
        from sqlalchemy import text

        row = (
            await session.execute(
                text(
                    "SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon FROM pois"
                    " WHERE tenant_id = :t"
                ),
                {"t": tenant},
            )
        ).one()
    assert abs(row.lat - SHOP[0]) < 1e-5
    assert abs(row.lon - SHOP[1]) < 1e-5


async def test_bad_files_roles_and_other_tenants(factory: Factory, client: Client) -> None:
    tenant, other = await factory.tenant(), await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    their_ops = await factory.user(other, Role.OPS)
    no_name = await upload(client, ops.headers, "category,lat,lon\nshop,1,2\n")
    assert no_name.status_code == 422
    assert no_name.json()["code"] == "import_unreadable"
    not_json = await upload(client, ops.headers, b"{nope", "application/json")
    assert not_json.status_code == 422
    assert not_json.json()["code"] == "import_unreadable"
    binary = await upload(client, ops.headers, bytes(range(256)) * 4)
    assert binary.status_code == 422
    form = await upload(client, ops.headers, "name=x", "application/x-www-form-urlencoded")
    assert form.status_code == 415
    assert form.json()["code"] == "unsupported_media_type"
    assert (await upload(client, bd.headers, "name\nx\n")).status_code == 403
    assert (await client.get("/v1/intake/duplicates", headers=bd.headers)).status_code == 403
    created = await upload(client, ops.headers, csv_of([{"name": "A", "category": "shop", "lat": 1, "lon": 2}]))
    import_id = created.json()["id"]
    assert (await client.get(f"/v1/intake/imports/{import_id}", headers=their_ops.headers)).status_code == 404
    assert (await client.get(f"/v1/intake/imports/{uuid.uuid4()}", headers=ops.headers)).status_code == 404
    assert (
        await client.post(
            f"/v1/intake/duplicates/{uuid.uuid4()}/merge", json={"keep": str(uuid.uuid4())}, headers=ops.headers
        )
    ).status_code == 404
    bad_merge = await client.post(
        f"/v1/intake/duplicates/{uuid.uuid4()}/merge", json={"keep": "x"}, headers=ops.headers
    )
    assert bad_merge.status_code in (400, 422)


async def test_many_refused_rows_are_counted_and_reported_up_to_the_bound(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    body = "name,category,lat,lon\n" + "".join(f"bad {n},BAD CATEGORY,1,1\n" for n in range(MAX_REPORTED + 5))
    created = await upload(client, ops.headers, body)
    await run_imports(factory.database, tenant)
    report = (await client.get(f"/v1/intake/imports/{created.json()['id']}", headers=ops.headers)).json()
    assert report["refused"] == MAX_REPORTED + 5
    assert len(report["refused_rows"]) == MAX_REPORTED


_cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["name", "category", "lat", "lon", "phone", "crs", "holder", "x"]), _cell))
def test_any_row_is_taken_or_refused_with_reasons(raw: dict[str, str]) -> None:
    outcome = validate(raw)
    if isinstance(outcome, list):
        assert outcome
        assert all(isinstance(reason, str) and reason for reason in outcome)
    else:
        assert -90 <= outcome.lat <= 90
        assert "\x00" not in outcome.name


async def test_a_merge_keeps_everything_of_both(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant)
    kept = await factory.poi(tenant, *SHOP, name="老王面馆")
    gone = await factory.poi(tenant, SHOP[0] + 0.0002, SHOP[1], name="老王麵館", holder_id=bd.id)
    async with factory.database.sessions() as session:
        from sqlalchemy import text

        await session.execute(
            text("INSERT INTO poi_contacts (tenant_id, id, poi_id, name) VALUES (:t, :i, :p, 'Boss')"),
            {"t": tenant, "i": uuid.uuid4(), "p": gone},
        )
        review_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO merchant_duplicates (tenant_id, id, poi_id, candidate_id, verdict, similarity,"
                " distance_m, reasons) VALUES (:t, :i, :a, :b, 'likely', 0.9, 22, '[]')"
            ),
            {"t": tenant, "i": review_id, "a": gone, "b": kept},
        )
        # Both have a lead state (one row per merchant): the kept one's stays, the other's history moves.
        for poi, state in ((kept, "pool"), (gone, "private")):
            await session.execute(
                text("INSERT INTO leads (tenant_id, poi_id, state) VALUES (:t, :p, :s)"),
                {"t": tenant, "p": poi, "s": state},
            )
        await session.commit()
    check_in = await client.post(
        "/v1/visits",
        json={
            "id": str(uuid.uuid4()),
            "poi_id": str(gone),
            "fix": {
                "lat": SHOP[0] + 0.0002,
                "lon": SHOP[1],
                "accuracy_m": 10,
                "age_ms": 1000,
                "captured_at": datetime.now(UTC).isoformat(),
            },
        },
        headers=bd.headers,
    )
    assert check_in.status_code == 201, check_in.text
    merged = await client.post(
        f"/v1/intake/duplicates/{review_id}/merge", json={"keep": str(kept)}, headers=ops.headers
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["moved"]["visits"] == 1
    assert merged.json()["moved"]["poi_contacts"] == 1
    assert await factory.count("SELECT count(*) FROM pois WHERE tenant_id = :t AND id = :i", t=tenant, i=gone) == 0
    assert (
        await factory.count("SELECT count(*) FROM visits WHERE tenant_id = :t AND poi_id = :i", t=tenant, i=kept) == 1
    )
    assert (
        await factory.count(
            "SELECT count(*) FROM pois WHERE tenant_id = :t AND id = :i AND holder_id = :bd", t=tenant, i=kept, bd=bd.id
        )
        == 1
    )
    assert await factory.count("SELECT count(*) FROM leads WHERE tenant_id = :t", t=tenant) == 1
    again = await client.post(f"/v1/intake/duplicates/{review_id}/merge", json={"keep": str(kept)}, headers=ops.headers)
    assert again.status_code == 409
    history = (await client.get("/v1/intake/duplicates", params={"status": "merged"}, headers=ops.headers)).json()
    assert history["items"][0]["merchant"]["name"] == "老王麵館"  # the snapshot of the merchant merged away
    # The BD's phone: the merged merchant is removed, the kept one arrives.
    pull = (await client.post("/v1/sync/pull", json={"cursor": None}, headers=bd.headers)).json()
    assert str(gone) not in [p["id"] for p in pull["changes"]["pois"]["upserted"]]
    assert str(kept) in [p["id"] for p in pull["changes"]["pois"]["upserted"]]


def test_the_cli_imports_a_file_with_progress(settings: Settings, tmp_path: Path) -> None:
    import asyncio

    async def make_tenant() -> str:
        from tests.factories import Factory as F

        database = await Database.connect(settings)
        try:
            factory = F(database, None)  # type: ignore[arg-type]
            tenant = await factory.tenant()
            async with database.sessions() as session:
                from sqlalchemy import text

                slug = await session.scalar(text("SELECT slug FROM tenants WHERE id = :t"), {"t": tenant})
            return str(slug)
        finally:
            await database.close()

    slug = asyncio.run(make_tenant())
    path = tmp_path / "merchants.csv"
    path.write_text(
        csv_of([{"name": f"店{n}", "category": "shop", "lat": 30 + n * 0.01, "lon": 120} for n in range(3)])
    )
    result = CliRunner().invoke(main, ["import", "merchants", str(path), "--tenant", slug], obj=settings)
    assert result.exit_code == 0, result.output
    assert "3 imported" in result.output
    assert "[import] 3 rows" in result.output
    missing = CliRunner().invoke(main, ["import", "merchants", str(path), "--tenant", "no-such"], obj=settings)
    assert missing.exit_code != 0
    assert "no tenant" in missing.output


async def test_who_imports_and_reviews_is_the_tenants_permission_table(factory: Factory, client: Client) -> None:
    """Defaults: ops and admin import, supervisors also review. A tenant that takes imports from ops and gives
    the review to nobody but admins gets 403s there, and another tenant keeps the defaults."""
    tenant, other = await factory.tenant(), await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN)
    ops = await factory.user(tenant, Role.OPS)
    supervisor = await factory.user(tenant, Role.SUPERVISOR)
    their_ops = await factory.user(other, Role.OPS)
    body = csv_of([{"name": "A", "category": "shop", "lat": 1, "lon": 2}])
    assert (await upload(client, ops.headers, body)).status_code == 202
    assert (await client.get("/v1/intake/duplicates", headers=supervisor.headers)).status_code == 200
    changed = await client.put(
        "/v1/admin/permissions",
        json={
            "features": [
                {"feature": "import_merchants", "roles": ["admin"]},
                {"feature": "review_duplicates", "roles": ["admin"]},
            ]
        },
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await upload(client, ops.headers, body)).status_code == 403
    assert (await upload(client, admin.headers, body)).status_code == 202
    assert (await client.get("/v1/intake/duplicates", headers=supervisor.headers)).status_code == 403
    assert (await upload(client, their_ops.headers, body)).status_code == 202
