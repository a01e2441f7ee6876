"""The demo tenant: a Shanghai field-sales company with a team tree, users of every role and ~100k merchants.

`seed_demo` loads it into a migrated database once (`groundwork demo` and `groundwork seed` call it); a second
call finds the tenant and only prints the logins again. `generate_pois` is the merchant generator on its own, a
pure function of its random source, so benchmarks can rebuild the very same merchants:
`generate_pois(n, random.Random(SEED))` yields the demo's first n merchants in the demo's order.

Merchants are spread the way a real city is: a dense core around People's Square, district sub-centres with
their own clusters, and a sparse edge out to ~35 km. Each address names the district and a real road of the
district where the point lies.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import NamedTuple
from uuid import UUID

import asyncpg

from backend.auth.passwords import hash_password
from backend.db.embedded import say
from backend.demo.names import (
    CATEGORY_WEIGHTS,
    CHAIN_SHARE,
    CHAINS,
    CONTACT_ROLES,
    DISTRICTS,
    FAMILY_NAMES,
    FANCY_ADJECTIVES,
    FANCY_NOUNS,
    GIVEN_NAMES,
    MOBILE_PREFIXES,
    OWNER_FORMS,
    TRADES,
    District,
)
from backend.intake.names import search_terms
from backend.jobs.service import DEFAULT_JOB_TYPES
from backend.leads.service import on_phones_sql

__all__ = ["DEMO_PASSWORD", "DEMO_SLUG", "SEED", "DemoLogins", "DemoPoi", "generate_pois", "seed_demo"]

SEED = 20261124
DEMO_SLUG = "demo"
DEMO_TENANT_NAME = "Demo Field Co. Shanghai"
DEMO_PASSWORD = "groundwork-demo"  # noqa: S105 - the published password of the demo users

CENTRE_LAT, CENTRE_LON = 31.2304, 121.4737  # People's Square

# The city's shape: shares of the three populations, and their spreads.
CORE_SHARE = 0.55
HOTSPOT_SHARE = 0.35  # the rest (10%) is the sparse edge
CORE_SIGMA_KM = 1.6  # 2-D Gaussian: ~96% of the core lies within 4 km
EDGE_RADIUS_KM = 35.0
MAX_RADIUS_KM = 36.0  # a draw beyond this (a Gaussian tail) is drawn again

PHONE_SHARE = 0.70
CUSTOM_GEOFENCE_SHARE = 0.05  # the rest use the tenant's default radius
HELD_SHARE = 0.10  # merchants held as leads by a BD; the rest are in the open pool
NEAR_EXPIRY_FROM = 0.9  # the last tenth of held leads are near their release (see _lead_age)
RELEASED = 300  # open-pool merchants that a BD held until the policy released them (their history says so)
HOLD_RADIUS_KM = 6.0  # a BD holds merchants within this distance of their team's patch
CONTACT_SHARE = 0.20

# Equirectangular projection around the centre: good to well under 1% over 40 km, plenty for demo data.
_KM_PER_DEG_LAT = 110.85
_KM_PER_DEG_LON = 111.32 * math.cos(math.radians(CENTRE_LAT))

_ADVISORY_LOCK_KEY = 0x6772_6E64_5345_4544  # "grndSEED": one seeder at a time per database
_PROGRESS_EVERY = 20_000


# id, name, category, address, phone, lat, lon, geofence radius, holder, claimed at, search terms
_PoiRow = tuple[UUID, str, str, str, str | None, float, float, float | None, UUID | None, datetime | None, str]


class DemoPoi(NamedTuple):
    name: str
    category: str
    address: str
    phone: str | None
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class DemoLogins:
    tenant_id: UUID
    password: str
    usernames: dict[str, list[str]]  # role -> usernames, admin first


class _Hotspot(NamedTuple):
    name: str
    lat: float
    lon: float
    sigma_km: float
    weight: float


# District sub-centres, each a Gaussian cluster; weights are relative shares of HOTSPOT_SHARE.
HOTSPOTS: tuple[_Hotspot, ...] = (
    _Hotspot("Lujiazui", 31.2397, 121.4998, 1.2, 14),
    _Hotspot("Xujiahui", 31.1955, 121.4365, 1.2, 14),
    _Hotspot("Jing'an Temple", 31.2235, 121.4454, 1.0, 12),
    _Hotspot("Wujiaochang", 31.2990, 121.5140, 1.3, 10),
    _Hotspot("Zhongshan Park", 31.2220, 121.4170, 1.0, 8),
    _Hotspot("North Sichuan Rd", 31.2590, 121.4830, 1.1, 8),
    _Hotspot("Zhangjiang", 31.2040, 121.5900, 1.5, 8),
    _Hotspot("Gubei", 31.1980, 121.4020, 1.2, 6),
    _Hotspot("Hongqiao Hub", 31.1940, 121.3200, 1.5, 6),
    _Hotspot("Xinzhuang", 31.1110, 121.3850, 1.5, 6),
    _Hotspot("Huamu", 31.2100, 121.5550, 1.2, 5),
    _Hotspot("Zhenru", 31.2560, 121.4000, 1.2, 5),
    _Hotspot("Expo", 31.1860, 121.4950, 1.2, 4),
    _Hotspot("Changshou Rd", 31.2430, 121.4340, 0.9, 4),
    _Hotspot("Qibao", 31.1550, 121.3500, 1.2, 4),
    _Hotspot("Songjiang New Town", 31.0330, 121.2250, 2.0, 4),
    _Hotspot("Jiading New Town", 31.3800, 121.2650, 2.0, 3),
)


# ---------------------------------------------------------------------------------------------------------------
# Merchants


def generate_pois(count: int, rng: random.Random) -> Iterator[DemoPoi]:
    """`count` merchants around Shanghai, drawn from `rng` only (same seed, same merchants)."""
    hotspot_cum = list(accumulate(spot.weight for spot in HOTSPOTS))
    categories = [category for category, _ in CATEGORY_WEIGHTS]
    category_cum = list(accumulate(weight for _, weight in CATEGORY_WEIGHTS))
    districts = _district_index()
    for _ in range(count):
        lat, lon = _draw_location(rng, hotspot_cum)
        district = districts.at(lat, lon)
        road = rng.choice(district.roads)
        category = rng.choices(categories, cum_weights=category_cum)[0]
        name = _merchant_name(rng, category, road)
        address = f"{_street_number(rng)} {road} Rd, {district.name}"
        phone = _landline(rng) if rng.random() < PHONE_SHARE else None
        yield DemoPoi(name, category, address, phone, round(lat, 6), round(lon, 6))


def _draw_location(rng: random.Random, hotspot_cum: Sequence[float]) -> tuple[float, float]:
    while True:
        u = rng.random()
        if u < CORE_SHARE:
            lat, lon = _gaussian(rng, CENTRE_LAT, CENTRE_LON, CORE_SIGMA_KM)
        elif u < CORE_SHARE + HOTSPOT_SHARE:
            spot = rng.choices(HOTSPOTS, cum_weights=hotspot_cum)[0]
            lat, lon = _gaussian(rng, spot.lat, spot.lon, spot.sigma_km)
        else:  # uniform over the disc: the radius goes with the square root
            r = EDGE_RADIUS_KM * math.sqrt(rng.random())
            theta = rng.random() * math.tau
            lat, lon = _offset(CENTRE_LAT, CENTRE_LON, r * math.cos(theta), r * math.sin(theta))
        if _km(lat, lon, CENTRE_LAT, CENTRE_LON) <= MAX_RADIUS_KM and not _in_yangtze(lat, lon):
            return lat, lon


def _gaussian(rng: random.Random, lat: float, lon: float, sigma_km: float) -> tuple[float, float]:
    return _offset(lat, lon, rng.gauss(0.0, sigma_km), rng.gauss(0.0, sigma_km))


def _offset(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    return lat + north_km / _KM_PER_DEG_LAT, lon + east_km / _KM_PER_DEG_LON


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return math.hypot((lat1 - lat2) * _KM_PER_DEG_LAT, (lon1 - lon2) * _KM_PER_DEG_LON)


def _in_yangtze(lat: float, lon: float) -> bool:
    """The estuary north-east of the city, roughly: beyond the shore from Wusongkou (31.42 N, 121.50 E) to
    Pudong airport (31.17 N, 121.85 E). Nobody runs a shop there."""
    return lon > 121.50 and lat > 31.42 - (lon - 121.50) * (0.25 / 0.35)


class _DistrictIndex:
    """Which district a point lies in, by the nearest district centre, precomputed on a ~1 km grid."""

    STEP_DEG = 0.01

    def __init__(self) -> None:
        self.lat0 = CENTRE_LAT - 0.35
        self.lon0 = CENTRE_LON - 0.42
        self.rows = 70
        self.cols = 84
        centres = [(lat, lon, district) for district in DISTRICTS for lat, lon in district.centres]
        self.cells: list[District] = []
        for row in range(self.rows):
            lat = self.lat0 + (row + 0.5) * self.STEP_DEG
            for col in range(self.cols):
                lon = self.lon0 + (col + 0.5) * self.STEP_DEG
                self.cells.append(min(centres, key=lambda c: _km(lat, lon, c[0], c[1]))[2])

    def at(self, lat: float, lon: float) -> District:
        row = min(max(int((lat - self.lat0) / self.STEP_DEG), 0), self.rows - 1)
        col = min(max(int((lon - self.lon0) / self.STEP_DEG), 0), self.cols - 1)
        return self.cells[row * self.cols + col]


@cache
def _district_index() -> _DistrictIndex:
    return _DistrictIndex()


def _merchant_name(rng: random.Random, category: str, road: str) -> str:
    chains = CHAINS.get(category)
    if chains and rng.random() < CHAIN_SHARE.get(category, 0.0):
        return f"{rng.choice(chains)} {road} Rd"  # a branch: "FamilyMart Yan'an Middle Rd"
    trade = rng.choice(TRADES[category])
    u = rng.random()
    if u < 0.45:  # "Lao Wang Noodle House"
        return f"{rng.choice(OWNER_FORMS).format(rng.choice(FAMILY_NAMES))} {trade}"
    if u < 0.80:  # "Golden Lotus Tea House"
        return f"{rng.choice(FANCY_ADJECTIVES)} {rng.choice(FANCY_NOUNS)} {trade}"
    return f"{road} Rd {trade}"  # "Wukang Rd Bakery"


def _street_number(rng: random.Random) -> int:
    # Most shops sit on the first kilometres of a road; long roads run to four digits.
    return 1 + int(rng.expovariate(1 / 400)) % 2000


def _landline(rng: random.Random) -> str:
    return f"+86 21 {rng.randint(2000, 6999)} {rng.randint(0, 9999):04d}"


def _mobile(rng: random.Random) -> str:
    return f"+86 {rng.choice(MOBILE_PREFIXES)} {rng.randint(0, 9999):04d} {rng.randint(0, 9999):04d}"


# ---------------------------------------------------------------------------------------------------------------
# Teams and users


class _TeamSpec(NamedTuple):
    name: str
    parent: str | None
    patch: tuple[float, float] | None = None  # where its BDs canvass (leaf sales teams only)


# Parents come before their children.
_TEAMS: tuple[_TeamSpec, ...] = (
    _TeamSpec("Shanghai Sales", None),
    _TeamSpec("Huangpu", "Shanghai Sales", (31.2317, 121.4846)),
    _TeamSpec("Jing'an", "Shanghai Sales", (31.2285, 121.4480)),
    _TeamSpec("Xuhui", "Shanghai Sales", (31.1955, 121.4365)),
    _TeamSpec("Pudong", "Shanghai Sales"),
    _TeamSpec("Lujiazui", "Pudong", (31.2397, 121.4998)),
    _TeamSpec("Zhangjiang", "Pudong", (31.2040, 121.5900)),
    _TeamSpec("Field Service", None),
)
# Where each sales team's BDs start their day (backend/demo/movement.py).
TEAM_PATCHES: dict[str, tuple[float, float]] = {team.name: team.patch for team in _TEAMS if team.patch is not None}
_BDS_PER_TEAM = 3
_ROLE_ORDER = ("admin", "ops", "supervisor", "bd", "technician")


class _UserSpec(NamedTuple):
    username: str
    role: str
    data_scope: str
    team: str | None


def _user_specs() -> list[_UserSpec]:
    users = [
        _UserSpec("admin@demo", "admin", "all", None),
        _UserSpec("ops@demo", "ops", "all", None),
        _UserSpec("supervisor@demo", "supervisor", "team_and_below", "Shanghai Sales"),
        _UserSpec("sup.huangpu@demo", "supervisor", "team_and_below", "Huangpu"),
        _UserSpec("sup.jingan@demo", "supervisor", "team_and_below", "Jing'an"),
        _UserSpec("sup.xuhui@demo", "supervisor", "team_and_below", "Xuhui"),
        _UserSpec("sup.pudong@demo", "supervisor", "team_and_below", "Pudong"),
        _UserSpec("sup.service@demo", "supervisor", "team_and_below", "Field Service"),
    ]
    leaves = [team.name for team in _TEAMS if team.patch is not None]
    users += [
        _UserSpec(f"bd{i * _BDS_PER_TEAM + j + 1}@demo", "bd", "self", team)
        for i, team in enumerate(leaves)
        for j in range(_BDS_PER_TEAM)
    ]
    users += [_UserSpec(f"tech{i}@demo", "technician", "self", "Field Service") for i in (1, 2)]
    return users


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _person_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}"
        if name not in names:
            names.append(name)
    return names


class _Plan(NamedTuple):
    """Every row of the demo, built in memory before the transaction opens so that it stays short."""

    tenant_id: UUID
    teams: list[tuple[UUID, UUID, UUID | None, str, str]]  # id, tenant_id, parent_id, name, path
    users: list[tuple[UUID, UUID, UUID | None, str, str, str | None, str, str, str]]
    pois: list[_PoiRow]
    contacts: list[tuple[UUID, UUID, UUID, str, str, str | None]]  # id, tenant_id, poi_id, name, role, phone
    logins: DemoLogins


def _lead_age(drawn_s: float) -> timedelta:
    """A held lead's age, from one draw in [600 s, 30 days] (the same draws as before the lead pool, so every other
    seeded value stays the same): nine in ten claimed in the last 11 days, safe under the default policy (15 days
    without a visit); one in ten 12.2 to 14.8 days ago, inside the 3-day warning window before its release."""
    share = (drawn_s - 600) / (30 * 86_400 - 600)
    if share < NEAR_EXPIRY_FROM:
        return timedelta(seconds=600 + share / NEAR_EXPIRY_FROM * (11 * 86_400 - 600))
    return timedelta(days=12.2 + (share - NEAR_EXPIRY_FROM) / (1 - NEAR_EXPIRY_FROM) * 2.6)


def _plan(poi_count: int) -> _Plan:
    rng = random.Random(SEED)
    started = time.perf_counter()
    say(f"generating {poi_count:,} merchants")
    merchants: list[DemoPoi] = []
    for i, poi in enumerate(generate_pois(poi_count, rng), 1):
        merchants.append(poi)
        if i % _PROGRESS_EVERY == 0 and i < poi_count:
            say(f"  {i:,} / {poi_count:,}")
    generated = time.perf_counter()
    say(f"generated in {generated - started:.1f} s")

    tenant_id = _uuid(rng)
    team_ids: dict[str, UUID] = {}
    team_paths: dict[str, str] = {}
    teams: list[tuple[UUID, UUID, UUID | None, str, str]] = []
    for team in _TEAMS:
        team_id = _uuid(rng)
        parent_id = team_ids[team.parent] if team.parent else None
        path = (team_paths[team.parent] if team.parent else "/") + f"{team_id}/"
        team_ids[team.name], team_paths[team.name] = team_id, path
        teams.append((team_id, tenant_id, parent_id, team.name, path))

    # argon2 is slow on purpose: one hash serves every demo user
    password_hash = hash_password(DEMO_PASSWORD, fast=False)
    specs = _user_specs()
    users: list[tuple[UUID, UUID, UUID | None, str, str, str | None, str, str, str]] = []
    user_ids: dict[str, UUID] = {}
    usernames: dict[str, list[str]] = {role: [] for role in _ROLE_ORDER}
    for spec, display_name in zip(specs, _person_names(rng, len(specs)), strict=True):
        user_id = _uuid(rng)
        user_ids[spec.username] = user_id
        usernames[spec.role].append(spec.username)
        user_team_id = team_ids[spec.team] if spec.team else None
        phone = _mobile(rng)
        users.append(
            (
                user_id,
                tenant_id,
                user_team_id,
                spec.username,
                display_name,
                phone,
                spec.role,
                spec.data_scope,
                password_hash,
            )
        )

    # Leads: a BD holds merchants on their own team's patch, each claimed some time in the last 30 days.
    patches = [
        (team.patch, [user_ids[u.username] for u in specs if u.role == "bd" and u.team == team.name])
        for team in _TEAMS
        if team.patch is not None
    ]
    holders: dict[int, UUID] = {}
    candidates: list[tuple[int, list[UUID]]] = []
    for index, poi in enumerate(merchants):
        (lat, lon), bds = min(patches, key=lambda p: _km(poi.lat, poi.lon, p[0][0], p[0][1]))
        if _km(poi.lat, poi.lon, lat, lon) <= HOLD_RADIUS_KM:
            candidates.append((index, bds))
    for index, bds in rng.sample(candidates, min(len(candidates), round(poi_count * HELD_SHARE))):
        holders[index] = rng.choice(bds)
    now = datetime.now(UTC)

    pois: list[
        tuple[UUID, str, str, str, str | None, float, float, float | None, UUID | None, datetime | None, str]
    ] = []
    contacts: list[tuple[UUID, UUID, UUID, str, str, str | None]] = []
    for index, poi in enumerate(merchants):
        poi_id = _uuid(rng)
        radius = float(rng.randrange(30, 85, 5)) if rng.random() < CUSTOM_GEOFENCE_SHARE else None
        holder = holders.get(index)
        claimed_at = now - _lead_age(rng.uniform(600, 30 * 86_400)) if holder else None
        pois.append(
            (
                poi_id,
                poi.name,
                poi.category,
                poi.address,
                poi.phone,
                poi.lat,
                poi.lon,
                radius,
                holder,
                claimed_at,
                search_terms(poi.name, poi.address),
            )
        )
        if rng.random() < CONTACT_SHARE:
            for n in range(1 if rng.random() < 0.7 else 2):
                role = "owner" if n == 0 and rng.random() < 0.6 else rng.choice(CONTACT_ROLES)
                name = f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}"
                contact_phone = _mobile(rng) if rng.random() < 0.85 else None
                contacts.append((_uuid(rng), tenant_id, poi_id, name, role, contact_phone))

    logins = DemoLogins(tenant_id, DEMO_PASSWORD, {role: names for role, names in usernames.items() if names})
    say(f"prepared users, leads and contacts in {time.perf_counter() - generated:.1f} s")
    return _Plan(tenant_id, teams, users, pois, contacts, logins)


# ---------------------------------------------------------------------------------------------------------------
# Loading


async def seed_demo(database_url: str, *, poi_count: int = 100_000, movement: bool = True) -> DemoLogins:
    """Load the demo tenant into the (migrated) database at `database_url`, unless it is there already.

    Everything goes in under one transaction: a crash leaves no half-made tenant, and the next run starts over.
    Then, unless `movement` is False, a day of field movement (backend/demo/movement.py).
    """
    if poi_count < 0:
        raise ValueError("poi_count must be >= 0")
    conn: asyncpg.Connection = await asyncpg.connect(database_url)
    try:
        existing = await _existing_logins(conn)
        if existing is not None:
            _say_present(existing)
            return existing
        started = time.perf_counter()
        plan = _plan(poi_count)  # before BEGIN: an open writing transaction holds every sync cursor back
        async with conn.transaction():
            # Two seeders at once (two `groundwork demo` in two terminals): the second waits, then finds the tenant.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK_KEY)
            existing = await _existing_logins(conn)
            if existing is not None:
                _say_present(existing)
                return existing
            await _load(conn, plan)
        analyzing = time.perf_counter()
        await conn.execute("ANALYZE pois, poi_contacts")
        say(f"analyzed in {time.perf_counter() - analyzing:.1f} s")
    finally:
        await conn.close()
    if movement:
        await _seed_movement(database_url, plan.tenant_id)
    say(f"demo data loaded in {time.perf_counter() - started:.1f} s")
    _say_logins(plan.logins)
    return plan.logins


async def _load(conn: asyncpg.Connection, plan: _Plan) -> None:
    await conn.execute(
        "INSERT INTO tenants (id, slug, name, verification_policy) VALUES ($1, $2, $3, '{}'::jsonb)",
        plan.tenant_id,
        DEMO_SLUG,
        DEMO_TENANT_NAME,
    )
    await conn.executemany(
        "INSERT INTO teams (id, tenant_id, parent_id, name, path) VALUES ($1, $2, $3, $4, $5)", plan.teams
    )
    await conn.executemany(
        "INSERT INTO users (id, tenant_id, team_id, username, display_name, phone, role, data_scope, password_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        plan.users,
    )
    say(f"tenant {DEMO_SLUG!r}: {len(plan.teams)} teams, {len(plan.users)} users")

    started = time.perf_counter()
    await conn.execute(
        "CREATE TEMP TABLE demo_poi_staging (id uuid NOT NULL, name text NOT NULL, category text NOT NULL,"
        " address text NOT NULL, phone text, lat float8 NOT NULL, lon float8 NOT NULL, geofence_radius_m float8,"
        " holder_id uuid, claimed_at timestamptz, search_terms text NOT NULL) ON COMMIT DROP"
    )
    await conn.copy_records_to_table("demo_poi_staging", records=plan.pois)
    copied = time.perf_counter()
    say(f"copied {len(plan.pois):,} merchants to staging in {copied - started:.1f} s")
    await conn.execute(
        "INSERT INTO pois (id, tenant_id, name, category, address, phone, location, geofence_radius_m, holder_id,"
        " claimed_at, source, search_terms)"
        " SELECT id, $1, name, category, address, phone,"
        " ST_SetSRID(ST_MakePoint(round(lon::numeric, 7)::float8, round(lat::numeric, 7)::float8), 4326)::geography,"
        " geofence_radius_m, holder_id, claimed_at, 'import', search_terms FROM demo_poi_staging",
        plan.tenant_id,
    )
    inserted = time.perf_counter()
    say(f"inserted into pois (with their indexes) in {inserted - copied:.1f} s")
    await conn.copy_records_to_table(
        "poi_contacts", records=plan.contacts, columns=("id", "tenant_id", "poi_id", "name", "role", "phone")
    )
    held = sum(1 for poi in plan.pois if poi[8] is not None)
    say(f"{len(plan.contacts):,} contacts in {time.perf_counter() - inserted:.1f} s; {held:,} merchants held by BDs")
    await _seed_released_leads(conn, plan.tenant_id)
    await _seed_campaign(conn, plan.tenant_id)
    await _seed_field_service(conn, plan.tenant_id)
    # Every record in a user's scope has a row in their change feed: that is what a first sync sends (the
    # merchants by leads' one rule of what belongs on a phone).
    await conn.execute(
        "INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)"  # noqa: S608 - leads' constant SQL
        f" SELECT user_id, 'pois', poi_id, tenant_id, 'upsert' FROM ({on_phones_sql()}) AS on_phone"
        " UNION ALL"
        " SELECT assignee_id, 'work_items', id, tenant_id, 'upsert' FROM work_items WHERE tenant_id = $1",
        plan.tenant_id,
    )


async def _seed_released_leads(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """Leads the policy has released: merchants of the open pool that a BD claimed 25 days ago and lost 10 days
    ago to 15 days without a visit, each with its two rows of history (the release by the scheduler: no actor)."""
    await conn.execute(
        "WITH bds AS ("
        "   SELECT id, row_number() OVER (ORDER BY username) - 1 AS n, count(*) OVER () AS total"
        "   FROM users WHERE tenant_id = $1 AND role = 'bd'),"
        " released AS ("
        "   SELECT p.id AS poi_id, row_number() OVER (ORDER BY p.id) - 1 AS n"
        "   FROM pois p WHERE p.tenant_id = $1 AND p.holder_id IS NULL ORDER BY p.id LIMIT $2),"
        " lost AS ("
        "   SELECT r.poi_id, b.id AS bd_id FROM released r JOIN bds b ON b.n = r.n % b.total),"
        " state AS ("
        "   INSERT INTO leads (tenant_id, poi_id, state, updated_at)"
        "   SELECT $1, poi_id, 'pool', now() - interval '10 days' FROM lost)"
        " INSERT INTO lead_events (tenant_id, poi_id, at, action, actor_id, from_user_id, to_user_id, reason)"
        " SELECT $1, poi_id, now() - interval '25 days', 'claim', bd_id, NULL, bd_id, NULL FROM lost"
        " UNION ALL"
        " SELECT $1, poi_id, now() - interval '10 days', 'release', NULL, bd_id, NULL, 'no_visit' FROM lost",
        tenant_id,
        RELEASED,
    )
    say(f"{RELEASED} leads released to the pool by the policy (with their history)")


async def _seed_movement(database_url: str, tenant_id: UUID) -> None:
    """A day of field movement ending now (backend/demo/movement.py), through the tracking and visits services:
    after the tenant's transaction, as the apps would send it."""
    from backend.demo.movement import seed_movement

    started = time.perf_counter()
    seeded = await seed_movement(database_url, tenant_id, now=datetime.now(UTC), seed=SEED + 3, patches=TEAM_PATCHES)
    say(
        f"a day of movement: {seeded.fixes:,} fixes and {seeded.visits} visits of {seeded.people} people"
        f" in {time.perf_counter() - started:.1f} s"
    )


