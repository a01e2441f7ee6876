"""What a role may do, as tenant configuration: one table of features -> roles per tenant.

`DEFAULT_ROLES` is the one Python table of defaults (equal to the hard-coded role tuples the services had); a
tenant's `role_permissions` rows override it feature by feature. Services ask `await can(session, principal,
Feature.X)` or `await require(...)`. The tenant's table is read once per session (one small statement, kept in
`session.info`), so a push of 500 mutations reads it once; `PUT /v1/admin/permissions` drops it.

What a user may *see* is separate (their data scope, scopes.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import RolePermission
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden
from mobile_contract.admin import Feature
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode

_DISPATCHERS = frozenset({Role.SUPERVISOR, Role.OPS, Role.ADMIN})

DEFAULT_ROLES: Mapping[Feature, frozenset[Role]] = {
    Feature.MANAGE_USERS: frozenset({Role.ADMIN}),
    Feature.MANAGE_TEAMS: frozenset({Role.ADMIN}),
    Feature.MANAGE_PERMISSIONS: frozenset({Role.ADMIN}),
    Feature.MANAGE_CAMPAIGNS: frozenset({Role.OPS, Role.ADMIN}),
    Feature.REASSIGN_WORK_ITEMS: frozenset({Role.OPS, Role.ADMIN, Role.SUPERVISOR}),
    Feature.ADD_MERCHANTS: frozenset({Role.BD, Role.SUPERVISOR, Role.OPS, Role.ADMIN}),
    Feature.ADOPT_LEAD_POLICY: frozenset({Role.ADMIN, Role.OPS}),
    Feature.SIMULATE_LEAD_POLICY: frozenset({Role.ADMIN, Role.OPS, Role.SUPERVISOR}),
    Feature.EDIT_VERIFICATION_POLICY: frozenset({Role.ADMIN}),
    Feature.MANAGE_TECHNICIANS: _DISPATCHERS,
    Feature.MANAGE_TERRITORIES: frozenset({Role.OPS, Role.ADMIN}),
    Feature.MANAGE_ASSIGNMENT_RULES: frozenset({Role.OPS, Role.ADMIN}),
    Feature.IMPORT_MERCHANTS: frozenset({Role.OPS, Role.ADMIN}),
    Feature.REVIEW_DUPLICATES: frozenset({Role.OPS, Role.ADMIN, Role.SUPERVISOR}),
    Feature.MANAGE_INTEGRATION_KEYS: frozenset({Role.ADMIN, Role.OPS}),
    Feature.READ_BUSINESS_EVENTS: frozenset({Role.ADMIN, Role.OPS}),
    Feature.MANAGE_JOB_TYPES: frozenset({Role.ADMIN, Role.OPS}),
}
assert set(DEFAULT_ROLES) == set(Feature), "every feature has default roles"

# A tenant admin must never lock every admin out of the table that could let them back in.
ALWAYS = {Feature.MANAGE_PERMISSIONS: Role.ADMIN}

_CACHE = "groundwork.role_permissions"
_KNOWN = frozenset(f.value for f in Feature)


async def table(session: AsyncSession, tenant_id: UUID) -> dict[Feature, frozenset[Role]]:
    """The tenant's roles per feature: its stored overrides over the defaults (read once per session)."""
    cache: dict[UUID, dict[Feature, frozenset[Role]]] = session.info.setdefault(_CACHE, {})
    found = cache.get(tenant_id)
    if found is None:
        rows = await session.execute(
            select(RolePermission.feature, RolePermission.roles).where(RolePermission.tenant_id == tenant_id)
        )
        found = dict(DEFAULT_ROLES)
        for feature, roles in rows:
            if feature in _KNOWN:  # a feature since removed from the code is ignored
                found[Feature(feature)] = frozenset(Role(r) for r in roles)
        cache[tenant_id] = found
    return found


async def can(session: AsyncSession, principal: Principal, feature: Feature) -> bool:
    return principal.role in (await table(session, principal.tenant_id))[feature]


async def require(session: AsyncSession, principal: Principal, feature: Feature, detail: str) -> None:
    """Refuse (403 forbidden) a caller whose role the tenant does not allow this feature."""
    if not await can(session, principal, feature):
        raise forbidden(detail)


async def update(
    session: AsyncSession,
    tenant_id: UUID,
    changes: Mapping[Feature, Iterable[Role]],
    defaults: Iterable[Feature] = (),
) -> dict[Feature, frozenset[Role]]:
    """Replace the roles of some features (and put others back to their defaults); the rest stay."""
    back = set(defaults)
    if back & set(changes):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "A feature is either given roles or put back to its defaults.", errors=[]
        )
    for feature, role in ALWAYS.items():
        if feature in changes and role not in set(changes[feature]):
            raise DomainError(
                ErrorCode.VALIDATION_FAILED, f"{feature.value} always includes the role {role.value}.", errors=[]
            )
    if back:
        await session.execute(
            delete(RolePermission).where(
                RolePermission.tenant_id == tenant_id, RolePermission.feature.in_([f.value for f in back])
            )
        )
    for feature, roles in changes.items():
        values = sorted({Role(r).value for r in roles})
        statement = insert(RolePermission).values(tenant_id=tenant_id, feature=feature.value, roles=values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "feature"], set_={"roles": values, "updated_at": func.now()}
            )
        )
    session.info.pop(_CACHE, None)
    return await table(session, tenant_id)
