"""The sync benchmark's data: one BD with 5,000 merchants in scope and the change feed the services wrote for them.

In the database `groundwork_bench_sync` (migrated like the app's; reused by later runs):

- the bench tenant, team and BD of `database.ensure_people`, an ops user who ran the campaign, and 200 other BDs;
- 50,000 merchants: the BD's 5,000 in a 10 km territory around the centre (1-2,000 targeted by the BD's work
  items, 2,001-5,000 held by the BD as leads, 30% with a contact), 20,000 targeted by the other BDs' work items,
  25,000 nobody's, in the 50 km box of the nearby benchmark;
- one campaign with 22,000 work items: 2,000 assigned to the BD, 100 to each other BD;
- `sync_changes`, the change feed, as the services write it (`sync.feed.record_changes`: one `upsert` row per
  user, collection and record, stamped with the writing transaction's id): the BD's 3,000 leads claimed in 30
  transactions (a claim writes `pois` for the claimer), then the campaign's targeting in one transaction
  (`tasks.service.add_targets` writes `work_items` and `pois` for each assignee); plus, for each other BD, 1,800
  more rows of synthetic records (mixed collections, 5% removals) so that the feed holds 2,000 rows per other BD:
  407,000 rows in all, and the pull's index is that of a busy tenant, not of one user. The synthetic rows are
  never pulled, so the records they name need not exist.

Generated in SQL with fixed ids (md5 of a name) and `setseed`, like database.py's merchants: the same rows on
every load. `reset_bd` undoes what a run's push did (visits, stored mutations, work item progress), so every run
starts from the same state.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from backend.db.admin import database_name
from backend.settings import Settings
from bench import database
from bench.progress import say

SYNC_DATABASE = "groundwork_bench_sync"
DATA_VERSION = "bench-sync-data v1"  # stored in the campaign's instructions: change it to force a reload

TARGETED = 2_000  # the BD's work items, one per merchant
LEADS = 3_000  # merchants the BD holds as leads
IN_SCOPE = TARGETED + LEADS
OTHER_BDS = 200
OTHER_WORK_ITEMS = 100  # per other BD
OTHER_FEED_ROWS = 2_000  # per other BD: their work items and merchants, plus synthetic rows
NOBODYS_POIS = 25_000
TOTAL_POIS = IN_SCOPE + OTHER_BDS * OTHER_WORK_ITEMS + NOBODYS_POIS
LEAD_TRANSACTIONS = 30
TERRITORY_KM = 10.0  # the BD's merchants are in a 10 km square around the centre
CONTACT_SHARE = 0.3

OPS_ID = UUID("00000000-0000-4000-8000-00000000be11")
CAMPAIGN_ID = UUID("00000000-0000-4000-8000-00000000be12")
_SEED = 0.3141
_LOCK_KEY = 0x6772_6E64_5359_4E43  # "grndSYNC"

FORM = {
    "version": 1,
    "fields": [
        {"key": "interest", "label": "Interested in the offer?", "type": "choice", "options": ["yes", "no", "later"]},
        {"key": "decision_maker", "label": "Spoke to the owner", "type": "boolean"},
        {"key": "notes", "label": "What the merchant said", "type": "text"},
    ],
}
GOAL = {"kind": "sign", "target": 1.0}

# Merchant n: in scope of the BD for n <= IN_SCOPE (held for TARGETED < n), in the territory; elsewhere in the box.
_INSERT_POIS = """
INSERT INTO pois (id, tenant_id, name, category, address, phone, location, holder_id, claimed_at, source)
SELECT md5('bench-sync-poi-' || s.n)::uuid,
       $1,
       'Shop ' || s.n,
       ($4::text[])[1 + floor(random() * cardinality($4::text[]))::int],
       (1 + floor(random() * 999))::int || ' ' || ($5::text[])[1 + floor(random() * cardinality($5::text[]))::int]
           || ', Shanghai',
       CASE WHEN random() < 0.7 THEN '+86 13' || lpad(floor(random() * 1e9)::bigint::text, 9, '0') END,
       ST_SetSRID(ST_MakePoint(
           $6::float8 + (random() * 2 - 1) * CASE WHEN s.n <= $10::int THEN $11::float8 ELSE $8::float8 END,
           $7::float8 + (random() * 2 - 1) * CASE WHEN s.n <= $10::int THEN $12::float8 ELSE $9::float8 END),
           4326)::geography,
       CASE WHEN s.n > $13::int AND s.n <= $10::int THEN $2::uuid END,
       CASE WHEN s.n > $13::int AND s.n <= $10::int THEN now() - random() * interval '60 days' END,
       'import'