DEMO_CAMPAIGN_FORM = (
    '{"version": 1, "fields": ['
    '{"key": "owner_present", "label": "Owner present?", "type": "boolean", "required": true},'
    '{"key": "competitor", "label": "Competitor app used", "type": "choice", "options": ["none", "meituan", "eleme"]},'
    '{"key": "monthly_orders", "label": "Monthly orders (estimate)", "type": "number"}]}'
)


DEMO_JOBS = (
    # (job type, customer, phone, address, lat, lon, skills, status)
    ("install", "Zhou Min", "+86 138 1111 2001", "18 Wulumuqi Middle Rd, Xuhui", 31.2141, 121.4420, "fiber", "pooled"),
    ("repair", "Gao Lei", "+86 138 1111 2002", "301 Changle Rd, Jing'an", 31.2226, 121.4601, "router", "pooled"),
    ("measure", "Sun Ying", "+86 138 1111 2003", "66 Lujiazui Ring Rd, Pudong", 31.2397, 121.5036, "fiber", "new"),
    ("install", "Ma Jun", "+86 138 1111 2004", "5 Sichuan Middle Rd, Huangpu", 31.2338, 121.4871, "fiber", "assigned"),
    ("return_visit", "Hu Jing", "+86 138 1111 2005", "120 Fuxing West Rd, Xuhui", 31.2105, 121.4402, "router", "new"),
)


