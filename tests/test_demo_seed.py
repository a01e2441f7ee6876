"""The demo data: the merchant generator's determinism, city shape and wire-valid fields, and the seed plan's rows.

The last test seeds a database of its own for real, twice, and logs in with a printed credential.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections import Counter
from uuid import UUID

import msgspec
import pytest

from backend.demo.names import CATEGORY_WEIGHTS, DISTRICTS
from backend.demo.seed import (
    CENTRE_LAT,
    CENTRE_LON,
    DEMO_PASSWORD,
    SEED,
    DemoPoi,
    _plan,
    _SearchTerms,
    generate_pois,
)
from backend.intake.names import search_terms
from backend.settings import Settings
from geo.distance import haversine_m
from mobile_contract.base import Phone

CATEGORY_PATTERN = re.compile(r"^[a-z0-9_]+$")  # mobile_contract.pois: category
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 \-]{1,30}$")  # mobile_contract.base.Phone
SAMPLE = 20_000


@pytest.fixture(scope="module")
def merchants() -> list[DemoPoi]:
    return list(generate_pois(SAMPLE, random.Random(SEED)))


def _km_from_centre(poi: DemoPoi) -> float:
    return haversine_m(CENTRE_LAT, CENTRE_LON, poi.lat, poi.lon) / 1000.0


def test_same_seed_same_merchants() -> None:
    first = list(generate_pois(2_000, random.Random(42)))
    assert first == list(generate_pois(2_000, random.Random(42)))
    assert first != list(generate_pois(2_000, random.Random(43)))


def test_a_shorter_run_is_a_prefix_of_a_longer_one(merchants: list[DemoPoi]) -> None:
    # Benchmarks rebuild the demo's first n merchants with generate_pois(n, Random(SEED)).
    assert list(generate_pois(1_000, random.Random(SEED))) == merchants[:1_000]


def test_zero_merchants() -> None:
    assert list(generate_pois(0, random.Random(SEED))) == []


def test_all_merchants_lie_around_shanghai(merchants: list[DemoPoi]) -> None:
    distances = [_km_from_centre(poi) for poi in merchants]
    assert max(distances) <= 40.0
    assert sum(d > 10.0 for d in distances) > 0.05 * SAMPLE  # a sparse edge exists
    assert sum(d > 25.0 for d in distances) > 0  # reaching the suburbs


def test_the_core_is_denser_than_the_edge(merchants: list[DemoPoi]) -> None:
    distances = [_km_from_centre(poi) for poi in merchants]
    core = sum(d <= 4.0 for d in distances)
    # A ring far out with the same area as the 4 km core disc: pi * (r2^2 - r1^2) == pi * 4^2.
    r1 = 25.0
    r2 = math.sqrt(r1**2 + 4.0**2)
    ring = sum(r1 < d <= r2 for d in distances)
    assert core > 0.5 * SAMPLE
    assert core > 50 * max(ring, 1)


def test_categories_follow_the_contract_and_the_weights(merchants: list[DemoPoi]) -> None:
    counts = Counter(poi.category for poi in merchants)
    assert set(counts) == {category for category, _ in CATEGORY_WEIGHTS}  # every category occurs, nothing else
    assert all(CATEGORY_PATTERN.fullmatch(category) and len(category) <= 64 for category in counts)
    assert counts.most_common(1)[0][0] == "restaurant"


def test_phones_follow_the_contract(merchants: list[DemoPoi]) -> None:
    phones = [poi.phone for poi in merchants if poi.phone is not None]
    assert 0.65 * SAMPLE < len(phones) < 0.75 * SAMPLE
    for phone in phones:
        assert PHONE_PATTERN.fullmatch(phone), phone
        assert msgspec.convert(phone, Phone) == phone  # also the length limits
        assert phone.startswith("+86 21 ")


def test_names_and_addresses_look_real(merchants: list[DemoPoi]) -> None:
    roads = {(district.name_zh, road.zh) for district in DISTRICTS for road in district.roads}
    address = re.compile(r"^(\w+?[区])(\w+?路)(\d+)号$")
    for poi in merchants:
        assert 0 < len(poi.name) <= 200
        assert re.search(r"[\u4e00-\u9fff]", poi.name), poi.name  # the demo speaks Chinese
        match = address.fullmatch(poi.address)  # 静安区南京西路1266号
        assert match, poi.address
        district, road, number = match.groups()
        assert (district, road) in roads
        assert int(number) >= 1
    assert len({poi.name for poi in merchants}) > 0.3 * SAMPLE  # varied, not a handful of names repeated
    assert any(poi.name.endswith("店)") for poi in merchants)  # chain branches: 瑞幸咖啡(南京西路店)


def test_the_seeds_search_terms_are_search_terms(merchants: list[DemoPoi]) -> None:
    terms = _SearchTerms()
    for poi in merchants:
        assert terms.of(poi.name, poi.address) == search_terms(poi.name, poi.address), poi
    assert terms.of("老王面馆", "长寿路88号(近西康路)") == search_terms("老王面馆", "长寿路88号(近西康路)")


def test_names_are_found_by_characters_pinyin_and_initials(merchants: list[DemoPoi]) -> None:
    luckin = next(poi for poi in merchants if poi.name.startswith("瑞幸咖啡("))
    terms = search_terms(luckin.name, luckin.address).split()
    assert any(term.startswith("瑞幸咖啡") for term in terms)
    assert any(term.startswith("ruixingkafei") for term in terms)
    assert any(term.startswith("rxkf") for term in terms)


def test_the_plan_builds_a_consistent_tenant() -> None:
    plan = _plan(500)

    teams = {team_id: (parent_id, name, path) for team_id, _, parent_id, name, path in plan.teams}
    for team_id, (parent_id, _, path) in teams.items():
        parent_path = teams[parent_id][2] if parent_id else "/"
        assert path == f"{parent_path}{team_id}/"
    names = {name: path for _, name, path in teams.values()}
    assert names["Lujiazui"].startswith(names["Pudong"])
    assert names["Pudong"].startswith(names["Shanghai Sales"])
    assert names["Field Service"].count("/") == 2  # a root of its own

    usernames = [user[3] for user in plan.users]
    assert len(set(usernames)) == len(usernames)
    assert all(username == username.lower() for username in usernames)
    assert len({user[8] for user in plan.users}) == 1  # one argon2 hash, shared
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", user[4]) for user in plan.users)  # display names: 王伟
    for _, tenant_id, _, _, _, phone, role, scope, _ in plan.users:
        assert tenant_id == plan.tenant_id
        assert role in {"bd", "technician", "supervisor", "ops", "admin"}
        assert scope in {"self", "team", "team_and_below", "all"}
        assert phone is None or PHONE_PATTERN.fullmatch(phone)

    logins = plan.logins
    assert logins.password == DEMO_PASSWORD
    assert list(logins.usernames) == ["admin", "ops", "supervisor", "bd", "technician"]
    assert logins.usernames["admin"] == ["admin@demo"]
    assert logins.usernames["supervisor"][0] == "supervisor@demo"
    assert len(logins.usernames["bd"]) == 15
    assert len(logins.usernames["technician"]) == 2

    bds = {user[0] for user in plan.users if user[6] == "bd"}
    poi_ids = {poi[0] for poi in plan.pois}
    held = [poi for poi in plan.pois if poi[8] is not None]
    assert len(plan.pois) == 500
    assert len(held) == 50
    assert all(poi[8] in bds and poi[9] is not None for poi in held)
    assert all(poi[9] is None for poi in plan.pois if poi[8] is None)
    assert all(poi[7] is None or 30 <= poi[7] <= 80 for poi in plan.pois)
    assert all(contact[2] in poi_ids and contact[4] in {"owner", "manager", "cashier"} for contact in plan.contacts)
    assert all(isinstance(poi[0], UUID) for poi in plan.pois)


def test_the_plan_is_deterministic_apart_from_claim_times() -> None:
    first, second = _plan(200), _plan(200)
    assert first.tenant_id == second.tenant_id
    assert [poi[:9] for poi in first.pois] == [poi[:9] for poi in second.pois]
    assert first.contacts == second.contacts


async def test_seed_demo_for_real_is_idempotent_and_logs_in(settings: Settings) -> None:
    import asyncpg
    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from backend.db.admin import create_database, drop_database, with_database_name
    from backend.db.migrate import upgrade
    from backend.demo.seed import seed_demo

    url = with_database_name(settings.database_url, "groundwork_test_seed")
    await create_database(url, drop_first=True)
    await asyncio.to_thread(upgrade, url)
    try:
        first = await seed_demo(url, poi_count=2_000)
        conn = await asyncpg.connect(url)
        try:
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM pois) AS pois, (SELECT count(*) FROM users) AS users, "
                "(SELECT count(*) FROM pois WHERE holder_id IS NOT NULL) AS held"
            )
            assert counts["pois"] == 2_000
            assert counts["held"] == 200
            bad_paths = await conn.fetchval(
                "SELECT count(*) FROM teams c LEFT JOIN teams p ON p.id = c.parent_id "
                "WHERE c.path <> coalesce(p.path, '/') || c.id::text || '/'"
            )
            assert bad_paths == 0
            # Every held merchant and every work item is in its user's change feed (what a first sync sends).
            feed = await conn.fetchval(
                "SELECT count(*) FROM sync_changes WHERE collection IN ('pois', 'work_items', 'jobs')"
            )
            items = await conn.fetchval("SELECT count(*) FROM work_items")
            assert items > 0
            assigned_jobs = await conn.fetchval("SELECT count(*) FROM jobs WHERE assignee_id IS NOT NULL")
            assert assigned_jobs > 0
            assert feed == counts["held"] + items + assigned_jobs
            # The demo billing system's events (after the day's visits): credited recharges that count toward the
            # recharge goal, credited signings that do not (and win their leads, in their holders' feeds), and
            # non-credits with their reasons.
            events = await conn.fetch(
                "SELECT a.credited, a.reason, a.goal_reason, e.kind FROM business_events e"
                " JOIN event_attributions a ON a.tenant_id = e.tenant_id AND a.event_id = e.id"
            )
            reasons = Counter((row["reason"], row["goal_reason"]) for row in events)
            assert reasons[("visited", "counts")] >= 3
            assert reasons[("visited", "kind_mismatch")] >= 1
            assert {"no_follow_up", "outside_campaign", "not_targeted"} <= {row["reason"] for row in events}
            won = await conn.fetchval("SELECT count(*) FROM leads WHERE state = 'won'")
            assert won == sum(1 for row in events if row["kind"] == "signing")
            assert await conn.fetchval("SELECT count(*) FROM sync_changes WHERE collection = 'leads'") == won
            # And the day's visits (backend/demo/movement.py) are in their BDs' feeds.
            visits = await conn.fetchval("SELECT count(*) FROM visits")
            assert visits > 0
            assert await conn.fetchval("SELECT count(*) FROM sync_changes WHERE collection = 'visits'") == visits
            verified = await conn.fetchval("SELECT count(*) FROM visits WHERE check_in_status = 'verified'")
            assert verified >= 0.9 * visits
            # Everyone's trail ends just before the seed, and one fix says why the phone went quiet.
            trail = await conn.fetchrow(
                "SELECT count(DISTINCT user_id) AS people, count(*) AS fixes, max(recorded_at) AS last,"
                " count(*) FILTER (WHERE event = 'location_off') AS quiet FROM tracking_positions"
            )
            assert trail["people"] == 17
            assert trail["quiet"] == 17
            assert trail["fixes"] > 17 * 400
            assert await conn.fetchval("SELECT count(*) FROM tracking_latest") == 17
            assert await conn.fetchval("SELECT now() - $1::timestamptz < interval '10 minutes'", trail["last"])
            assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'pooled'") > 0
            expected = next(generate_pois(1, random.Random(SEED)))
            stored = await conn.fetchrow(
                "SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon FROM pois WHERE name = $1 "
                "ORDER BY ST_Distance(location, ST_MakePoint($3, $2)::geography) LIMIT 1",
                expected.name,
                expected.lat,
                expected.lon,
            )
            assert abs(stored["lat"] - expected.lat) < 1e-9
            assert abs(stored["lon"] - expected.lon) < 1e-9
            second = await seed_demo(url, poi_count=2_000)
            assert second == first
            assert await conn.fetchval("SELECT count(*) FROM pois") == 2_000
            assert await conn.fetchval("SELECT count(*) FROM users") == counts["users"]
        finally:
            await conn.close()
        async with AsyncTestClient(app=create_app(settings.with_database(url))) as client:
            response = await client.post(
                "/v1/auth/token",
                json={"username": first.usernames["bd"][0], "password": DEMO_PASSWORD, "device_id": "demo-phone"},
            )
            assert response.status_code == 200, response.text
    finally:
        await drop_database(url)
