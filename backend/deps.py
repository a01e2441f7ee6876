"""Request-scoped dependencies: the authenticated principal, a database session, the app's shared parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.passwords import Passwords
from backend.auth.tokens import Principal, TokenCodec
from backend.auth.userstate import UserStates
from backend.bearer import bearer_token
from backend.db.engine import Database
from backend.db.shares import note_tenant
from backend.errors import DomainError
from backend.limits import UserConcurrency
from backend.settings import Settings
from mobile_contract.errors import ErrorCode


def token_principal(request: Request[Any, Any, Any]) -> Principal:
    """Who the bearer token says the caller is (signature and expiry checked, the user's state not)."""
    token = bearer_token(request)
    if token is None:
        raise DomainError(ErrorCode.NOT_AUTHENTICATED, "Send `Authorization: Bearer <access token>`.")
    codec: TokenCodec = request.app.state.tokens
    return codec.decode(token)


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller, from a valid token of a user who is still active and unchanged since it was issued.

    The hot routes (nearby, sync pull) call this directly instead of through dependency injection; its cost on
    them is a dict lookup per request: the user's state is read at most once per few seconds (userstate.py)."""
    principal = token_principal(request)
    note_tenant(request.scope["state"], principal.tenant_id)  # its checkouts count against its tenant's share
    user_states: UserStates = request.app.state.user_states
    await user_states.check(principal)
    return principal


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


def provide_passwords(state: State) -> Passwords:
    passwords: Passwords = state.passwords
    return passwords


def provide_user_states(state: State) -> UserStates:
    user_states: UserStates = state.user_states
    return user_states


DEPENDENCIES = {
    "principal": Provide(provide_principal),
    "session": Provide(provide_session),
    "database": Provide(provide_database, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "tokens": Provide(provide_tokens, sync_to_thread=False),
    "limits": Provide(provide_limits, sync_to_thread=False),
    "passwords": Provide(provide_passwords, sync_to_thread=False),
    "user_states": Provide(provide_user_states, sync_to_thread=False),
}
