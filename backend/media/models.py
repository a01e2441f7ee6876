"""The `photos` table: one row per uploaded photo, with what the server read from it and what it flagged.

The perceptual hash is kept whole (`phash`) and in three interleaved chunks (`hash_c0..2`), each indexed with the
tenant: the chunks are how a near-identical earlier photo is found without scanning (see `similar.py`).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        # A job's photos, in upload order: the reviewer's list and the proof count.
        Index("ix_photos_tenant_job_received", "tenant_id", "job_id", "received_at", "id"),
        # Multi-index hashing: one exact-match index per chunk of the perceptual hash.
        Index("ix_photos_tenant_hash_c0", "tenant_id", "hash_c0"),
        Index("ix_photos_tenant_hash_c1", "tenant_id", "hash_c1"),
        Index("ix_photos_tenant_hash_c2", "tenant_id", "hash_c2"),
        # Byte-identical copies: the only reuse check left for images too plain for a perceptual hash.
        Index("ix_photos_tenant_sha256", "tenant_id", "sha256"),
        ForeignKeyConstraint(
            ["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.id"], name="fk_photos_job_id_jobs", ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)  # generated on the phone, unique within the tenant
    job_id: Mapped[UUID]
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    storage_key: Mapped[str] = mapped_column(Text)  # tenant/sha256: identical bytes are stored once
    content_type: Mapped[str] = mapped_column(String(32))  # sniffed from the bytes
    declared_content_type: Mapped[str | None] = mapped_column(String(255))  # the header, as sent
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[int] = mapped_column(BigInteger)  # the 64 bits as a signed bigint
    # NULL for low-detail images: their hash is noise, so they are never matched nor found.
    hash_c0: Mapped[int | None] = mapped_column(Integer)
    hash_c1: Mapped[int | None] = mapped_column(Integer)
    hash_c2: Mapped[int | None] = mapped_column(Integer)
    # The camera's wall clock as written: without OffsetTimeOriginal it names no instant, so no timestamptz.
    exif_local_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    exif_utc_offset_min: Mapped[int | None] = mapped_column(SmallInteger)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_distance_m: Mapped[float | None] = mapped_column(Float)  # from the job's site, when the photo arrived
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    # What the photo matched when it arrived: evidence as of then, so plain ids rather than foreign keys.
    reused_from_photo_id: Mapped[UUID | None]
    reused_from_job_id: Mapped[UUID | None]
    duplicate_of_photo_id: Mapped[UUID | None]
    duplicate_of_job_id: Mapped[UUID | None]
    received_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_at_column()
