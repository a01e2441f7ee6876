"""Tables of business events: integration keys, the tenant's attribution setting, merchants' external codes, the
events themselves (and the refused ones, kept as evidence), their attributions, and signings per merchant.

Why an integration key's secret is stored encrypted, not hashed: the server must compute the HMAC of each request
with the secret itself, and a hash cannot do that. So the secret is sealed with AES-256-GCM under a key-encryption
key from the environment (Settings.integration_kek); the row's tenant and id are the AEAD's associated data, so a
sealed secret copied into another row (or tenant) does not open. A database dump alone reveals no secret.

Merchants' external codes live in a table of their own rather than a column of `pois`: they belong to the tenant's
integrations (an order system's merchant number), and `backend/pois/` is being reshaped into leads meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column

DEFAULT_ATTRIBUTION_WINDOW_DAYS = 30


class IntegrationKey(Base):
    """Several keys may be active at once (rotation: issue the new one, move the integration, revoke the old)."""

    __tablename__ = "integration_keys"
    __table_args__ = (Index("ix_integration_keys_tenant", "tenant_id", "created_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)  # server-made; the X-Groundwork-Key-Id header
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    hint: Mapped[str] = mapped_column(String(16))  # the secret's first characters, to tell keys apart
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)  # nonce (12 bytes) + AES-GCM ciphertext and tag
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class EventSettings(Base):
    __tablename__ = "event_settings"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    attribution_window_days: Mapped[int] = mapped_column(Integer, server_default=str(DEFAULT_ATTRIBUTION_WINDOW_DAYS))
    updated_at: Mapped[datetime] = updated_at_column()


class MerchantCode(Base):
    __tablename__ = "merchant_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "poi_id", name="uq_merchant_codes_poi"),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_merchant_codes_poi_id_pois",
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    poi_id: Mapped[UUID]
    updated_at: Mapped[datetime] = updated_at_column()


class BusinessEvent(Base):
    __tablename__ = "business_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "external_id", name="uq_business_events_source_external_id"),
        Index("ix_business_events_poi_occurred", "tenant_id", "poi_id", "occurred_at"),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_business_events_poi_id_pois",
            ondelete="CASCADE",
        ),
        CheckConstraint("kind IN ('signing', 'recharge', 'order')", name="kind"),
        CheckConstraint("(amount IS NULL) = (currency IS NULL)", name="amount_currency"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)  # server-made
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    poi_id: Mapped[UUID]
    merchant_ref: Mapped[dict[str, Any]] = mapped_column(JSONB)  # as the sender named it
    amount: Mapped[Decimal | None] = mapped_column(Numeric(17, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    key_id: Mapped[UUID | None] = mapped_column(ForeignKey("integration_keys.id", ondelete="SET NULL"))
    request_hash: Mapped[str] = mapped_column(String(64))  # of the decoded body: a replay is the same event
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the answer, as given to the first request
    attributed_at: Mapped[datetime | None]


class RefusedEvent(Base):
    """A signed event we could not take (unknown merchant, unknown currency, in the future): kept as evidence,
    but holding no idempotency key, so the integration's retry after the fix (the merchant's code set) succeeds."""

    __tablename__ = "refused_events"
    __table_args__ = (Index("ix_refused_events_tenant_received", "tenant_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key_id: Mapped[UUID | None] = mapped_column(ForeignKey("integration_keys.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime]


class EventAttribution(Base):
    """One row per (event, work item on its merchant), or one `not_targeted` row when no campaign targets the
    merchant: every credit and every non-credit, with its reason. Recomputed whole for a merchant's events when
    a late visit, follow-up or target arrives (service.reattribute_merchant), from stored facts only."""

    __tablename__ = "event_attributions"
    __table_args__ = (
        Index("ix_event_attributions_event", "tenant_id", "event_id"),
        Index("ix_event_attributions_campaign", "tenant_id", "campaign_id", "event_id"),
        ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["business_events.tenant_id", "business_events.id"],
            name="fk_event_attributions_event_id_business_events",
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_id: Mapped[UUID]
    campaign_id: Mapped[UUID | None]
    work_item_id: Mapped[UUID | None]
    poi_id: Mapped[UUID]
    assignee_id: Mapped[UUID | None]
    credited: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))
    counts_toward_goal: Mapped[bool] = mapped_column(Boolean)
    goal_reason: Mapped[str] = mapped_column(String(32))
    followed_at: Mapped[datetime | None]
    window_days: Mapped[int] = mapped_column(Integer)
    explanation: Mapped[str] = mapped_column(Text)


class MerchantSigning(Base):
    """Whether and when a merchant signed, from signing events (service.on_signing): what the lead pool reads to
    mark a lead won and to answer "no signing in 30 days", whatever order the events arrived in."""

    __tablename__ = "merchant_signings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_merchant_signings_poi_id_pois",
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    poi_id: Mapped[UUID] = mapped_column(primary_key=True)
    first_signed_at: Mapped[datetime]
    last_signed_at: Mapped[datetime]
    updated_at: Mapped[datetime] = updated_at_column()
