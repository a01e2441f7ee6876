"""Bulk intake: 100,000 merchants imported from a CSV, against the same rows inserted with no judgement.

- **import**: `backend.intake.service.run_import`, the function the worker runs for `POST /v1/intake/imports`
  and the CLI runs for `groundwork import merchants`: parse, validate, convert, judge each row against stored
  merchants and earlier rows (candidates by KNN and trigram, `names.judge` in Python), insert, review queue.
- **baseline**: the same rows through the same `INSERT ... SELECT FROM unnest(...)`, chunk for chunk, without the
  candidate lookup or the judge: what storing alone costs. The ratio is the price of judging.

The file has the shapes intake meets: Chinese names of chains and their branches, shops named after their
owners, 3% rows that repeat an earlier row a few metres off (sure duplicates), 2% in traditional characters or
full-width forms (the same shops again), a few rows with bad coordinates (refused).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from backend.db.engine import Database
from backend.intake.service import CHUNK, run_import
from backend.settings import Settings
from bench.database import create_and_migrate
from bench.progress import say

DATABASE = "groundwork_bench_intake"
ROWS = 100_000
BRANDS = ("瑞幸咖啡", "星巴克", "肯德基", "麦当劳", "喜茶", "奈雪的茶", "全家", "罗森", "沙县小吃", "兰州拉面")
ROADS = ("南京西路", "淮海中路", "徐家汇", "陆家嘴", "静安寺", "人民广场", "中山公园", "五角场", "长寿路", "虹桥")
OWNERS = ("老王", "小李", "张记", "阿娘", "刘家", "陈师傅", "黄阿姨", "赵氏")
TRADES = ("面馆", "水果店", "便利店", "烧烤", "馄饨店", "理发店", "药房", "花店", "生煎", "茶叶店")
LUCKY = "金银福禄寿喜财旺兴隆昌盛顺发祥瑞吉安康乐和美华丽新鑫源泰丰恒达富贵龙凤鹏飞宏伟明星光辉"
_TRAD = str.maketrans("面馆烧烤馄饨药房叶记师发阿长门", "麵館燒烤餛飩藥房葉記師髮阿長門")


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    rows: int = ROWS


def merchants_csv(rows: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    lines = ["名称,类别,地址,电话,纬度,经度"]
    made: list[tuple[str, float, float]] = []
    for n in range(rows):
        roll = rng.random()
        if made and roll < 0.03:  # the same shop again, a few metres off
            name, lat, lon = rng.choice(made)
            lat, lon = lat + rng.uniform(-5e-5, 5e-5), lon + rng.uniform(-5e-5, 5e-5)
        elif made and roll < 0.05:  # traditional characters, full-width brackets
            name, lat, lon = rng.choice(made)
            name = name.translate(_TRAD).replace("(", "\uff08").replace(")", "\uff09")
        elif roll < 0.0505:
            name, lat, lon = f"坏数据{n}", 999.0, 121.47
        else:
            # Distinct shops, named as shops are: a chain's branch by its road and a landmark, a family shop by its
            # owner, trade and a lucky word (no serial numbers, which would make every name a near twin).
            if rng.random() < 0.4:
                name = f"{rng.choice(BRANDS)}({rng.choice(ROADS)}{''.join(rng.sample(LUCKY, 2))}店)"
            else:
                name = f"{rng.choice(OWNERS)}{''.join(rng.sample(LUCKY, 2))}{rng.choice(TRADES)}"
            lat, lon = 31.23 + rng.gauss(0, 0.08), 121.47 + rng.gauss(0, 0.1)
            made.append((name, lat, lon))
        phone = f"021-{rng.randrange(10**7, 10**8)}" if rng.random() < 0.3 else ""
        lines.append(f"{name},shop,上海市{rng.choice(ROADS)}{rng.randrange(1, 2000)}号,{phone},{lat:.6f},{lon:.6f}")
    return ("\n".join(lines) + "\n").encode()


async def _tenant(url: str, slug: str) -> uuid.UUID:
    conn = await asyncpg.connect(url)
    try:
        old = await conn.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
        if old is not None:  # every run starts empty: the rate of a first import, not of re-judging
            await conn.execute("DELETE FROM tenants WHERE id = $1", old)
        tenant = uuid.uuid4()
        await conn.execute("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)", tenant, slug)
        return tenant
    finally:
        await conn.close()


_BASELINE_SQL = """
INSERT INTO pois (tenant_id, id, name, category, address, phone, location, search_terms, source)
SELECT $1, s.id, s.name, 'shop', s.address, s.phone, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography,
       s.terms, 'import'
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::text[])
     AS s(id, name, address, phone, lat, lon, terms)
