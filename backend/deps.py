"""Request-scoped dependencies: the authenticated principal, a database session, the app's shared parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal, TokenCodec
from backend.db.engine import Database
from backend.errors import DomainError
from backend.limits import UserConcurrency
from backend.settings import Settings
from mobile_contract.errors import ErrorCode


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise DomainError(ErrorCode.NOT_AUTHENTICATED, 401, "Send `Authorization: Bearer <access token>`.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise DomainError(ErrorCode.NOT_AUTHENTICATED, 401, "Send `Authorization: Bearer <access token>`.")
    codec: TokenCodec = request.app.state.tokens
    return codec.decode(token.strip())


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    """A session per request. Handlers commit explicitly: nothing that must not be lost relies on a hook."""
    database: Database = state.database
    async with database.sessions() as session:
        yield session


def provide_database(state: State) -> Database:
    database: Database = state.database
    return database


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_tokens(state: State) -> TokenCodec:
    codec: TokenCodec = state.tokens
    return codec


def provide_limits(state: State) -> UserConcurrency:
    limits: UserConcurrency = state.limits
    return limits


DEPENDENCIES = {
    "principal": Provide(provide_principal, sync_to_thread=False),
    "session": Provide(provide_session),
    "database": Provide(provide_database, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "tokens": Provide(provide_tokens, sync_to_thread=False),
    "limits": Provide(provide_limits, sync_to_thread=False),
}