async def _seed_field_service(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """Technicians with dispatch profiles, the default job types, and a few jobs: open to grab, new, assigned."""
    technicians = await conn.fetch(
        "SELECT id, username FROM users WHERE tenant_id = $1 AND role = 'technician' ORDER BY username", tenant_id
    )
    for index, tech in enumerate(technicians):
        await conn.execute(
            "INSERT INTO technician_profiles (user_id, tenant_id, skills, regions, daily_cap, available, location,"
            " location_at) VALUES ($1, $2, $3, $4, 6, true, ST_SetSRID(ST_MakePoint($5, $6), 4326)::geography, now())",
            tech["id"],
            tenant_id,
            ["fiber", "router"] if index == 0 else ["router"],
            ["shanghai"],
            CENTRE_LON + 0.01 * index,
            CENTRE_LAT - 0.01 * index,
        )
    for key, (name, policy) in DEFAULT_JOB_TYPES.items():
        await conn.execute(
            "INSERT INTO job_types (tenant_id, key, name, policy) VALUES ($1, $2, $3, $4::jsonb)",
            tenant_id,
            key,
            name,
            json.dumps(policy),
        )
    rng = random.Random(SEED + 2)
    for job_type, customer, phone, address, lat, lon, skill, status in DEMO_JOBS:
        assignee = technicians[0]["id"] if status == "assigned" and technicians else None
        await conn.execute(
            "INSERT INTO jobs (id, tenant_id, job_type, customer_name, customer_phone, address, location,"
            " geofence_radius_m, region, required_skills, window_start, window_end, priority, policy, status,"
            " assignee_id, assigned_at, request_hash)"
            " VALUES ($1, $2, $3::varchar, $4, $5, $6, ST_SetSRID(ST_MakePoint($7, $8), 4326)::geography, 150,"
            " 'shanghai', $9, date_trunc('hour', now()), date_trunc('hour', now()) + interval '8 hours', 3,"
            " (SELECT policy FROM job_types WHERE tenant_id = $2 AND key = $3), $10, $11,"
            " CASE WHEN $11::uuid IS NULL THEN NULL ELSE now() END, 'demo')",
            UUID(int=rng.getrandbits(128), version=4),
            tenant_id,
            job_type,
            customer,
            phone,
            address,
            lon,
            lat,
            [skill],
            status,
            assignee,
        )
    await conn.execute(
        "INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)"
        " SELECT assignee_id, 'jobs', id, tenant_id, 'upsert' FROM jobs"
        " WHERE tenant_id = $1 AND assignee_id IS NOT NULL",
        tenant_id,
    )


async def _seed_campaign(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """A running recharge campaign: each BD's 25 nearest-to-centre held merchants become their work items."""
    campaign_id = UUID(int=random.Random(SEED + 1).getrandbits(128), version=4)
    await conn.execute(
        "INSERT INTO campaigns (id, tenant_id, type, title, instructions, goal, form, offer, starts_at, ends_at,"
        " time_zone, request_hash)"
        " VALUES ($1, $2, 'recharge_push', 'Winter recharge push',"
        " 'Visit the merchant, present the winter bonus, help them recharge in the app.',"
        ' \'{"kind": "recharge_amount", "target": 500}\'::jsonb, $3::jsonb,'
        ' \'{"title": "10% winter bonus", "description": "On recharges of 500 CNY or more"}\'::jsonb,'
        " date_trunc('day', now()) - interval '2 days', date_trunc('day', now()) + interval '28 days',"
        " 'Asia/Shanghai', 'demo')",
        campaign_id,
        tenant_id,
        DEMO_CAMPAIGN_FORM,
    )
    await conn.execute(
        "INSERT INTO work_items (id, tenant_id, campaign_id, poi_id, assignee_id, form_version)"
        " SELECT gen_random_uuid(), $1, $2, id, holder_id, 1 FROM ("
        "   SELECT id, holder_id, row_number() OVER (PARTITION BY holder_id"
        "     ORDER BY location <-> ST_SetSRID(ST_MakePoint($3, $4), 4326)::geography, id) AS rank"
        "   FROM pois WHERE tenant_id = $1 AND holder_id IS NOT NULL) AS held"
        " WHERE rank <= 25",
        tenant_id,
        campaign_id,
        CENTRE_LON,
        CENTRE_LAT,
    )


async def _existing_logins(conn: asyncpg.Connection) -> DemoLogins | None:
    tenant_id: UUID | None = await conn.fetchval("SELECT id FROM tenants WHERE slug = $1", DEMO_SLUG)
    if tenant_id is None:
        return None
    rows = await conn.fetch("SELECT role, username FROM users WHERE tenant_id = $1 AND is_active", tenant_id)
    # The order of a fresh seed (supervisor@demo before sup.pudong@demo, bd2 before bd10); extra users last.
    canonical = {spec.username: i for i, spec in enumerate(_user_specs())}
    ordered = sorted(rows, key=lambda r: (canonical.get(r["username"], len(canonical)), r["username"]))
    usernames: dict[str, list[str]] = {}
    for role in (*_ROLE_ORDER, *sorted({r["role"] for r in rows} - set(_ROLE_ORDER))):
        names = [r["username"] for r in ordered if r["role"] == role]
        if names:
            usernames[role] = names
    return DemoLogins(tenant_id, DEMO_PASSWORD, usernames)


def _say_present(logins: DemoLogins) -> None:
    say(f"demo data is present (tenant {DEMO_SLUG!r}, id {logins.tenant_id}); nothing to load")
    _say_logins(logins)


def _say_logins(logins: DemoLogins) -> None:
    say(f"Demo logins (password: {logins.password}):")
    width = max((len(role) for role in logins.usernames), default=0) + 1
    for role, names in logins.usernames.items():
        say(f"  {role + ':':<{width}} {', '.join(names)}")