"""


async def _baseline(url: str, content: bytes) -> dict[str, Any]:
    """The rows parsed and inserted, a chunk a transaction, nothing judged."""
    from backend.intake.names import search_terms
    from backend.intake.service import parse, validate
    from mobile_contract.intake import ImportFormat

    tenant = await _tenant(url, "bench-intake-baseline")
    conn = await asyncpg.connect(url)
    started = time.perf_counter()
    stored = 0
    try:
        rows = [r for _, raw in parse(content, ImportFormat.CSV) if not isinstance(r := validate(raw), list)]
        for offset in range(0, len(rows), CHUNK):
            chunk = rows[offset : offset + CHUNK]
            async with conn.transaction():
                await conn.execute(
                    _BASELINE_SQL,
                    tenant,
                    [uuid.uuid4() for _ in chunk],
                    [r.name for r in chunk],
                    [r.address for r in chunk],
                    [r.phone for r in chunk],
                    [r.lat for r in chunk],
                    [r.lon for r in chunk],
                    [search_terms(r.name, r.address) for r in chunk],
                )
            stored += len(chunk)
    finally:
        await conn.close()
    seconds = time.perf_counter() - started
    return {"rows": stored, "seconds": round(seconds, 2), "rows_per_s": round(stored / seconds, 1)}


def run(settings: Settings, config: IntakeConfig) -> dict[str, Any]:
    url = create_and_migrate(settings, DATABASE)
    say(f"making a CSV of {config.rows:,} merchants (Chinese names, 5% duplicates in other spellings)")
    content = merchants_csv(config.rows)
    say(f"{len(content) / 2**20:.1f} MiB; baseline: the same rows inserted with no judgement")
    baseline = asyncio.run(_baseline(url, content))
    say(f"baseline: {baseline['rows_per_s']:,.0f} rows/s; now the import")

    async def import_once() -> dict[str, Any]:
        from backend.intake.models import MerchantImport

        tenant = await _tenant(url, "bench-intake")
        database = await Database.connect(settings.with_database(url))
        try:
            async with database.sessions() as session:
                record = MerchantImport(
                    tenant_id=tenant, id=uuid.uuid4(), format="csv", content=content, status="queued", report={}
                )
                session.add(record)
                await session.commit()
                import_id = record.id
            started = time.perf_counter()
            last = [0.0]

            def shown(progress: Any) -> None:
                if time.perf_counter() - last[0] >= 5:
                    last[0] = time.perf_counter()
                    rate = progress.rows / (last[0] - started)
                    say(f"  {progress.rows:,} rows, {rate:,.0f} rows/s")

            done = await run_import(database.sessions, tenant, import_id, on_progress=shown)
            seconds = time.perf_counter() - started
        finally:
            await database.close()
        return {
            "rows": done.rows,
            "imported": done.imported,
            "duplicates": done.duplicates,
            "likely_duplicates": done.likely_duplicates,
            "refused": done.refused,
            "seconds": round(seconds, 2),
            "rows_per_s": round(done.rows / seconds, 1),
        }

    imported = asyncio.run(import_once())
    return {
        "rows": config.rows,
        "chunk": CHUNK,
        "import": imported,
        "baseline": baseline,
        "ratio": round(imported["rows_per_s"] / baseline["rows_per_s"], 3),
    }
