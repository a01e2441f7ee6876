"""Access tokens (short-lived HS256 JWTs) and the principal they carry.

The principal holds what every scoped query needs (tenant, user, team, data scope), so the hot paths
authenticate without a database round trip; whether the token is still good for its user (the auth version it
carries against the user's current one, and the active flag) is checked against a cache of seconds
(userstate.py). Decoded tokens are cached for their remaining lifetime:
a phone sends the same token many times, and decoding one costs more than the rest of a nearby request's
Python work would like to spend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

import jwt

from backend.errors import DomainError
from backend.settings import Settings
from mobile_contract.auth import DataScope, Role
from mobile_contract.errors import ErrorCode

ISSUER = "groundwork"
AUDIENCE = "groundwork-mobile"
_ALGORITHM = "HS256"
_CACHE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    tenant_id: UUID
    role: Role
    data_scope: DataScope
    team_id: UUID | None
    device_id: str
    expires_at: float  # unix seconds
    auth_version: int = 0  # users.auth_version when the token was issued (tokens from before versions: 0)

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret
        self.ttl_s = settings.access_token_ttl_s
        self._cache: dict[str, Principal] = {}

    def issue(
        self,
        *,
        user_id: UUID,
        tenant_id: UUID,
        role: str,
        data_scope: str,
        team_id: UUID | None,
        device_id: str,
        auth_version: int = 0,
        issued_at: int | None = None,
    ) -> str:
        """`issued_at` (unix seconds) re-issues a token as it was first issued: with equal claims HS256 gives
        the very same string, which is what an idempotent refresh retry answers (service.refresh)."""
        now = int(time.time()) if issued_at is None else issued_at
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "tid": str(tenant_id),
            "rol": role,
            "scp": data_scope,
            "tm": str(team_id) if team_id else None,
            "dev": device_id,
            "ver": auth_version,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def decode(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > time.time():
                return cached
            del self._cache[token]
            raise DomainError(ErrorCode.TOKEN_EXPIRED, "The access token has expired; refresh it.")
        principal = self._decode_uncached(token)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded: a full cache is simply rebuilt from the tokens in use
        self._cache[token] = principal
        return principal

    def _decode_uncached(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise DomainError(ErrorCode.TOKEN_EXPIRED, "The access token has expired; refresh it.") from exc
        except jwt.PyJWTError as exc:
            raise DomainError(ErrorCode.TOKEN_INVALID, "The access token is not valid; log in again.") from exc
        try:
            return Principal(
                user_id=UUID(claims["sub"]),
                tenant_id=UUID(claims["tid"]),
                role=Role(claims["rol"]),
                data_scope=DataScope(claims["scp"]),
                team_id=UUID(claims["tm"]) if claims.get("tm") else None,
                device_id=str(claims.get("dev") or ""),
                expires_at=float(claims["exp"]),
                auth_version=_version(claims.get("ver", 0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise DomainError(ErrorCode.TOKEN_INVALID, "The access token is not valid; log in again.") from exc


def _version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("ver must be an integer")
    return value
