"""Lead intake: bulk imports of merchants and the review queue of likely duplicates."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, Latitude, Longitude, Phone, Request, Response, ShortText
from mobile_contract.location import CrsName

Category = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Address = Annotated[str, msgspec.Meta(max_length=500, pattern=SINGLE_LINE)]
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=SINGLE_LINE)]


class ImportRow(Request):
    """One merchant of an import: a CSV line (headers in English or Chinese, see the README) or a JSON object.

    `holder` (a BD's username) puts the lead in that BD's private pool; without it the lead is in the public pool.
    Coordinates in `crs` (AMap and Tencent export GCJ-02, Baidu BD-09)."""

    name: ShortText
    category: Category
    lat: Latitude
    lon: Longitude
    address: Address = ""
    phone: Phone | None = None
    crs: CrsName = CrsName.WGS84
    holder: Username | None = None


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


class RefusedRow(Response):
    line: int  # the CSV line (the header is line 1) or the JSON array index + 1
    reasons: list[str]


class SkippedDuplicate(Response):
    line: int
    poi_id: UUID  # the merchant already stored that this row is
    reasons: list[str]


class MerchantImport(Response):
    id: UUID
    status: ImportStatus
    format: ImportFormat
    rows: int  # read so far
    imported: int
    duplicates: int  # rows that are a stored merchant (not imported; see `skipped`)
    likely_duplicates: int  # imported, and waiting in the review queue beside the merchant they may be
    refused: int
    refused_rows: list[RefusedRow]  # the first 1,000
    skipped: list[SkippedDuplicate]  # the first 1,000
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    MERGED = "merged"
    DISMISSED = "dismissed"


class MerchantBrief(Response):
    id: UUID
    name: str
    address: str
    phone: str | None


class DuplicateReview(Response):
    id: UUID
    merchant: MerchantBrief
    candidate: MerchantBrief  # the merchant stored before it
    verdict: str  # "likely": a person decides
    similarity: float
    distance_m: float
    reasons: list[str]
    status: ReviewStatus
    import_id: UUID | None
    created_at: datetime


class DuplicateReviewList(Response):
    items: list[DuplicateReview]


class MergeRequest(Request):
    keep: UUID  # the merchant that stays: the review's merchant or its candidate


class MergeResult(Response):
    kept: UUID
    merged: UUID
    moved: dict[str, int]  # per table, the rows that now belong to the kept merchant
