"""Logging in and refreshing tokens, and the account changes that end a user's tokens at once.

The rules of who gets a token, when a family of tokens dies, and when a token stops being good:
- a login is throttled per account and per source address (throttle.py) and verifies the password under the
  hashing cap (passwords.py);
- a refresh rotates the refresh token; a retried refresh whose answer was lost gets the same answer again, and
  any other second use of a token is theft (see `refresh`);
- disabling a user, a new password, a new role, team or data scope bump `users.auth_version`, so access tokens
  issued before stop working within seconds (userstate.py), and a new password or a disabled account also
  revokes every refresh token of the user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import throttle
from backend.auth.models import RefreshToken, Team, User
from backend.auth.passwords import Passwords
from backend.auth.tokens import Principal, TokenCodec
from backend.errors import DomainError, not_found
from backend.settings import Settings
from mobile_contract.auth import DataScope, Me, Role, TokenPair
from mobile_contract.errors import ErrorCode

# A phone whose refresh answer was lost on a flaky network retries with the same token. Within this window,
# from the same device, while the successor is unused, that is a retry: it gets the same answer again.
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


def _successor_token(secret: str, presented: str) -> str:
    """The refresh token that replaces `presented`: derived from it with the server's key, not drawn at random,
    so a retry of the same refresh can answer the same successor without the server ever storing a token.
    Without the key it is as unpredictable as a random one (HMAC-SHA256 of a 256-bit random token)."""
    mac = hmac.new(b"groundwork-refresh-successor:" + secret.encode(), presented.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def _refuse_nul(*values: str) -> None:
    # PostgreSQL text cannot hold U+0000: refuse it as bad input before it reaches a statement.
    if any("\x00" in value for value in values):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Text must not contain U+0000.", errors=[])


def login_name(username: str) -> str:
    """The username as logins count and look it up."""
    return username.strip().lower()


def refuse_known_lock(known: throttle.KnownLocks, *, username: str, source: str, now: datetime) -> None:
    """Refuse at once a login whose account or source this process knows to be locked: no session, no
    statement, no hash, no per-user slot. A lock only ends by time, so this never refuses what the table would
    let through (throttle.py); `login` checks the same memory, then the table."""
    retry_after = known.retry_after_s(throttle.keys_of(login_name(username), source), now)
    if retry_after is not None:
        raise _too_many_attempts(retry_after)


def _too_many_attempts(retry_after_s: int) -> DomainError:
    return DomainError(
        ErrorCode.TOO_MANY_ATTEMPTS, "Too many wrong passwords; wait before trying again.", retry_after_s=retry_after_s
    )


async def login(
    session: AsyncSession,
    codec: TokenCodec,
    passwords: Passwords,
    settings: Settings,
    *,
    username: str,
    password: str,
    device_id: str,
    source: str,
    now: datetime,
    known_locks: throttle.KnownLocks | None = None,
) -> TokenPair:
    """Throttle, verify, issue. `known_locks`: the process's memory of locks (throttle.py), if it keeps one.

    Commits twice by design (an exception to "services flush"): once after reserving the attempt, so the
    throttle rows are not locked while argon2 runs and the count holds even when this request then fails; and
    before refusing, so what the refusal counted outlives the rollback of the failed request.
    """
    _refuse_nul(username, password, device_id, source)
    name = login_name(username)
    policy = throttle.ThrottlePolicy.from_settings(settings)
    reservation = await throttle.reserve(session, policy, username=name, source=source, now=now, known=known_locks)
    if reservation.retry_after_s is not None:
        if reservation.keys:
            await throttle.give_back(session, reservation)  # never verified: not a failure of the unlocked key
            await session.commit()
        raise _too_many_attempts(reservation.retry_after_s)
    user = await session.scalar(
        # usernames are unique across tenants: the user names the tenant (tests/tenant_scope.py)
        select(User).prefix_with("/* all-tenants: a login's username names its tenant */").where(User.username == name)
    )
    await session.commit()  # the reservation counts from here, in every process
    try:
        # Verify against a dummy hash for unknown users, so timing does not tell which usernames exist.
        ok = await passwords.verify(user.password_hash if user else await passwords.dummy_hash(), password)
    except DomainError:  # the hashing queue is full: nothing was verified
        await throttle.give_back(session, reservation)
        await session.commit()
        raise
    if user is None or not ok or not user.is_active:
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, "Wrong username or password.")
    await throttle.give_back(session, reservation)
    return await _issue(session, codec, settings, user, device_id, family_id=uuid4(), parent_id=None, now=now)


async def refresh(
    session: AsyncSession,
    codec: TokenCodec,
    settings: Settings,
    *,
    refresh_token: str,
    device_id: str,
    now: datetime,
) -> TokenPair:
    """Trade a refresh token for its successor: rotation with reuse detection, and no window for a thief.

    Issue 8: within the old 60 s grace a retry from the same device got a *new* successor and revoked the first
    one, so anyone holding the old token and the device id (readable in any access token) got a fresh pair and
    silently signed the owner out. Now a refresh is idempotent: the successor is derived from the presented token
    (`_successor_token`), so a retry within the grace, while the successor is still unused, answers the very same
    pair (the access token re-issued with its first `iat`, hence the same string). A phone whose answer was lost
    keeps working; a thief replaying within the grace gets only what the owner already has and signs nobody out.
    Every other second use is reuse: after the grace, after the successor was itself used (whoever got the answer
    has moved on, so this is not a lost answer), or from another device; it revokes the family, so when owner and
    thief both keep using it the alarm rings at the latest at the owner's next refresh. A thief's gain is bounded
    by what they already hold (one access token's lifetime), which no rotation scheme can take back without a
    key only the phone holds (device-bound proof needs a key-pair on the phone: future work in the contract).
    """
    _refuse_nul(refresh_token, device_id)
    presented = await session.scalar(
        select(RefreshToken)
        .prefix_with("/* all-tenants: a refresh token's hash names its tenant */")
        .where(RefreshToken.token_hash == _hash_token(refresh_token))
        .with_for_update()
    )
    if presented is None:
        raise DomainError(ErrorCode.REFRESH_TOKEN_INVALID, "This refresh token is not valid; log in again.")
    # First the account: a disabled user's phone must stop (account_disabled), not loop through the login screen.
    user = await _active_user(session, presented.user_id, presented.tenant_id)
    if presented.revoked_at is not None or presented.expires_at <= now:
        raise DomainError(ErrorCode.REFRESH_TOKEN_INVALID, "This refresh token is not valid; log in again.")
    if presented.rotated_at is not None:
        successor = await session.scalar(
            select(RefreshToken)
            .where(RefreshToken.tenant_id == presented.tenant_id, RefreshToken.parent_id == presented.id)
            .order_by(RefreshToken.issued_at.desc())
            .limit(1)
        )
        successor_token = _successor_token(settings.jwt_secret, refresh_token)
        is_retry = (
            presented.device_id == device_id
            and now - presented.rotated_at <= RETRY_GRACE
            and successor is not None
            and successor.rotated_at is None
            and successor.revoked_at is None
            and successor.token_hash == _hash_token(successor_token)
        )
        if not is_retry or successor is None:
            await _revoke_family(session, presented.family_id, presented.tenant_id, now)
            # The revocation must outlive this failed request: commit it before refusing.
            await session.commit()
            raise DomainError(
                ErrorCode.REFRESH_TOKEN_REUSED,
                "This refresh token was already used; every session of this login is now signed out. Log in again.",
            )
        return _pair(codec, settings, user, device_id, successor_token, issued_at=successor.issued_at, now=now)
    if presented.device_id != device_id:
        raise DomainError(ErrorCode.REFRESH_TOKEN_INVALID, "This refresh token belongs to another device.")
    presented.rotated_at = now
    return await _issue(
        session,
        codec,
        settings,
        user,
        device_id,
        family_id=presented.family_id,
        parent_id=presented.id,
        now=now,
        token=_successor_token(settings.jwt_secret, refresh_token),
    )


async def _active_user(session: AsyncSession, user_id: UUID, tenant_id: UUID) -> User:
    user = await session.scalar(select(User).where(User.id == user_id, User.tenant_id == tenant_id))
    if user is None or not user.is_active:
        raise DomainError(
            ErrorCode.ACCOUNT_DISABLED, "This account is disabled or no longer exists; contact your admin."
        )
    return user


async def _revoke_family(session: AsyncSession, family_id: UUID, tenant_id: UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.tenant_id == tenant_id, RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)
        )
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
    now: datetime,
    token: str | None = None,
) -> TokenPair:
    token = token or secrets.token_urlsafe(32)
    issued_at = now.replace(microsecond=0)  # the access token's `iat` has whole seconds; a retry reuses both
    session.add(
        RefreshToken(
            id=uuid4(),
            tenant_id=user.tenant_id,
            user_id=user.id,
            family_id=family_id,
            parent_id=parent_id,
            token_hash=_hash_token(token),
            device_id=device_id,
            issued_at=issued_at,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    await session.flush()
    return _pair(codec, settings, user, device_id, token, issued_at=issued_at, now=now)


def _pair(
    codec: TokenCodec,
    settings: Settings,
    user: User,
    device_id: str,
    refresh_token: str,
    *,
    issued_at: datetime,
    now: datetime,
) -> TokenPair:
    iat = int(issued_at.timestamp())
    access = codec.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role,
        data_scope=user.data_scope,
        team_id=user.team_id,
        device_id=device_id,
        auth_version=user.auth_version,
        issued_at=iat,
    )
    elapsed = max(0, int(now.timestamp()) - iat)
    return TokenPair(
        access_token=access,
        expires_in=max(1, codec.ttl_s - elapsed),
        refresh_token=refresh_token,
        refresh_expires_in=max(1, settings.refresh_token_ttl_s - elapsed),
        user_id=user.id,
        tenant_id=user.tenant_id,
    )


# Account changes. An admin API calls these; each bumps the auth version, so the user's access tokens are refused
# within the user-state cache's seconds (at once in the process that calls `UserStates.forget` after commit).


async def bump_user(session: AsyncSession, *, tenant_id: UUID, user_id: UUID, **values: object) -> None:
    """Change a user's columns and their auth version together: their access tokens are refused at once."""
    await _bump(session, tenant_id, user_id, **values)


async def revoke_user_tokens(session: AsyncSession, tenant_id: UUID, user_id: UUID, now: datetime) -> None:
    """Every refresh token of the user, revoked: they log in again."""
    await _revoke_user_tokens(session, tenant_id, user_id, now)


async def _bump(session: AsyncSession, tenant_id: UUID, user_id: UUID, **values: object) -> None:
    changed = await session.scalar(
        update(User)
        .where(User.id == user_id, User.tenant_id == tenant_id)
        .values(auth_version=User.auth_version + 1, **values)
        .returning(User.id)
    )
    if changed is None:
        raise not_found("user")


async def _revoke_user_tokens(session: AsyncSession, tenant_id: UUID, user_id: UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.tenant_id == tenant_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def disable_user(session: AsyncSession, *, tenant_id: UUID, user_id: UUID, now: datetime) -> None:
    """Sign the user out everywhere: access tokens refused (`account_disabled`), refresh tokens revoked."""
    await _bump(session, tenant_id, user_id, is_active=False)
    await _revoke_user_tokens(session, tenant_id, user_id, now)


async def enable_user(session: AsyncSession, *, tenant_id: UUID, user_id: UUID) -> None:
    """Let a disabled user log in again (their old tokens stay dead: the version moved on)."""
    await _bump(session, tenant_id, user_id, is_active=True)


async def set_password(
    session: AsyncSession, passwords: Passwords, *, tenant_id: UUID, user_id: UUID, new_password: str, now: datetime
) -> None:
    """A new password ends every session of the user: whoever knew the old one must not stay signed in, so the
    access tokens go stale and the refresh tokens are revoked (the phone must log in with the new password)."""
    _refuse_nul(new_password)
    if not 8 <= len(new_password) <= 1024:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "A password has 8 to 1024 characters.", errors=[])
    password_hash = await passwords.hash(new_password)
    await _bump(session, tenant_id, user_id, password_hash=password_hash)
    await _revoke_user_tokens(session, tenant_id, user_id, now)


async def change_role(
    session: AsyncSession, *, tenant_id: UUID, user_id: UUID, role: Role, data_scope: DataScope | None = None
) -> None:
    """A new role, with its default data scope unless one is given. The user's access tokens go stale
    (`token_stale`): the phone refreshes and gets a token with the new role and scope; the refresh tokens stay
    valid, since nothing about the login itself is in doubt."""
    scope = data_scope or DEFAULT_SCOPE_BY_ROLE[role]
    await _bump(session, tenant_id, user_id, role=role.value, data_scope=scope.value)


async def move_to_team(session: AsyncSession, *, tenant_id: UUID, user_id: UUID, team_id: UUID | None) -> None:
    """A new team (or none): what a team scope covers changes, so the access tokens go stale as for a role."""
    if team_id is not None:
        team = await session.scalar(select(Team.id).where(Team.id == team_id, Team.tenant_id == tenant_id))
        if team is None:
            raise not_found("team")
    await _bump(session, tenant_id, user_id, team_id=team_id)


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
