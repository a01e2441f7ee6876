"""Merchants (POIs) and their contacts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from geoalchemy2 import Geography
from sqlalchemy import CheckConstraint, Float, ForeignKey, ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


class Poi(Base):
    __tablename__ = "pois"
    __table_args__ = (
        # KNN (`<->`) on geography within one tenant: btree_gist lets tenant_id lead the GiST index, so a
        # nearby search never walks other tenants' merchants (and the index shards cleanly on tenant_id).
        Index("ix_pois_tenant_location", "tenant_id", "location", postgresql_using="gist"),
        # Similar-name search (possible duplicates, name filter).
        Index("ix_pois_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        # Name search by characters, pinyin and initials (backend/intake/names.py search_terms).
        Index(
            "ix_pois_search_terms_trgm",
            "search_terms",
            postgresql_using="gin",
            postgresql_ops={"search_terms": "gin_trgm_ops"},
        ),
        Index("ix_pois_tenant_holder", "tenant_id", "holder_id"),
        Index("ix_pois_tenant_phone", "tenant_id", "phone"),  # duplicates by phone number (intake)
        CheckConstraint("source IN ('import', 'field')", name="source"),
    )

    # Keyed within the tenant: the id is client-generated when a BD adds it in the field, and another tenant's
    # use of the same id must neither collide nor show (README "Ids and idempotency").
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(Text, server_default="")
    # Folded name and address with their pinyin and the name's initials, written with the name (search `q`).
    search_terms: Mapped[str] = mapped_column(Text, server_default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    location: Mapped[object] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=False
    )  # indexed with tenant_id above
    geofence_radius_m: Mapped[float | None] = mapped_column(Float)  # None: the tenant's default radius
    geofence: Mapped[object | None] = mapped_column(Geography("POLYGON", srid=4326, spatial_index=False))
    holder_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # lead holder
    claimed_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16), server_default="import")
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    create_request_hash: Mapped[str | None] = mapped_column(String(64))  # idempotent create from the field
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class PoiContact(Base):
    __tablename__ = "poi_contacts"
    __table_args__ = (
        Index("ix_poi_contacts_poi", "tenant_id", "poi_id"),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_poi_contacts_poi_id_pois",
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    poi_id: Mapped[UUID]
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_at_column()
