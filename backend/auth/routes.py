"""HTTP routes of auth: log in, refresh, who am I."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import service
from backend.auth.passwords import Passwords
from backend.auth.tokens import Principal, TokenCodec
from backend.errors import DomainError, problems
from backend.limits import Call, UserConcurrency
from backend.settings import Settings
from mobile_contract.auth import Me, RefreshRequest, TokenPair, TokenRequest
from mobile_contract.errors import ErrorCode


class AuthController(Controller):
    path = "/v1"
    tags = ["auth"]

    @post(
        "/auth/token",
        operation_id="login",
        responses=problems(401, 429, 503),
        security=[{}],  # no credentials needed (OpenAPI: an empty requirement overrides the global bearer)
        status_code=200,
        summary="Log in with a password and a device id",
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenRequest],
        session: NamedDependency[AsyncSession],
        tokens: NamedDependency[TokenCodec],
        passwords: NamedDependency[Passwords],
        settings: NamedDependency[Settings],
        limits: NamedDependency[UserConcurrency],
    ) -> TokenPair:
        # The peer address, not X-Forwarded-For: a header anyone can set would let an attacker pick a fresh
        # source per guess. Behind a proxy, run uvicorn with --proxy-headers and its trusted --forwarded-allow-ips.
        source = request.client.host if request.client else "unknown"
        try:
            # By the username it names, too: parallel guesses at one account take few of the server's slots.
            with limits.hold(Call.LOGIN, data.username.casefold()):
                pair = await service.login(
                    session,
                    tokens,
                    passwords,
                    settings,
                    username=data.username,
                    password=data.password,
                    device_id=data.device_id,
                    source=source,
                    now=datetime.now(UTC),
                    known_locks=request.app.state.login_locks,
                )
        except DomainError as exc:
            if exc.code is ErrorCode.TOO_MANY_ATTEMPTS and settings.login_locked_delay_s > 0:
                # A tarpit: a guesser looping on the lock gets about one answer a second per connection instead
                # of thousands. Jittered (0.5x-1.5x), so that parallel guessers do not come back in one burst.
                # The session has committed: no connection is held while it waits.
                jitter = 0.5 + secrets.randbelow(1001) / 1000
                await asyncio.sleep(settings.login_locked_delay_s * jitter)
            raise
        await session.commit()
        return pair

    @post(
        "/auth/refresh",
        operation_id="refreshToken",
        responses=problems(401),
        security=[{}],  # no credentials needed (OpenAPI: an empty requirement overrides the global bearer)
        status_code=200,
        summary="Trade a refresh token for new ones",
    )
    async def refresh(
        self,
        data: JSONBody[RefreshRequest],
        session: NamedDependency[AsyncSession],
        tokens: NamedDependency[TokenCodec],
        settings: NamedDependency[Settings],
    ) -> TokenPair:
        pair = await service.refresh(
            session, tokens, settings, refresh_token=data.refresh_token, device_id=data.device_id, now=datetime.now(UTC)
        )
        await session.commit()
        return pair

    @get("/me", operation_id="getMe", responses=problems(401, 404), summary="The caller's profile, role and data scope")
    async def me(self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]) -> Me:
        return await service.get_me(session, principal)
