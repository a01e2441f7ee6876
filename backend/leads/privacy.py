"""Privacy of a private lead: its key people's phone numbers are the holder's work. Only the holder and the holder's
managers (a supervisor, ops or an admin whose data scope covers the holder) see them; everyone else sees the
merchant and its key people without their numbers. A lead in the public pool shows them to all: whoever claims it
needs them. Every place that serves contacts (the merchant view, the sync collection) asks here."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.scopes import users_in_scope
from backend.auth.tokens import Principal
from mobile_contract.auth import Role

MANAGERS = (Role.SUPERVISOR, Role.OPS, Role.ADMIN)


async def contacts_visible(
    session: AsyncSession, principal: Principal, holders: Mapping[UUID, UUID | None]
) -> set[UUID]:
    """Of these merchants (merchant -> its lead holder), those whose contacts' phone numbers the caller may see."""
    others = {h for h in holders.values() if h is not None and h != principal.user_id}
    managed = await users_in_scope(session, principal, others) if others and principal.has_role(*MANAGERS) else set()
    return {
        poi_id
        for poi_id, holder in holders.items()
        if holder is None or holder == principal.user_id or holder in managed
    }
