"""Integration keys and the request signature of `POST /v1/events` (a Stripe-like scheme).

The sender computes `HMAC-SHA256(secret, "<timestamp>." + raw body)` and sends it hex-encoded as
`X-Groundwork-Signature: v1=<hex>`, with `X-Groundwork-Timestamp: <unix seconds>` and `X-Groundwork-Key-Id`.
The server recomputes it over the bytes it received and compares in constant time (`hmac.compare_digest`); the
timestamp must be within TIMESTAMP_TOLERANCE_S of the server's clock (passed in: tests move it), so a captured
request cannot be replayed later, and within the window a replay is harmless (the event is idempotent).

Secrets are sealed with AES-256-GCM (models.py says why encrypted and not hashed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import permissions
from backend.auth.tokens import Principal
from backend.errors import DomainError, not_found
from backend.events.models import IntegrationKey
from mobile_contract import events as wire
from mobile_contract.admin import Feature
from mobile_contract.errors import ErrorCode

SECRET_PREFIX = "gwk_"  # noqa: S105 - a prefix, not a secret
_NONCE_BYTES = 12
MAX_SIGNATURE_HEADER = 1024


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Groundwork-Signature` value of a body at a timestamp: what a sender computes."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{wire.SIGNATURE_SCHEME}={digest}"


def _aad(tenant_id: UUID, key_id: UUID) -> bytes:
    return b"groundwork integration key|" + tenant_id.bytes + key_id.bytes


def seal(kek: bytes, tenant_id: UUID, key_id: UUID, secret: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, secret.encode(), _aad(tenant_id, key_id))


def unseal(kek: bytes, tenant_id: UUID, key_id: UUID, sealed: bytes) -> str | None:
    """The secret, or None when the sealed value does not open under this key for this row."""
    try:
        plain = AESGCM(kek).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _aad(tenant_id, key_id))
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


@dataclass(frozen=True, slots=True)
class SignedRequest:
    key_id: str | None
    timestamp: str | None
    signature: str | None


@dataclass(frozen=True, slots=True)
class Sender:
    tenant_id: UUID
    key_id: UUID


def _refuse(code: ErrorCode, detail: str) -> DomainError:
    return DomainError(code, detail)


def parse_timestamp(value: str, now: datetime) -> int:
    """The header's unix seconds, refused when malformed or outside the tolerance of `now`."""
    if not (0 < len(value) <= 12 and value.isascii() and value.isdigit()):
        raise _refuse(ErrorCode.SIGNATURE_INVALID, f"{wire.TIMESTAMP_HEADER} must be unix seconds.")
    timestamp = int(value)
    if abs(now.timestamp() - timestamp) > wire.TIMESTAMP_TOLERANCE_S:
        raise _refuse(
            ErrorCode.STALE_TIMESTAMP,
            f"The timestamp is more than {wire.TIMESTAMP_TOLERANCE_S} s from the server's clock: sign the request "
            "again now.",
        )
    return timestamp


def signatures_of(header: str) -> list[bytes]:
    """Every `v1=` value of the header (a sender may send several, comma-separated, while it rotates keys)."""
    found: list[bytes] = []
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == wire.SIGNATURE_SCHEME and value:
            found.append(value.strip().encode("ascii", "replace"))
    return found


