"""Lead intake: merchants imported in bulk (CSV or JSON), judged against what is stored, and likely duplicates
reviewed and merged by a person.

An import is a row with its file; the queue's worker (or the CLI, directly) reads it in chunks of `CHUNK` rows,
one transaction each, so a 100,000-row file never holds one long writing transaction (which would hold back every
phone's sync cursor, ARCHITECTURE "Sync"). Each row is validated (refused rows are reported with their reasons),
converted to WGS-84 and judged by `backend.intake.names.judge` against stored merchants and against the rows
before it: a sure duplicate is not imported (the report names the merchant it is), a likely one is imported and
waits in the review queue beside the merchant it may be. Row ids derive from the import id and the line, so a
retried job (a worker killed mid-file) imports nothing twice.

A merge keeps everything of both merchants: every table that references a merchant (found in the catalog, so a
domain added later is covered without an edit here) is repointed to the kept one; a campaign that targeted both
keeps the kept merchant's work item and receives the other's history and visits. Phones that held the merged
merchant are told it is gone, and the owners of what moved get it again.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import permissions
from backend.auth.models import User
from backend.auth.tokens import Principal
from backend.coordinates import point_to_wgs84
from backend.errors import DomainError, not_found
from backend.intake.models import MerchantDuplicate, MerchantImport
from backend.intake.names import CHAIN_SPACING_M, NEAR_M, Judgement, MerchantRecord, Verdict, judge, search_terms
from backend.intake.routing import assign_new_leads
from backend.queue.service import enqueue
from geo.distance import haversine_m
from mobile_contract import intake as wire
from mobile_contract.admin import Feature
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from sync.feed import Change, record_changes

CHUNK = 1_000
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_REPORTED = 1_000  # refused and skipped rows kept in the report, each
IMPORT_JOB = "intake.import"

# Column names as spreadsheets from Chinese systems spell them, and the usual English ones.
HEADERS: dict[str, str] = {
    **{name: name for name in ("name", "category", "address", "phone", "lat", "lon", "crs", "holder")},
    "latitude": "lat",
    "lng": "lon",
    "longitude": "lon",
    "tel": "phone",
    "名称": "name",
    "商户名称": "name",
    "门店名称": "name",
    "店名": "name",
    "类别": "category",
    "品类": "category",
    "分类": "category",
    "地址": "address",
    "电话": "phone",
    "联系电话": "phone",
    "纬度": "lat",
    "经度": "lon",
    "坐标系": "crs",
    "负责人": "holder",
}


class ImportUnreadable(ValueError):
    """The file as a whole cannot be read (not CSV/JSON, no name column): nothing of it is imported."""


def decode_text(content: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else GB18030: what Chinese Excel saves as 'CSV'."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return content.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ImportUnreadable("the file is neither UTF-8 nor GB18030 text") from exc


def parse(content: bytes, fmt: wire.ImportFormat) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, raw row) of every row; raises ImportUnreadable when the file as a whole makes no sense."""
    if fmt is wire.ImportFormat.CSV:
        yield from _parse_csv(decode_text(content))
    else:
        yield from _parse_json(content)


