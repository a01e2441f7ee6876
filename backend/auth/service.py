"""Logging in and refreshing tokens: the rules of who gets a token, and when a family of tokens dies."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import RefreshToken, User
from backend.auth.passwords import dummy_hash, verify_password
from backend.auth.tokens import Principal, TokenCodec
from backend.errors import DomainError, not_found
from backend.settings import Settings
from mobile_contract.auth import DataScope, Me, Role, TokenPair
from mobile_contract.errors import ErrorCode

# A phone whose refresh answer was lost on a flaky network retries with the same token. Within this window,
# from the same device, that is a retry, not theft: the token gets a new successor instead of killing the family.
RETRY_GRACE = timedelta(seconds=60)

DEFAULT_SCOPE_BY_ROLE = {
    Role.BD: DataScope.SELF,
    Role.TECHNICIAN: DataScope.SELF,
    Role.SUPERVISOR: DataScope.TEAM_AND_BELOW,
    Role.OPS: DataScope.ALL,
    Role.ADMIN: DataScope.ALL,
}


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def login(
    session: AsyncSession, codec: TokenCodec, settings: Settings, *, username: str, password: str, device_id: str
) -> TokenPair:
    user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    # Verify against a dummy hash for unknown users, so timing does not tell which usernames exist.
    ok = await anyio.to_thread.run_sync(verify_password, user.password_hash if user else dummy_hash(), password)
    if user is None or not ok or not user.is_active:
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, 401, "Wrong username or password.")
    return await _issue(session, codec, settings, user, device_id, family_id=uuid4(), parent_id=None)


async def refresh(
    session: AsyncSession, codec: TokenCodec, settings: Settings, *, refresh_token: str, device_id: str
) -> TokenPair:
    now = datetime.now(UTC)
    presented = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _hash_token(refresh_token)).with_for_update()
    )
    if presented is None or presented.revoked_at is not None or presented.expires_at <= now:
        raise DomainError(ErrorCode.REFRESH_TOKEN_INVALID, 401, "This refresh token is not valid; log in again.")
    if presented.rotated_at is not None:
        is_retry = presented.device_id == device_id and now - presented.rotated_at <= RETRY_GRACE
        if not is_retry:
            await _revoke_family(session, presented.family_id, now)
            # The revocation must outlive this failed request: commit it before refusing.
            await session.commit()
            raise DomainError(
                ErrorCode.REFRESH_TOKEN_REUSED,
                401,
                "This refresh token was already used; every session of this login is now signed out. Log in again.",
            )
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.parent_id == presented.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    if presented.device_id != device_id:
        raise DomainError(ErrorCode.REFRESH_TOKEN_INVALID, 401, "This refresh token belongs to another device.")
    user = await session.get(User, presented.user_id)
    if user is None or not user.is_active:
        raise DomainError(ErrorCode.REFRESH_TOKEN_INVALID, 401, "This account is disabled; contact your admin.")
    presented.rotated_at = presented.rotated_at or now
    return await _issue(
        session, codec, settings, user, device_id, family_id=presented.family_id, parent_id=presented.id
    )


async def _revoke_family(session: AsyncSession, family_id: UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def _issue(
    session: AsyncSession,
    codec: TokenCodec,
    settings: Settings,
    user: User,
    device_id: str,
    *,
    family_id: UUID,
    parent_id: UUID | None,
) -> TokenPair:
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=uuid4(),
            tenant_id=user.tenant_id,
            user_id=user.id,
            family_id=family_id,
            parent_id=parent_id,
            token_hash=_hash_token(token),
            device_id=device_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    await session.flush()
    access = codec.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role,
        data_scope=user.data_scope,
        team_id=user.team_id,
        device_id=device_id,
    )
    return TokenPair(
        access_token=access,
        expires_in=codec.ttl_s,
        refresh_token=token,
        refresh_expires_in=settings.refresh_token_ttl_s,
        user_id=user.id,
        tenant_id=user.tenant_id,
    )


async def get_me(session: AsyncSession, principal: Principal) -> Me:
    user = await session.scalar(select(User).where(User.id == principal.user_id, User.tenant_id == principal.tenant_id))
    if user is None:
        raise not_found("user")
    return Me(
        id=user.id,
        tenant_id=user.tenant_id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        data_scope=DataScope(user.data_scope),
        team_id=user.team_id,
    )
