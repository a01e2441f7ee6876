"""HTTP routes of auth: log in, refresh, who am I."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import service
from backend.auth.passwords import Passwords
from backend.auth.tokens import Principal, TokenCodec
from backend.errors import problems
from backend.limits import Call, UserConcurrency
from backend.settings import Settings
from mobile_contract.auth import Me, RefreshRequest, TokenPair, TokenRequest


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
        now = datetime.now(UTC)
        # A locked account or source is refused here, from the process's memory of locks (throttle.KnownLocks),
        # before the per-user slot, any statement or any hash; its answer waits in the tarpit (backend/tarpit.py).
        service.refuse_known_lock(request.app.state.login_locks, username=data.username, source=source, now=now)
        # By the username it names, too: parallel guesses at one account take few of the server's slots.
        with limits.hold(Call.LOGIN, service.login_name(data.username)):
            pair = await service.login(
                session,
                tokens,
                passwords,
                settings,
                username=data.username,
                password=data.password,
                device_id=data.device_id,
                source=source,
                now=now,
                known_locks=request.app.state.login_locks,
            )
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