def _parse_csv(body: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(body, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ImportUnreadable("the CSV has no header line") from exc
    columns = [HEADERS.get(h.strip().lstrip("\ufeff").casefold()) for h in header]
    if "name" not in columns:
        raise ImportUnreadable("the CSV header has no name column (name, 名称, 商户名称, ...)")
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            row = {
                col: cell.strip() for col, cell in zip(columns, cells, strict=False) if col is not None and cell.strip()
            }
            yield reader.line_num, row
    except csv.Error as exc:
        raise ImportUnreadable(f"the CSV cannot be read past line {reader.line_num}: {exc}") from exc


def _parse_json(content: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        decoded = msgspec.json.decode(content)
    except msgspec.DecodeError:
        # Newline-delimited JSON, one object per line.
        lines = content.splitlines()
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    item = msgspec.json.decode(line)
                except msgspec.DecodeError as exc:
                    raise ImportUnreadable(f"line {number} is not JSON: {exc}") from exc
                yield number, item if isinstance(item, dict) else {"__not_an_object__": True}
        return
    items = decoded.get("merchants") if isinstance(decoded, dict) else decoded
    if not isinstance(items, list):
        raise ImportUnreadable('a JSON import is an array of merchants (or {"merchants": [...]})')
    for number, item in enumerate(items, start=1):
        yield number, item if isinstance(item, dict) else {"__not_an_object__": True}


_FIELDS = frozenset(wire.ImportRow.__struct_fields__)


def validate(raw: dict[str, Any]) -> wire.ImportRow | list[str]:
    """The row, or why it is refused. Unknown columns are ignored (an export carries many), not refused."""
    if raw.get("__not_an_object__"):
        return ["a row must be an object"]
    known = {key: value for key, value in raw.items() if key in _FIELDS}
    try:
        return msgspec.convert(known, wire.ImportRow, strict=False)
    except msgspec.ValidationError as exc:
        return [str(exc)]


# -- the import --------------------------------------------------------------------------------------------------


async def _can(session: AsyncSession, principal: Principal, feature: Feature, what: str) -> None:
    """The tenant's permission table decides (backend/auth/permissions.py; defaults: ops and admin import,
    supervisors also review)."""
    await permissions.require(session, principal, feature, f"Your role cannot {what}.")


async def create_import(
    session: AsyncSession, principal: Principal, content: bytes, fmt: wire.ImportFormat
) -> wire.MerchantImport:
    """Store the file and queue its import (it runs after the commit, in the worker)."""
    await _can(session, principal, Feature.IMPORT_MERCHANTS, "import merchants")
    if len(content) > MAX_IMPORT_BYTES:
        raise DomainError(ErrorCode.BODY_TOO_LARGE, f"An import is at most {MAX_IMPORT_BYTES // 2**20} MiB; split it.")
    try:  # the file must make sense as a whole before it is queued; its rows are judged one by one later
        next(iter(parse(content, fmt)), None)
    except ImportUnreadable as exc:
        raise DomainError(ErrorCode.IMPORT_UNREADABLE, str(exc)) from exc
    record = MerchantImport(
        tenant_id=principal.tenant_id,
        id=uuid.uuid4(),
        created_by=principal.user_id,
        format=fmt.value,
        content=content,
        status=wire.ImportStatus.QUEUED.value,
        report={},
    )
    session.add(record)
    await session.flush()
    await enqueue(session, IMPORT_JOB, {"import_id": str(record.id)}, tenant_id=principal.tenant_id)
    await session.refresh(record)
    return to_wire(record)


async def get_import(session: AsyncSession, principal: Principal, import_id: UUID) -> wire.MerchantImport:
    await _can(session, principal, Feature.IMPORT_MERCHANTS, "see imports")
    record = await session.get(MerchantImport, (principal.tenant_id, import_id))
    if record is None:
        raise not_found("import")
    return to_wire(record)


def to_wire(record: MerchantImport) -> wire.MerchantImport:
    report = record.report or {}
    return wire.MerchantImport(
        id=record.id,
        status=wire.ImportStatus(record.status),
        format=wire.ImportFormat(record.format),
        rows=record.rows,
        imported=record.imported,
        duplicates=record.duplicates,
        likely_duplicates=record.likely_duplicates,
        refused=record.refused,
        refused_rows=msgspec.convert(report.get("refused", []), list[wire.RefusedRow]),
        skipped=msgspec.convert(report.get("skipped", []), list[wire.SkippedDuplicate]),
        error=record.error,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


@dataclass
class Progress:
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    likely_duplicates: int = 0
    refused: int = 0
    refused_rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, line: int, reasons: list[str]) -> None:
        self.refused += 1
        if len(self.refused_rows) < MAX_REPORTED:
            self.refused_rows.append({"line": line, "reasons": reasons})

    def skip(self, line: int, poi_id: UUID, reasons: Iterable[str]) -> None:
        self.duplicates += 1
        if len(self.skipped) < MAX_REPORTED:
            self.skipped.append({"line": line, "poi_id": str(poi_id), "reasons": list(reasons)})


@dataclass(frozen=True, slots=True)
class _Staged:
    line: int
    id: UUID
    row: wire.ImportRow
    lat: float
    lon: float
    terms: str
    holder_id: UUID | None


def _batches(rows: Iterator[tuple[int, dict[str, Any]]], size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    while batch := list(islice(rows, size)):
        yield batch


async def run_import(
    sessions: Callable[[], Any],
    tenant_id: UUID,
    import_id: UUID,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Progress:
    """Import the stored file of `import_id`, a chunk per transaction. `sessions` makes an AsyncSession (the
    database's `sessions`). Safe to run again after a crash: it starts over and skips what it already stored."""
    async with sessions() as session:
        record = await session.get(MerchantImport, (tenant_id, import_id), with_for_update=True)
        if record is None or record.status == wire.ImportStatus.DONE.value or record.content is None:
            return Progress()
        content, fmt = record.content, wire.ImportFormat(record.format)
        record.status = wire.ImportStatus.RUNNING.value
        await session.commit()
    progress = Progress()
    try:
        for chunk in _batches(parse(content, fmt), CHUNK):
            async with sessions() as session:
                await _import_chunk(session, tenant_id, import_id, chunk, progress, now())
                await _save_progress(session, tenant_id, import_id, progress, status=wire.ImportStatus.RUNNING)
                await session.commit()
            if on_progress is not None:
                on_progress(progress)
    except ImportUnreadable as exc:
        async with sessions() as session:
            await _save_progress(
                session, tenant_id, import_id, progress, status=wire.ImportStatus.FAILED, error=str(exc)
            )
            await session.commit()
        return progress
    async with sessions() as session:
        await _save_progress(session, tenant_id, import_id, progress, status=wire.ImportStatus.DONE, finished=now())
        await session.commit()
    return progress


async def _save_progress(
    session: AsyncSession,
    tenant_id: UUID,
    import_id: UUID,
    progress: Progress,
    *,
    status: wire.ImportStatus,
    error: str | None = None,
    finished: datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status.value,
        "rows": progress.rows,
        "imported": progress.imported,
        "duplicates": progress.duplicates,
        "likely_duplicates": progress.likely_duplicates,
        "refused": progress.refused,
        "report": {"refused": progress.refused_rows, "skipped": progress.skipped},
        "error": error,
    }
    if status is not wire.ImportStatus.RUNNING:
        values["finished_at"] = finished or datetime.now(UTC)
        values["content"] = None  # the file is not kept once its rows are: the merchants and the report are
    await session.execute(
        update(MerchantImport)
        .where(MerchantImport.tenant_id == tenant_id, MerchantImport.id == import_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# Stored merchants that may be a staged row: near it, or within a short walk with a similar name or one phone.
_CANDIDATES_SQL = text(
    """
    WITH staged AS (
        SELECT s.line, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography AS g, s.name, s.phone
        FROM unnest(CAST(:lines AS int[]), CAST(:lats AS float8[]), CAST(:lons AS float8[]),
                    CAST(:names AS text[]), CAST(:phones AS text[])) AS s(line, lat, lon, name, phone)
    )
    -- Nearest first through the (tenant_id, location) GiST index, whatever the statistics of a tenant that is
    -- importing right now say: anything next door, or a similar name or the same phone within a short walk.
    SELECT staged.line, c.id, c.name, c.phone, c.address, c.distance_m
    FROM staged CROSS JOIN LATERAL (
        SELECT p.id, p.name, p.phone, p.address, ST_Distance(p.location, staged.g, false) AS distance_m
        FROM pois p
        WHERE p.tenant_id = :tenant_id
          AND ST_DWithin(p.location, staged.g, :radius, false)
          AND (ST_DWithin(p.location, staged.g, :near, false) OR p.name % staged.name
               OR (staged.phone IS NOT NULL AND p.phone = staged.phone))
          AND NOT (p.id = ANY(CAST(:ids AS uuid[])))
        ORDER BY p.location <-> staged.g
        LIMIT 10
    ) c
    """
)


async def _holders(session: AsyncSession, tenant_id: UUID, usernames: set[str]) -> dict[str, UUID]:
    if not usernames:
        return {}
    rows = await session.execute(
        select(User.username, User.id).where(
            User.tenant_id == tenant_id,
            User.username.in_(sorted(usernames)),
            User.role == Role.BD.value,
            User.is_active.is_(True),
        )
    )
    return {r.username: r.id for r in rows}


def _stage(
    import_id: UUID, chunk: list[tuple[int, dict[str, Any]]], progress: Progress, holders: dict[str, UUID]
) -> list[_Staged]:
    staged: list[_Staged] = []
    for line, raw in chunk:
        progress.rows += 1
        row = validate(raw)
        if isinstance(row, list):
            progress.refuse(line, row)
            continue
        holder_id = None
        if row.holder is not None:
            holder_id = holders.get(row.holder)
            if holder_id is None:
                progress.refuse(line, [f"holder {row.holder!r} is no active BD of this tenant"])
                continue
        lat, lon = point_to_wgs84(row.lat, row.lon, row.crs)
        staged.append(
            _Staged(
                line, uuid.uuid5(import_id, str(line)), row, lat, lon, search_terms(row.name, row.address), holder_id
            )
        )
    return staged


async def _import_chunk(
    session: AsyncSession,
    tenant_id: UUID,
    import_id: UUID,
    chunk: list[tuple[int, dict[str, Any]]],
    progress: Progress,
    now: datetime,
) -> None:
    usernames = {str(raw["holder"]) for _, raw in chunk if isinstance(raw.get("holder"), str)}
    staged = _stage(import_id, chunk, progress, await _holders(session, tenant_id, usernames))
    if not staged:
        return
    rows = await session.execute(
        _CANDIDATES_SQL,
        {
            "lines": [s.line for s in staged],
            "lats": [s.lat for s in staged],
            "lons": [s.lon for s in staged],
            "names": [s.row.name.strip() for s in staged],
            "phones": [s.row.phone for s in staged],
            "ids": [s.id for s in staged],  # a retried chunk: its own rows are no candidates of themselves
            "tenant_id": tenant_id,
            "radius": CHAIN_SPACING_M,
            "near": NEAR_M,
        },
    )
    stored: dict[int, list[Any]] = {}
    for r in rows:
        stored.setdefault(r.line, []).append(r)

    keep: list[_Staged] = []
    cells: dict[tuple[int, int], list[_Staged]] = {}
    reviews: list[tuple[_Staged, UUID, Judgement, float]] = []
    for s in staged:
        record = MerchantRecord(s.row.name, s.row.phone, s.row.address)
        best: tuple[UUID, Judgement, float] | None = None
        for c in stored.get(s.line, []):
            judged = judge(record, MerchantRecord(c.name, c.phone, c.address), c.distance_m)
            best = _better(best, (c.id, judged, c.distance_m))
        for earlier in _near(cells, s):  # rows of this file judged against the ones before them
            if abs(earlier.lat - s.lat) > _DEG_LAT_1KM or abs(earlier.lon - s.lon) > _DEG_LON_1KM:
                continue  # cheaper than the distance, and most neighbours of a cell are further than that
            distance = _metres(s, earlier)
            if distance <= CHAIN_SPACING_M:
                before = MerchantRecord(earlier.row.name, earlier.row.phone, earlier.row.address)
                best = _better(best, (earlier.id, judge(record, before, distance), distance))
        if best is not None and best[1].verdict is Verdict.SAME:
            progress.skip(s.line, best[0], best[1].reasons)
            continue
        keep.append(s)
        cells.setdefault(_cell(s.lat, s.lon), []).append(s)
        if best is not None and best[1].verdict is Verdict.LIKELY:
            reviews.append((s, best[0], best[1], best[2]))
    if not keep:
        return
    inserted = await session.execute(
        text(
            """
            INSERT INTO pois (tenant_id, id, name, category, address, phone, location, search_terms, holder_id,
                              claimed_at, source)
            SELECT :tenant_id, s.id, s.name, s.category, s.address, s.phone,
                   ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography, s.terms, s.holder,
                   CASE WHEN s.holder IS NULL THEN NULL ELSE now() END, 'import'
            FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:categories AS text[]),
                        CAST(:addresses AS text[]), CAST(:phones AS text[]), CAST(:lats AS float8[]),
                        CAST(:lons AS float8[]), CAST(:terms AS text[]), CAST(:holders AS uuid[]))
                 AS s(id, name, category, address, phone, lat, lon, terms, holder)
            ON CONFLICT (tenant_id, id) DO NOTHING
            RETURNING id, holder_id
            """
        ),
        {
            "tenant_id": tenant_id,
            "ids": [s.id for s in keep],
            "names": [s.row.name.strip() for s in keep],
            "categories": [s.row.category for s in keep],
            "addresses": [s.row.address.strip() for s in keep],
            "phones": [s.row.phone for s in keep],
            "lats": [s.lat for s in keep],
            "lons": [s.lon for s in keep],
            "terms": [s.terms for s in keep],
            "holders": [s.holder_id for s in keep],
        },
    )
    new = inserted.all()
    progress.imported += len(keep)  # a retried chunk's rows were imported by the first run: they count once
    held = [Change(r.holder_id, "pois", r.id) for r in new if r.holder_id is not None]
    if held:
        await record_changes(session, tenant_id, held)
    # Rows that name no holder are routed by the tenant's assignment rules (nothing happens without rules).
    await assign_new_leads(session, tenant_id, [r.id for r in new if r.holder_id is None], now)
    if reviews:
        progress.likely_duplicates += len(reviews)
        await session.execute(
            text(
                """
                INSERT INTO merchant_duplicates (tenant_id, id, poi_id, candidate_id, verdict, similarity,
                                                 distance_m, reasons, import_id)
                SELECT :tenant_id, r.id, r.poi_id, r.candidate_id, 'likely', r.similarity, r.distance_m,
                       r.reasons::jsonb, :import_id
                FROM unnest(CAST(:ids AS uuid[]), CAST(:pois AS uuid[]), CAST(:candidates AS uuid[]),
                            CAST(:similarities AS float8[]), CAST(:distances AS float8[]), CAST(:reasons AS text[]))
                     AS r(id, poi_id, candidate_id, similarity, distance_m, reasons)
                ON CONFLICT (tenant_id, poi_id, candidate_id) DO NOTHING
                """
            ),
            {
                "tenant_id": tenant_id,
                "import_id": import_id,
                "ids": [uuid.uuid5(s.id, str(candidate)) for s, candidate, _, _ in reviews],
                "pois": [s.id for s, _, _, _ in reviews],
                "candidates": [candidate for _, candidate, _, _ in reviews],
                "similarities": [round(j.name_similarity, 3) for _, _, j, _ in reviews],
                "distances": [round(d, 1) for _, _, _, d in reviews],
                "reasons": [msgspec.json.encode(list(j.reasons)).decode() for _, _, j, _ in reviews],
            },
        )


_RANK = {Verdict.SAME: 2, Verdict.LIKELY: 1, Verdict.DIFFERENT: 0}


def _better(
    best: tuple[UUID, Judgement, float] | None, other: tuple[UUID, Judgement, float]
) -> tuple[UUID, Judgement, float]:
    if best is None:
        return other
    rank_best, rank_other = _RANK[best[1].verdict], _RANK[other[1].verdict]
    if rank_other > rank_best or (rank_other == rank_best and other[2] < best[2]):
        return other
    return best


_CELL_DEG = 0.02  # >= 1.2 km up to 53 N (China): a row's neighbours within CHAIN_SPACING_M are in its 9 cells


_DEG_LAT_1KM = CHAIN_SPACING_M / 111_000
_DEG_LON_1KM = CHAIN_SPACING_M / (111_000 * 0.6)  # cos(53 N) = 0.6: never skips a row within 1 km in China


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return int(lat // _CELL_DEG), int(lon // _CELL_DEG)


def _near(cells: dict[tuple[int, int], list[_Staged]], s: _Staged) -> Iterator[_Staged]:
    row, col = _cell(s.lat, s.lon)
    for d_row in (-1, 0, 1):
        for d_col in (-1, 0, 1):
            yield from cells.get((row + d_row, col + d_col), ())


def _metres(a: _Staged, b: _Staged) -> float:
    return haversine_m(a.lat, a.lon, b.lat, b.lon)


# -- the review queue --------------------------------------------------------------------------------------------


async def list_reviews(
    session: AsyncSession, principal: Principal, status: wire.ReviewStatus, limit: int
) -> wire.DuplicateReviewList:
    await _can(session, principal, Feature.REVIEW_DUPLICATES, "review duplicates")
    rows = await session.execute(
        text(
            """
            SELECT d.id, d.verdict, d.similarity, d.distance_m, d.reasons, d.status, d.import_id, d.created_at,
                   d.poi_id, a.name AS a_name, a.address AS a_address, a.phone AS a_phone,
                   d.candidate_id, b.name AS b_name, b.address AS b_address, b.phone AS b_phone, d.merged
            FROM merchant_duplicates d
            LEFT JOIN pois a ON a.tenant_id = d.tenant_id AND a.id = d.poi_id
            LEFT JOIN pois b ON b.tenant_id = d.tenant_id AND b.id = d.candidate_id
            WHERE d.tenant_id = :tenant_id AND d.status = :status
            ORDER BY d.created_at, d.id
            LIMIT :limit
            """
        ),
        {"tenant_id": principal.tenant_id, "status": status.value, "limit": limit},
    )
    return wire.DuplicateReviewList(items=[_review(r) for r in rows])


def _review(r: Any) -> wire.DuplicateReview:
    merged = r.merged or {}

    def brief(poi_id: UUID | None, name: str | None, address: str | None, phone: str | None) -> wire.MerchantBrief:
        if poi_id is None or name is None:  # merged away: the snapshot taken at the merge
            return msgspec.convert(merged, wire.MerchantBrief)
        return wire.MerchantBrief(id=poi_id, name=name, address=address or "", phone=phone)

    return wire.DuplicateReview(
        id=r.id,
        merchant=brief(r.poi_id, r.a_name, r.a_address, r.a_phone),
        candidate=brief(r.candidate_id, r.b_name, r.b_address, r.b_phone),
        verdict=r.verdict,
        similarity=r.similarity,
        distance_m=r.distance_m,
        reasons=list(r.reasons),
        status=wire.ReviewStatus(r.status),
        import_id=r.import_id,
        created_at=r.created_at,
    )


async def _pending_review(session: AsyncSession, principal: Principal, review_id: UUID) -> MerchantDuplicate:
    await _can(session, principal, Feature.REVIEW_DUPLICATES, "review duplicates")
    review = await session.get(MerchantDuplicate, (principal.tenant_id, review_id), with_for_update=True)
    if review is None:
        raise not_found("duplicate review")
    if review.status != wire.ReviewStatus.PENDING.value or review.poi_id is None or review.candidate_id is None:
        raise DomainError(ErrorCode.CONFLICT, f"This review is already {review.status}.")
    return review


async def dismiss(session: AsyncSession, principal: Principal, review_id: UUID) -> None:
    """Two shops after all: the pair leaves the queue, with who decided and when."""
    review = await _pending_review(session, principal, review_id)
    review.status = wire.ReviewStatus.DISMISSED.value
    review.decided_by = principal.user_id
    review.decided_at = datetime.now(UTC)
    await session.flush()


# Every (table, column) that references a merchant by (tenant_id, poi). Read from the catalog, so a table a later
# domain adds (lead history, business events) is repointed too without an edit here.
_REFERENCES_SQL = text(
    """
    SELECT c.conrelid::regclass::text AS tbl, a.attname AS col,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indisunique
                   AND i.indnkeyatts = 2 AND i.indkey::int2[] @> c.conkey) AS one_per_merchant
    FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[2]
    WHERE c.contype = 'f' AND c.confrelid = 'pois'::regclass AND array_length(c.conkey, 1) = 2
      AND c.conrelid <> 'merchant_duplicates'::regclass
    ORDER BY 1, 2
    """
)


async def merge(
    session: AsyncSession, principal: Principal, review_id: UUID, data: wire.MergeRequest
) -> wire.MergeResult:
    review = await _pending_review(session, principal, review_id)
    assert review.poi_id is not None
    assert review.candidate_id is not None
    if data.keep not in (review.poi_id, review.candidate_id):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "keep must be one of the two merchants of this review.")
    kept = data.keep
    gone = review.candidate_id if kept == review.poi_id else review.poi_id
    tenant_id = principal.tenant_id
    params = {"tenant_id": tenant_id, "kept": kept, "gone": gone}
    pair = (
        await session.execute(
            text(
                "SELECT id, name, address, phone, holder_id, claimed_at FROM pois"
                " WHERE tenant_id = :tenant_id AND id IN (:kept, :gone) ORDER BY id FOR UPDATE"
            ),
            params,
        )
    ).all()
    by_id = {r.id: r for r in pair}
    if len(by_id) != 2:
        raise not_found("merchant")
    moved: dict[str, int] = {}
    # Who had the merchant that goes on their phone (held it, or a work item or visit brought it there).
    phones = {
        r.user_id
        for r in await session.execute(
            text(
                "SELECT DISTINCT user_id FROM sync_changes"
                " WHERE tenant_id = :tenant_id AND collection = 'pois' AND record_id = :gone"
            ),
            params,
        )
    }
    # A campaign that targeted both: its work item on the merchant that goes hands its history and visits over.
    twins = (
        await session.execute(
            text(
                """
                SELECT g.id AS gone_item, k.id AS kept_item, g.assignee_id
                FROM work_items g JOIN work_items k
                  ON k.tenant_id = g.tenant_id AND k.campaign_id = g.campaign_id AND k.poi_id = :kept
                WHERE g.tenant_id = :tenant_id AND g.poi_id = :gone
                """
            ),
            params,
        )
    ).all()
    changes: list[Change] = []
    for twin in twins:
        twin_params = {"tenant_id": tenant_id, "gone_item": twin.gone_item, "kept_item": twin.kept_item}
        await session.execute(
            text(
                "DELETE FROM work_item_visits g WHERE g.tenant_id = :tenant_id AND g.work_item_id = :gone_item"
                " AND EXISTS (SELECT 1 FROM work_item_visits k WHERE k.tenant_id = :tenant_id"
                " AND k.work_item_id = :kept_item AND k.visit_id = g.visit_id)"
            ),
            twin_params,
        )
        for table in ("work_item_visits", "work_item_history"):
            result = await session.execute(
                text(
                    f"UPDATE {table} SET work_item_id = :kept_item"  # noqa: S608 (a fixed table name)
                    " WHERE tenant_id = :tenant_id AND work_item_id = :gone_item"
                ),
                twin_params,
            )
            moved[table] = moved.get(table, 0) + int(getattr(result, "rowcount", 0) or 0)
        await session.execute(
            text("DELETE FROM work_items WHERE tenant_id = :tenant_id AND id = :gone_item"), twin_params
        )
        changes.append(Change(twin.assignee_id, "work_items", twin.gone_item, "remove"))
    owners: dict[str, str] = {"visits": "user_id", "work_items": "assignee_id"}
    for ref in (await session.execute(_REFERENCES_SQL)).all():
        if ref.one_per_merchant:  # a row per merchant (its lead state): the kept merchant's stays, if it has one
            await session.execute(
                text(
                    f'DELETE FROM "{ref.tbl}" WHERE tenant_id = :tenant_id AND "{ref.col}" = :gone'  # noqa: S608
                    f' AND EXISTS (SELECT 1 FROM "{ref.tbl}" WHERE tenant_id = :tenant_id AND "{ref.col}" = :kept)'
                ),
                params,
            )
        owner = owners.get(ref.tbl)
        returning = f" RETURNING id, {owner}" if owner else ""
        result = await session.execute(
            text(
                f'UPDATE "{ref.tbl}" SET "{ref.col}" = :kept'  # noqa: S608 (names from the catalog)
                f' WHERE tenant_id = :tenant_id AND "{ref.col}" = :gone{returning}'
            ),
            params,
        )
        if owner:
            rows = result.all()
            moved[ref.tbl] = moved.get(ref.tbl, 0) + len(rows)
            changes += [Change(getattr(r, owner), ref.tbl, r.id) for r in rows]
        else:
            moved[ref.tbl] = moved.get(ref.tbl, 0) + int(getattr(result, "rowcount", 0) or 0)
    kept_row, gone_row = by_id[kept], by_id[gone]
    if kept_row.holder_id is None and gone_row.holder_id is not None:  # the lead stays with who held it
        await session.execute(
            text(
                "UPDATE pois SET holder_id = :holder, claimed_at = :claimed WHERE tenant_id = :tenant_id AND id = :kept"
            ),
            {**params, "holder": gone_row.holder_id, "claimed": gone_row.claimed_at},
        )
    holder = kept_row.holder_id or gone_row.holder_id
    changes += [Change(user, "pois", gone, "remove") for user in phones]
    changes += [Change(user, "pois", kept) for user in phones | ({holder} if holder else set())]
    snapshot = {"id": str(gone), "name": gone_row.name, "address": gone_row.address, "phone": gone_row.phone}
    await session.execute(
        text(
            "UPDATE merchant_duplicates SET status = 'merged', decided_by = :user, decided_at = now(),"
            " merged = CAST(:snapshot AS jsonb) WHERE tenant_id = :tenant_id AND id = :review"
        ),
        {**params, "user": principal.user_id, "snapshot": msgspec.json.encode(snapshot).decode(), "review": review_id},
    )
    # Other pending pairs with the merchant that goes now name the kept one (or are moot, if that was the pair).
    await session.execute(
        text(
            "DELETE FROM merchant_duplicates WHERE tenant_id = :tenant_id AND status = 'pending'"
            " AND ((poi_id = :gone AND candidate_id = :kept) OR (poi_id = :kept AND candidate_id = :gone))"
        ),
        params,
    )
    for column, other in (("poi_id", "candidate_id"), ("candidate_id", "poi_id")):
        await session.execute(
            text(
                f"UPDATE merchant_duplicates d SET {column} = :kept"  # noqa: S608 (fixed column names)
                f" WHERE d.tenant_id = :tenant_id AND d.status = 'pending' AND d.{column} = :gone"
                f" AND d.{other} <> :kept AND NOT EXISTS (SELECT 1 FROM merchant_duplicates x"
                f" WHERE x.tenant_id = :tenant_id AND x.{column} = :kept AND x.{other} = d.{other})"
            ),
            params,
        )
    await session.execute(
        text(
            "DELETE FROM merchant_duplicates WHERE tenant_id = :tenant_id AND status = 'pending'"
            " AND (poi_id = :gone OR candidate_id = :gone)"
        ),
        params,
    )
    await session.execute(text("DELETE FROM pois WHERE tenant_id = :tenant_id AND id = :gone"), params)
    await record_changes(session, tenant_id, changes)
    session.expire_all()
    return wire.MergeResult(kept=kept, merged=gone, moved=moved)
