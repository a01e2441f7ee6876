"""A tenant's share of the ORM pool: one tenant's storm cannot take every connection from the others.

The per-user limits (backend/limits.py) bound one user; a tenant with many users (or many usernames guessed at
once, before any tenant is known) could still fill the pool, and then every tenant waits. So each tenant may hold
at most `share` of the ORM pool's connections at once (`GROUNDWORK_TENANT_POOL_SHARE`, default half the pool);
the requests that name no tenant yet (login, refresh) are one more group with the same share. A checkout past its
tenant's share waits, in arrival order, *before* it takes a connection, and gives up like a pool wait
(`GROUNDWORK_POOL_TIMEOUT_S`, then 503 with Retry-After): the connections it would have waited for stay free for
the other tenants.

How the pool knows the tenant: the outermost layer binds the request's `scope["state"]` to this task
(`RequestScope`); the principal dependency writes the token's tenant into it (`note_tenant`); the pool's checkout
(`backend/db/engine.py`, in SQLAlchemy's greenlet, where it may await) reads it and waits for the share. Outside
a request (the worker, the tests' factories, migrations) nothing is bound and nothing is shared.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from litestar.types import ASGIApp, Receive, Send
from sqlalchemy import exc

_TENANT = "tenant_id"
_request_state: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("request_state", default=None)


class NoTenant:
    """The group of requests that name no tenant yet (login, refresh)."""

    def __repr__(self) -> str:
        return "NoTenant"


NO_TENANT = NoTenant()
ShareKey = UUID | NoTenant


def note_tenant(state: dict[str, Any], tenant_id: UUID) -> None:
    """The principal dependency: this request's checkouts count against this tenant's share."""
    state[_TENANT] = tenant_id


def current_key() -> ShareKey | None:
    """The share this task's checkouts count against; None outside a request (not shared)."""
    state = _request_state.get()
    if state is None:
        return None
    tenant = state.get(_TENANT)
    return tenant if isinstance(tenant, UUID) else NO_TENANT


@contextmanager
def bound(state: dict[str, Any]) -> Iterator[None]:
    token = _request_state.set(state)
    try:
        yield
    finally:
        _request_state.reset(token)


class RequestScope:
    """ASGI layer: binds each HTTP request's `scope["state"]` to its task, for `current_key`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with bound(scope.setdefault("state", {})):
            await self.app(scope, receive, send)


class _Share:
    __slots__ = ("semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)  # FIFO: waiters get in in arrival order
        self.users = 0  # holding + waiting


class TenantShares:
    def __init__(self, share: int, timeout_s: float) -> None:
        if share < 1:
            raise ValueError("a tenant's share of the pool must be at least one connection")
        self.share = share
        self.timeout_s = timeout_s
        self._shares: dict[ShareKey, _Share] = {}

    async def acquire(self, key: ShareKey) -> None:
        share = self._shares.get(key)
        if share is None:
            share = self._shares[key] = _Share(self.share)
        share.users += 1
        try:
            if share.semaphore.locked():
                await asyncio.wait_for(share.semaphore.acquire(), self.timeout_s)
            else:
                await share.semaphore.acquire()  # free: no timer, no task
        except TimeoutError:
            self._leave(key, share)
            raise exc.TimeoutError(f"no connection within this tenant's share of the pool ({self.share})") from None
        except BaseException:
            self._leave(key, share)
            raise

    def release(self, key: ShareKey) -> None:
        share = self._shares.get(key)
        if share is None:
            return
        share.semaphore.release()
        self._leave(key, share)

    def holding(self, key: ShareKey) -> int:
        """Connections `key` holds now (tests, metrics)."""
        share = self._shares.get(key)
        return 0 if share is None else self.share - share.semaphore._value

    def _leave(self, key: ShareKey, share: _Share) -> None:
        share.users -= 1
        if not share.users:
            del self._shares[key]  # no entry per tenant ever seen: the map stays small
