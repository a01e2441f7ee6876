"""Login throttling: per account and per source address, fixed windows, lockout, kept in PostgreSQL.

Each login attempt first *reserves* a place in both of its counters (`account:<username>`, `source:<address>`)
in one short transaction, committed before the password is verified, so the row locks are held for two index
updates, not for an argon2 run, and every API process sees the same counts. An attempt that would be the
counter's (max+1)-th in the window locks the key: it and every attempt until the lock ends is refused with 429
`too_many_attempts` and `Retry-After`, whatever the password, and without spending an argon2 verification.
A successful login gives its reservation back, so a counter holds the window's failures plus the attempts still
being verified: N parallel guesses cannot slip past the limit while the first ones are still hashing. The lock
ends by itself at the later of `lockout` after it began and the end of the window (so `Retry-After` is true:
the first attempt after it starts a fresh window).

A process remembers the locks it has seen (`KnownLocks`): until a lock ends, further attempts on that key are
refused there without a statement. A lock only ends by time, so the memory can never let through what the table
would refuse; it only spares PostgreSQL (and the event loop other tenants share) the work of a guesser hammering
a locked key.

Unknown usernames have counters too, so a locked answer says nothing about whether an account exists. The
account lock is a denial-of-service lever on a known username; it is short, ends by itself, and the per-source
counter slows whoever pulls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.settings import Settings

_RESERVE = text(
    """
    INSERT INTO login_throttles AS t (key, window_started_at, attempts, locked_until)
    VALUES (:key, :now, 1, CASE WHEN :max_attempts < 1 THEN CAST(:lock_end AS timestamptz) END)
    ON CONFLICT (key) DO UPDATE SET
        window_started_at = CASE
            WHEN t.locked_until > :now THEN t.window_started_at
            WHEN t.window_started_at <= :window_floor THEN :now
            ELSE t.window_started_at END,
        attempts = CASE
            WHEN t.locked_until > :now THEN t.attempts
            WHEN t.window_started_at <= :window_floor THEN 1
            ELSE t.attempts + 1 END,
        locked_until = CASE
            WHEN t.locked_until > :now THEN t.locked_until
            WHEN t.window_started_at > :window_floor AND t.attempts + 1 > :max_attempts
                THEN GREATEST(CAST(:lock_end AS timestamptz), t.window_started_at + CAST(:window AS interval))
            ELSE NULL END
    RETURNING locked_until
    """
)

_GIVE_BACK = text(
    """
    UPDATE login_throttles SET attempts = GREATEST(attempts - 1, 0)
    WHERE key = :key AND window_started_at <= :reserved_at AND (locked_until IS NULL OR locked_until <= :reserved_at)
    """
)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_per_account: int
    max_per_source: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            max_per_account=settings.login_max_failures,
            max_per_source=settings.login_max_failures_per_source,
            window=timedelta(seconds=settings.login_window_s),
            lockout=timedelta(seconds=settings.login_lockout_s),
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    keys: tuple[str, ...]
    reserved_at: datetime
    retry_after_s: int | None  # set when a key is locked: the attempt is refused


class KnownLocks:
    """Locks this process has read from the table, by key: refused locally until they end."""

    _LIMIT = 100_000

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def retry_after_s(self, keys: tuple[str, ...], now: datetime) -> int | None:
        latest: datetime | None = None
        for key in keys:
            until = self._until.get(key)
            if until is None:
                continue
            if until <= now:
                del self._until[key]
            elif latest is None or until > latest:
                latest = until
        return None if latest is None else _seconds_until(latest, now)

    def remember(self, key: str, until: datetime) -> None:
        if len(self._until) >= self._LIMIT:
            self._until.clear()  # bounded: forgetting a lock only means reading it from the table again
        self._until[key] = until


def _seconds_until(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def keys_of(username: str, source: str) -> tuple[str, str]:
    return account_key(username), source_key(source)


def account_key(username: str) -> str:
    return f"account:{username}"


def source_key(address: str) -> str:
    return f"source:{address}"


async def reserve(
    session: AsyncSession,
    policy: ThrottlePolicy,
    *,
    username: str,
    source: str,
    now: datetime,
    known: KnownLocks | None = None,
) -> Reservation:
    """Count one attempt against both keys (always in the same order: no deadlock between two logins)."""
    keys = keys_of(username, source)
    if known is not None:
        retry_after = known.retry_after_s(keys, now)
        if retry_after is not None:
            return Reservation(keys=(), reserved_at=now, retry_after_s=retry_after)
    limits = ((keys[0], policy.max_per_account), (keys[1], policy.max_per_source))
    locked_until: datetime | None = None
    for key, max_attempts in limits:
        until = await session.scalar(
            _RESERVE,
            {
                "key": key,
                "now": now,
                "window_floor": now - policy.window,
                "window": policy.window,
                "lock_end": now + policy.lockout,
                "max_attempts": max_attempts,
            },
        )
        if until is not None and until > now:
            if known is not None:
                known.remember(key, until)
            if locked_until is None or until > locked_until:
                locked_until = until
    retry_after = None if locked_until is None else _seconds_until(locked_until, now)
    return Reservation(keys=keys, reserved_at=now, retry_after_s=retry_after)


async def give_back(session: AsyncSession, reservation: Reservation) -> None:
    """Return an attempt that was not a failure (a correct password, or one never verified)."""
    for key in reservation.keys:
        await session.execute(_GIVE_BACK, {"key": key, "reserved_at": reservation.reserved_at})