async def verify(session: AsyncSession, kek: bytes, request: SignedRequest, body: bytes, *, now: datetime) -> Sender:
    """Who signed this request, or a 401 problem saying what is wrong. The order matters: a stale timestamp is
    told before the key is looked up, so a clock problem reads as one."""
    if not request.key_id or not request.timestamp or not request.signature:
        raise _refuse(
            ErrorCode.SIGNATURE_MISSING,
            f"Send {wire.KEY_ID_HEADER}, {wire.TIMESTAMP_HEADER} and {wire.SIGNATURE_HEADER} (README "
            '"Business events").',
        )
    if len(request.signature) > MAX_SIGNATURE_HEADER:
        raise _refuse(ErrorCode.SIGNATURE_INVALID, "The signature header is too long.")
    timestamp = parse_timestamp(request.timestamp, now)
    try:
        key_id = UUID(request.key_id)
    except ValueError:
        raise _refuse(ErrorCode.INTEGRATION_KEY_INVALID, "This integration key is unknown or revoked.") from None
    row = (
        await session.execute(
            select(IntegrationKey.tenant_id, IntegrationKey.sealed_secret)
            .where(IntegrationKey.id == key_id, IntegrationKey.revoked_at.is_(None))
            .prefix_with("/* all-tenants: an integration sends only its key id, and the key names its tenant */")
        )
    ).one_or_none()
    if row is None:
        raise _refuse(ErrorCode.INTEGRATION_KEY_INVALID, "This integration key is unknown or revoked.")
    secret = unseal(kek, row.tenant_id, key_id, row.sealed_secret)
    if secret is None:
        raise _refuse(ErrorCode.INTEGRATION_KEY_INVALID, "This integration key cannot be used: issue a new one.")
    expected = sign(secret, timestamp, body).partition("=")[2].encode()
    # Compare against every offered value, all of them (no early exit on a match).
    matched = False
    for offered in signatures_of(request.signature):
        matched |= hmac.compare_digest(expected, offered)
    if not matched:
        raise _refuse(ErrorCode.SIGNATURE_INVALID, "The signature does not match the body and timestamp.")
    await session.execute(
        update(IntegrationKey)
        .where(IntegrationKey.tenant_id == row.tenant_id, IntegrationKey.id == key_id)
        .values(last_used_at=now)
    )
    return Sender(tenant_id=row.tenant_id, key_id=key_id)


# -- managing keys -----------------------------------------------------------------------------------------------


async def _check_admin(session: AsyncSession, principal: Principal) -> None:
    await permissions.require(
        session, principal, Feature.MANAGE_INTEGRATION_KEYS, "Your role cannot manage integration keys."
    )


def _key_wire(key: IntegrationKey) -> wire.IntegrationKey:
    return wire.IntegrationKey(
        id=key.id,
        label=key.label,
        hint=key.hint,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def issue_key(
    session: AsyncSession, principal: Principal, data: wire.IntegrationKeyCreate, *, kek: bytes
) -> wire.IntegrationKeyIssued:
    """A new key; the secret is in this answer only."""
    await _check_admin(session, principal)
    key_id = uuid.uuid4()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = IntegrationKey(
        id=key_id,
        tenant_id=principal.tenant_id,
        label=data.label,
        hint=secret[:10],
        sealed_secret=seal(kek, principal.tenant_id, key_id, secret),
        created_by=principal.user_id,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return wire.IntegrationKeyIssued(**_fields(row), secret=secret)


def _fields(row: IntegrationKey) -> dict[str, Any]:
    key = _key_wire(row)
    return {name: getattr(key, name) for name in key.__struct_fields__}


async def list_keys(session: AsyncSession, principal: Principal) -> wire.IntegrationKeyList:
    await _check_admin(session, principal)
    rows = await session.scalars(
        select(IntegrationKey)
        .where(IntegrationKey.tenant_id == principal.tenant_id)
        .order_by(IntegrationKey.created_at, IntegrationKey.id)
    )
    return wire.IntegrationKeyList(items=[_key_wire(row) for row in rows])


async def revoke_key(session: AsyncSession, principal: Principal, key_id: UUID, *, now: datetime) -> None:
    """Refused from now on. Revoking a revoked key is fine (and keeps the first revocation's time)."""
    await _check_admin(session, principal)
    found = await session.scalar(
        select(IntegrationKey.id).where(IntegrationKey.tenant_id == principal.tenant_id, IntegrationKey.id == key_id)
    )
    if found is None:
        raise not_found("integration key")
    await session.execute(
        update(IntegrationKey)
        .where(
            IntegrationKey.tenant_id == principal.tenant_id,
            IntegrationKey.id == key_id,
            IntegrationKey.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
