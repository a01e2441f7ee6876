"""HTTP routes of auth: log in, refresh, who am I."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import service
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
        responses=problems(401, 429),
        security=[{}],  # no credentials needed (OpenAPI: an empty requirement overrides the global bearer)
        status_code=200,
        summary="Log in with a password and a device id",
    )
    async def login(
        self,
        data: JSONBody[TokenRequest],
        session: NamedDependency[AsyncSession],
        tokens: NamedDependency[TokenCodec],
        settings: NamedDependency[Settings],
        limits: NamedDependency[UserConcurrency],
    ) -> TokenPair:
        # By the username it names: parallel guesses at one account wait for a few password hashes, not all cores.
        with limits.hold(Call.LOGIN, data.username.casefold()):
            pair = await service.login(
                session, tokens, settings, username=data.username, password=data.password, device_id=data.device_id
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
            session, tokens, settings, refresh_token=data.refresh_token, device_id=data.device_id
        )
        await session.commit()
        return pair

    @get("/me", operation_id="getMe", responses=problems(401, 404), summary="The caller's profile, role and data scope")
    async def me(self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]) -> Me:
        return await service.get_me(session, principal)
