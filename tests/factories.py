"""Small factories: each test builds the rows it needs, in a tenant of its own."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient
from sqlalchemy import text

from backend.auth.models import Team, Tenant, User
from backend.auth.passwords import hash_password
from backend.auth.service import DEFAULT_SCOPE_BY_ROLE
from backend.db.engine import Database
from backend.intake.names import search_terms
from backend.pois.models import Poi
from geo.postgis import point_ewkt
from mobile_contract.auth import Role
from sync.feed import Change, record_changes

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_password_hash: str | None = None


def _hash() -> str:
    global _password_hash
    if _password_hash is None:
        _password_hash = hash_password(PASSWORD, fast=True)  # argon2 hashes carry their parameters
    return _password_hash


@dataclass
class FieldUser:
    id: UUID
    tenant_id: UUID
    username: str
    role: Role
    team_id: UUID | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Factory:
    database: Database
    client: AsyncTestClient  # type: ignore[type-arg]

    async def tenant(self, **policy: Any) -> UUID:
        tenant_id = uuid.uuid4()
        async with self.database.sessions() as session:
            n = next(_counter)
            session.add(
                Tenant(id=tenant_id, slug=f"t{n}-{tenant_id.hex[:8]}", name=f"Tenant {n}", verification_policy=policy)
            )
            await session.commit()
        return tenant_id

    async def team(self, tenant_id: UUID, name: str = "Team", parent: UUID | None = None) -> UUID:
        team_id = uuid.uuid4()
        async with self.database.sessions() as session:
            parent_path = "/"
            if parent is not None:
                parent_path = (await session.get_one(Team, parent)).path
            session.add(
                Team(id=team_id, tenant_id=tenant_id, parent_id=parent, name=name, path=f"{parent_path}{team_id}/")
            )
            await session.commit()
        return team_id

    async def user(
        self,
        tenant_id: UUID,
        role: Role = Role.BD,
        *,
        team_id: UUID | None = None,
        scope: str | None = None,
        login: bool = True,
        name: str | None = None,
    ) -> FieldUser:
        user_id = uuid.uuid4()
        username = f"user{next(_counter)}-{user_id.hex[:6]}@test"
        async with self.database.sessions() as session:
            session.add(
                User(
                    id=user_id,
                    tenant_id=tenant_id,
                    team_id=team_id,
                    username=username,
                    display_name=name or f"User {username}",
                    role=role.value,
                    data_scope=scope or DEFAULT_SCOPE_BY_ROLE[role].value,
                    password_hash=_hash(),
                )
            )
            await session.commit()
        user = FieldUser(id=user_id, tenant_id=tenant_id, username=username, role=role, team_id=team_id)
        if login:
            tokens = await self.login(username)
            user.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        return user

    async def login(self, username: str, device_id: str = "device-1") -> dict[str, Any]:
        response = await self.client.post(
            "/v1/auth/token", json={"username": username, "password": PASSWORD, "device_id": device_id}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def poi(
        self,
        tenant_id: UUID,
        lat: float = 31.2304,
        lon: float = 121.4737,
        *,
        name: str | None = None,
        category: str = "restaurant",
        holder_id: UUID | None = None,
        radius_m: float | None = None,
        polygon_wkt: str | None = None,
        address: str = "1 Test Rd",
    ) -> UUID:
        poi_id = uuid.uuid4()
        name = name or f"Shop {next(_counter)}"
        async with self.database.sessions() as session:
            session.add(
                Poi(
                    id=poi_id,
                    tenant_id=tenant_id,
                    name=name,
                    category=category,
                    address=address,
                    search_terms=search_terms(name, address),
                    location=point_ewkt(lat, lon),
                    geofence_radius_m=radius_m,
                    geofence=f"SRID=4326;{polygon_wkt}" if polygon_wkt else None,
                    holder_id=holder_id,
                    claimed_at=datetime.now(UTC) if holder_id else None,
                )
            )
            if holder_id is not None:  # a held lead is in its holder's sync scope, as a claim would record
                await session.flush()
                await record_changes(session, tenant_id, [Change(holder_id, "pois", poi_id)])
            await session.commit()
        return poi_id

    async def count(self, sql: str, **params: Any) -> int:
        async with self.database.sessions() as session:
            value = await session.scalar(text(sql), params)
        return int(value or 0)


def fix(lat: float, lon: float, *, accuracy_m: float = 10.0, ago_s: float = 2.0, **extra: Any) -> dict[str, Any]:
    """A fix as a phone sends it: captured `ago_s` seconds before now, with a matching monotonic age."""
    captured = datetime.now(UTC) - timedelta(seconds=ago_s)
    body: dict[str, Any] = {
        "lat": lat,
        "lon": lon,
        "accuracy_m": accuracy_m,
        "captured_at": captured.isoformat(),
        "age_ms": int(ago_s * 1000),
        "provider": "gps",
    }
    body.update(extra)
    return body
