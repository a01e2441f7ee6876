"""What a proposed lead policy would do, as of a date, by BD, before anyone adopts it: the same SQL as the
release sweep (release.py), with the proposed clocks bound instead of the policy in force; nothing is written."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User
from backend.auth.scopes import users_in_scope
from backend.auth.tokens import Principal
from backend.leads.release import dates_of
from mobile_contract.leads import LeadPolicy, SimulatedBd, SimulationResult


async def simulate(
    session: AsyncSession, principal: Principal, policy: LeadPolicy, as_of: datetime
) -> SimulationResult:
    """Every private lead of the caller's data scope: released when its release date is on or before `as_of`,
    warned when `as_of` is inside its warning window."""
    dates = await dates_of(session, principal.tenant_id, policy, as_of)
    holders = await users_in_scope(session, principal, {d.holder_id for d in dates.values()})
    names = (
        dict(
            (
                await session.execute(
                    select(User.id, User.display_name).where(
                        User.tenant_id == principal.tenant_id, User.id.in_(holders)
                    )
                )
            ).all()
        )
        if holders
        else {}
    )
    by_bd: dict[UUID, SimulatedBd] = {}
    for d in sorted(dates.values(), key=lambda d: (d.release_at, d.poi_id)):
        if d.holder_id not in holders:
            continue
        bd = by_bd.setdefault(
            d.holder_id,
            SimulatedBd(
                user_id=d.holder_id, display_name=names.get(d.holder_id, ""), held=0, would_release=[], would_warn=[]
            ),
        )
        bd.held += 1
        if d.release_at <= as_of:
            bd.would_release.append(d.poi_id)
        elif d.warn_from <= as_of:
            bd.would_warn.append(d.poi_id)
    items = sorted(by_bd.values(), key=lambda b: (-len(b.would_release), b.display_name, b.user_id))
    return SimulationResult(
        as_of=as_of,
        would_release=sum(len(b.would_release) for b in items),
        would_warn=sum(len(b.would_warn) for b in items),
        by_bd=items,
    )