FROM generate_series(1, $3::int) AS s(n)
"""

_INSERT_CONTACTS = """
INSERT INTO poi_contacts (id, tenant_id, poi_id, name, role, phone)
SELECT md5('bench-sync-contact-' || n)::uuid, $1, md5('bench-sync-poi-' || n)::uuid, 'Owner of shop ' || n, 'owner',
       '+86 139' || lpad(n::text, 8, '0')
FROM generate_series(1, $2::int) AS n
WHERE random() < $3
"""

_INSERT_OTHER_BDS = """
INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)
SELECT md5('bench-sync-bd-' || k)::uuid, $1, $2, 'bench-bd-' || k || '@bench', 'Bench BD ' || k, 'bd', 'self',
       'no-login'
FROM generate_series(1, $3::int) AS k
"""

# The BD's work items on merchants 1..TARGETED; other BD k's on the OTHER_WORK_ITEMS merchants after IN_SCOPE.
_INSERT_WORK_ITEMS = """
INSERT INTO work_items (id, tenant_id, campaign_id, poi_id, assignee_id, form_version)
SELECT md5('bench-sync-wi-' || n)::uuid, $1, $2, md5('bench-sync-poi-' || n)::uuid,
       CASE WHEN n <= $4 THEN $3::uuid ELSE md5('bench-sync-bd-' || ((n - $5 - 1) / $6 + 1))::uuid END, 1
FROM (SELECT generate_series(1, $4::int) UNION ALL SELECT generate_series($5::int + 1, $5::int + $7::int)) AS s(n)
"""

# A claim writes `pois` for the claimer (pois.service.create); the leads n in [$3, $4].
_FEED_LEADS = """
INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)
SELECT $2, 'pois', md5('bench-sync-poi-' || n)::uuid, $1, 'upsert' FROM generate_series($3::int, $4::int) AS n
"""

# add_targets: `work_items` and `pois` for each assignee, in the targeting transaction.
_FEED_TARGETS = """
INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)
SELECT assignee_id, 'work_items', id, tenant_id, 'upsert' FROM work_items WHERE campaign_id = $1
UNION ALL
SELECT assignee_id, 'pois', poi_id, tenant_id, 'upsert' FROM work_items WHERE campaign_id = $1
"""

# The other BDs' feeds grow to OTHER_FEED_ROWS rows each with synthetic records (never pulled).
_FEED_NOISE = """
INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)
SELECT md5('bench-sync-bd-' || k)::uuid, (ARRAY['pois', 'visits', 'work_items', 'jobs'])[1 + i % 4],
       md5('bench-sync-noise-' || k || '-' || i)::uuid, $1, CASE WHEN i % 20 = 0 THEN 'remove' ELSE 'upsert' END
