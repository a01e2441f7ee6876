"""Is this access token still good? Each user's current auth version and active flag, cached for seconds.

An access token lives 15 minutes and carries the user's role, scope and team, so the hot paths authenticate
without a database round trip. Without a check, disabling a user, changing their password or their role took
effect only when their token expired (issue 8). Every such change bumps `users.auth_version` (service.py); the
token carries the version it was issued under, and every request compares it with the user's current one.

The current version comes from this cache: one small primary-key read per user per `ttl_s` seconds at most, in
every API process, never one per request (a phone's nearby requests come several a second). Concurrent requests
of a user whose entry is stale share one read. So a change takes effect within `ttl_s` seconds everywhere (at
once in a process that calls `forget`). A user who no longer exists reads as disabled, so a deleted user's token
is refused instead of reaching a write that would fail on a foreign key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from backend.auth.tokens import Principal
from backend.errors import DomainError
from mobile_contract.errors import ErrorCode

# users.id is the primary key; tenant_id too, so that a token of one tenant can never match a user of another.
USER_STATE_SQL = "SELECT auth_version, is_active FROM users WHERE id = $1 AND tenant_id = $2"

_CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class UserState:
    version: int
    active: bool  # False also for a user who no longer exists


Load = Callable[[UUID, UUID], Awaitable[UserState]]
Clock = Callable[[], float]


class UserStates:
    def __init__(self, load: Load, *, ttl_s: float, clock: Clock = time.monotonic) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self.clock = clock  # public: tests move it
        # Keyed by (user, tenant), as the token names them: a token naming a user under the wrong tenant reads as
        # "no such user" and must not poison the entry of the real one.
        self._entries: dict[tuple[UUID, UUID], tuple[float, UserState]] = {}
        self._loading: dict[tuple[UUID, UUID], asyncio.Future[UserState]] = {}
        self.loads = 0  # how many reads reached the database (the bench and the tests watch it)

    async def check(self, principal: Principal) -> None:
        """Refuse a principal whose user is disabled, deleted, or changed since the token was issued."""
        state = await self.get(principal.user_id, principal.tenant_id)
        if not state.active:
            raise DomainError(
                ErrorCode.ACCOUNT_DISABLED, "This account is disabled or no longer exists; contact your admin."
            )
        if state.version != principal.auth_version:
            raise DomainError(
                ErrorCode.TOKEN_STALE,
                "Your account changed (role, team, scope or password) since this token was issued; refresh it.",
            )

    async def get(self, user_id: UUID, tenant_id: UUID) -> UserState:
        key = (user_id, tenant_id)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self.clock():
            return entry[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[UserState] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            self.loads += 1
            state = await self._load(user_id, tenant_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting for it
            raise
        finally:
            del self._loading[key]
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()  # bounded: a full cache is rebuilt from the users active now
        self._entries[key] = (self.clock() + self._ttl_s, state)
        future.set_result(state)
        return state

    def forget(self, user_id: UUID, tenant_id: UUID) -> None:
        """Drop a user's entry, so this process sees a change it just committed at once."""
        self._entries.pop((user_id, tenant_id), None)


def hot_loader(fetch: Callable[..., Awaitable[list[object]]]) -> Load:
    """A loader reading through the hot pool's `fetch` (one autocommit statement, no ORM, no transaction)."""

    async def load(user_id: UUID, tenant_id: UUID) -> UserState:
        rows = await fetch(USER_STATE_SQL, user_id, tenant_id)
        if not rows:
            return UserState(version=-1, active=False)
        row = rows[0]
        return UserState(version=int(row[0]), active=bool(row[1]))  # type: ignore[index]

    return load