FROM generate_series(1, $2::int) AS k, generate_series(1, $3::int) AS i
"""


@dataclass(frozen=True, slots=True)
class SyncData:
    url: str
    tenant_id: UUID
    team_id: UUID
    user_id: UUID  # the BD who syncs
    feed_rows: int  # sync_changes rows of every user

    @property
    def name(self) -> str:
        return database_name(self.url)


@dataclass(frozen=True, slots=True)
class Target:
    poi_id: UUID
    lat: float
    lon: float


def prepare(settings: Settings) -> SyncData:
    url = database.create_and_migrate(settings, SYNC_DATABASE)
    return asyncio.run(_ensure_data(url))


def _expected_feed_rows() -> int:
    return IN_SCOPE + TARGETED + OTHER_BDS * OTHER_FEED_ROWS


async def _ensure_data(url: str) -> SyncData:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        tenant_id, team_id, user_id = await database.ensure_people(conn)
        await _reset_bd(conn, tenant_id, user_id)
        found = await conn.fetchrow(
            "SELECT (SELECT instructions FROM campaigns WHERE tenant_id = $1 AND id = $2) AS version,"
            " (SELECT count(*) FROM pois WHERE tenant_id = $1) AS pois,"
            " (SELECT count(*) FROM work_items WHERE tenant_id = $1) AS work_items,"
            " (SELECT count(*) FROM sync_changes WHERE tenant_id = $1) AS feed",
            tenant_id,
            CAMPAIGN_ID,
        )
        expected = (DATA_VERSION, TOTAL_POIS, TARGETED + OTHER_BDS * OTHER_WORK_ITEMS, _expected_feed_rows())
        if tuple(found) == expected:
            say(
                f"reusing the sync data in {database_name(url)}: {TOTAL_POIS:,} merchants, {found['work_items']:,} "
                f"work items, {found['feed']:,} change feed rows"
            )
        else:
            if found["pois"] or found["feed"]:
                say(f"{database_name(url)} holds other data ({tuple(found)}): loading afresh")
                await conn.execute("TRUNCATE tenants, sync_changes, sync_mutations, sync_horizon CASCADE")
                tenant_id, team_id, user_id = await database.ensure_people(conn)
            await _load(conn, tenant_id, team_id, user_id)
    finally:
        await conn.close()
    return SyncData(url=url, tenant_id=tenant_id, team_id=team_id, user_id=user_id, feed_rows=_expected_feed_rows())


async def _load(conn: asyncpg.Connection, tenant_id: UUID, team_id: UUID, user_id: UUID) -> None:
    started = time.perf_counter()
    say(
        f"loading the sync data (once): {TOTAL_POIS:,} merchants, {OTHER_BDS} other BDs, "
        f"{TARGETED + OTHER_BDS * OTHER_WORK_ITEMS:,} work items, {_expected_feed_rows():,} change feed rows"
    )
    half_lat, half_lon = database.half_span_deg(database.BOX_KM)
    territory_lat, territory_lon = database.half_span_deg(TERRITORY_KM)
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SELECT setseed($1)", _SEED)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO users (id, tenant_id, team_id, username, display_name, role, data_scope, password_hash)"
            " VALUES ($1, $2, $3, 'bench-ops@bench', 'Bench Ops', 'ops', 'all', 'no-login')",
            OPS_ID,
            tenant_id,
            team_id,
        )
        await conn.execute(_INSERT_OTHER_BDS, tenant_id, team_id, OTHER_BDS)
        await conn.execute(
            _INSERT_POIS,
            tenant_id,
            user_id,
            TOTAL_POIS,
            list(database.CATEGORIES),
            list(database.ROADS),
            database.CENTRE_LON,
            database.CENTRE_LAT,
            half_lon,
            half_lat,
            IN_SCOPE,
            territory_lon,
            territory_lat,
            TARGETED,
        )
        await conn.execute(_INSERT_CONTACTS, tenant_id, IN_SCOPE, CONTACT_SHARE)
        await conn.execute(
            "INSERT INTO campaigns (id, tenant_id, type, title, instructions, goal, form, offer, starts_at, ends_at,"
            " time_zone, created_by, request_hash) VALUES ($1, $2, 'new_signing', 'Spring sign-up drive', $3,"
            " $4::text::jsonb, $5::text::jsonb, NULL, now() - interval '7 days', now() + interval '365 days',"
            " 'Asia/Shanghai', $6, 'bench')",
            CAMPAIGN_ID,
            tenant_id,
            DATA_VERSION,
            json.dumps(GOAL),
            json.dumps(FORM),
            OPS_ID,
        )
        await conn.execute(
            _INSERT_WORK_ITEMS,
            tenant_id,
            CAMPAIGN_ID,
            user_id,
            TARGETED,
            IN_SCOPE,
            OTHER_WORK_ITEMS,
            OTHER_BDS * OTHER_WORK_ITEMS,
        )
    say(f"  people, merchants, campaign and work items in {time.perf_counter() - started:.0f} s; now the change feed")
    # The feed in the transactions that would have written it, each with its own xid, oldest first.
    per_tx = -(-LEADS // LEAD_TRANSACTIONS)
    for first in range(TARGETED + 1, IN_SCOPE + 1, per_tx):
        await conn.execute(_FEED_LEADS, tenant_id, user_id, first, min(first + per_tx - 1, IN_SCOPE))
    await conn.execute(_FEED_TARGETS, CAMPAIGN_ID)
    await conn.execute(_FEED_NOISE, tenant_id, OTHER_BDS, OTHER_FEED_ROWS - 2 * OTHER_WORK_ITEMS)
    say("VACUUM (ANALYZE): statistics, hint bits and visibility map set before measuring")
    await conn.execute(
        "VACUUM (ANALYZE) pois, poi_contacts, users, campaigns, work_items, sync_changes, sync_mutations, visits"
    )
    say(f"loaded in {time.perf_counter() - started:.0f} s")


async def _reset_bd(conn: asyncpg.Connection, tenant_id: UUID, user_id: UUID) -> None:
    """Undo a previous run's push: the BD's visits, stored mutations and work item progress."""
    async with conn.transaction():
        visits = await conn.execute("DELETE FROM visits WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id)
        await conn.execute("DELETE FROM sync_mutations WHERE user_id = $1", user_id)
        await conn.execute("DELETE FROM sync_changes WHERE user_id = $1 AND collection = 'visits'", user_id)
        items = await conn.execute(
            "UPDATE work_items SET status = 'assigned', field_xids = '{}', updated_at = now()"
            " WHERE tenant_id = $1 AND assignee_id = $2 AND (status <> 'assigned' OR field_xids <> '{}')",
            tenant_id,
            user_id,
        )
    undone = int(visits.split()[-1]) + int(items.split()[-1])
    if undone:
        say(f"undid the previous run's push ({visits.split()[-1]} visits, {items.split()[-1]} work items reset)")
        await conn.execute("VACUUM (ANALYZE) visits, work_item_visits, work_items, sync_changes, sync_mutations")


def reset_bd(data: SyncData) -> None:
    async def run() -> None:
        conn: asyncpg.Connection = await asyncpg.connect(data.url)
        try:
            await _reset_bd(conn, data.tenant_id, data.user_id)
        finally:
            await conn.close()

    asyncio.run(run())


def targets(data: SyncData) -> list[Target]:
    """The merchants of the BD's work items, with where they are."""
    rows = database.fetch(
        data.url,
        "SELECT p.id, ST_Y(p.location::geometry) AS lat, ST_X(p.location::geometry) AS lon"
        " FROM work_items w JOIN pois p ON p.tenant_id = w.tenant_id AND p.id = w.poi_id"
        " WHERE w.tenant_id = $1 AND w.assignee_id = $2"
        " ORDER BY w.id",
        [data.tenant_id, data.user_id],
    )
    return [Target(poi_id=row["id"], lat=row["lat"], lon=row["lon"]) for row in rows]


def feed_facts(data: SyncData) -> dict[str, Any]:
    """How the change feed looks: rows in all, the BD's rows per collection, distinct transactions of the BD's."""
    rows = database.fetch(
        data.url,
        "SELECT collection, count(*) AS n, count(DISTINCT xid) AS xids FROM sync_changes WHERE user_id = $1"
        " GROUP BY collection ORDER BY collection",
        [data.user_id],
    )
    total = database.fetch(data.url, "SELECT count(*) AS n FROM sync_changes", [])[0]["n"]
    return {
        "rows_all_users": int(total),
        "bd_rows": {row["collection"]: int(row["n"]) for row in rows},
        "bd_transactions": {row["collection"]: int(row["xids"]) for row in rows},
    }
