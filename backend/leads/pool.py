"""The lead pool's rules: claim, release, assign, extend, hand over a leaver's leads, win on a signing.

A lead is in the public pool (no holder), in one BD's private pool (claimed or assigned; `pois.holder_id`) or won
(locked to its holder, never released). Every transition is a row of `lead_events` with who, when and why. Routes,
the `poi.claim` mutation and the events domain call these functions; each takes the time from its caller's clock.

Exactly one of concurrent claims wins: the claim is one UPDATE of the merchant `WHERE holder_id IS NULL`, and
PostgreSQL's row lock makes a second UPDATE wait for the first and then see its holder. A BD's own claims take
turns on an advisory lock of theirs, so two parallel claims of one BD cannot both pass a cap at n - 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User
from backend.auth.scopes import users_in_scope
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.leads import policy as lead_policy
from backend.leads.pool_tables import LeadEvent, LeadRecord
from backend.leads.release import dates_of
from backend.leads.service import MERCHANTS, bump_merchants, poi_in_scope
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from mobile_contract.leads import (
    HandoverResult,
    Lead,
    LeadHistory,
    LeadHistoryEntry,
    LeadHow,
    LeadPolicy,
    LeadState,
    ReleaseCause,
)
from mobile_contract.pois import Holder
from sync.feed import Change, record_changes

# A merchant's lead state, if it has one yet (LeadRecord rows are written on the first transition).
_LEAD_OF_MERCHANT = (LeadRecord.tenant_id == MERCHANTS.c.tenant_id) & (LeadRecord.poi_id == MERCHANTS.c.id)

LEADS = "leads"  # the sync collection of the leads a user holds
POIS = "pois"
MANAGERS = (Role.SUPERVISOR, Role.OPS, Role.ADMIN)
CLAIM_WINDOW = timedelta(days=1)  # "claims per day": the 24 hours before the claim


# -- views ----------------------------------------------------------------------------------------------------


async def lead_views(
    session: AsyncSession, tenant_id: UUID, poi_ids: Sequence[UUID], now: datetime, policy: LeadPolicy | None = None
) -> dict[UUID, Lead]:
    """These merchants as leads, with the release dates the tenant's policy gives the private ones."""
    if not poi_ids:
        return {}
    rows = (
        await session.execute(
            select(
                MERCHANTS.c.id,
                MERCHANTS.c.name,
                MERCHANTS.c.holder_id,
                MERCHANTS.c.claimed_at,
                User.display_name,
                LeadRecord,
            )
            .outerjoin(User, (User.id == MERCHANTS.c.holder_id) & (User.tenant_id == MERCHANTS.c.tenant_id))
            .outerjoin(
                LeadRecord, (LeadRecord.tenant_id == MERCHANTS.c.tenant_id) & (LeadRecord.poi_id == MERCHANTS.c.id)
            )
            .where(MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.id.in_(list(poi_ids)))
            # The transitions write with Core upserts: reread the rows, not the session's copies of them.
            .execution_options(populate_existing=True)
        )
    ).all()
    policy = policy or await lead_policy.load(session, tenant_id)
    held = [row[0] for row in rows if row[2] is not None]
    dates = await dates_of(session, tenant_id, policy, now, held) if held else {}
    views: dict[UUID, Lead] = {}
    for poi_id, name, holder_id, claimed_at, holder_name, record in rows:
        state = _state(holder_id, record)
        d = dates.get(poi_id)
        views[poi_id] = Lead(
            id=poi_id,
            poi_name=name,
            state=state,
            how=LeadHow(record.how)
            if record is not None and record.how and state is not LeadState.POOL
            else (LeadHow.CLAIMED if state is LeadState.PRIVATE else None),
            holder=Holder(user_id=holder_id, display_name=holder_name or "") if holder_id is not None else None,
            since=(record.since if record is not None and record.since else claimed_at) if holder_id else None,
            last_visit_at=d.last_visit_at if d else None,
            extensions_used=record.extensions_used if record is not None else 0,
            extended_days=record.extended_days if record is not None else 0,
            release_at=d.release_at if d else None,
            release_cause=ReleaseCause(d.cause) if d else None,
            warn_from=d.warn_from if d else None,
            warning=bool(d and now >= d.warn_from),
        )
    return views


def _state(holder_id: UUID | None, record: LeadRecord | None) -> LeadState:
    if record is not None and record.state == LeadState.WON:
        return LeadState.WON
    return LeadState.PRIVATE if holder_id is not None else LeadState.POOL


async def get_lead(session: AsyncSession, principal: Principal, poi_id: UUID, now: datetime) -> Lead:
    views = await lead_views(session, principal.tenant_id, [poi_id], now)
    if poi_id not in views:
        raise not_found("merchant")
    return views[poi_id]


async def expiring(session: AsyncSession, principal: Principal, now: datetime) -> list[Lead]:
    """The caller's private leads in their warning window (a manager: those of everyone in their data scope),
    soonest release first."""
    policy = await lead_policy.load(session, principal.tenant_id)
    dates = await dates_of(session, principal.tenant_id, policy, now)
    holders = {d.holder_id for d in dates.values()}
    if principal.has_role(*MANAGERS):
        mine = await users_in_scope(session, principal, holders)
    else:
        mine = {principal.user_id}
    wanted = [d.poi_id for d in dates.values() if d.holder_id in mine and now >= d.warn_from]
    views = await lead_views(session, principal.tenant_id, wanted, now, policy)
    return sorted(views.values(), key=lambda v: (v.release_at or now, v.id))


async def history(session: AsyncSession, principal: Principal, poi_id: UUID) -> LeadHistory:
    exists = await session.scalar(
        select(MERCHANTS.c.id).where(MERCHANTS.c.tenant_id == principal.tenant_id, MERCHANTS.c.id == poi_id)
    )
    if exists is None:
        raise not_found("merchant")
    events = await session.scalars(
        select(LeadEvent)
        .where(LeadEvent.tenant_id == principal.tenant_id, LeadEvent.poi_id == poi_id)
        .order_by(LeadEvent.at, LeadEvent.id)
    )
    return LeadHistory(
        poi_id=poi_id,
        items=[
            LeadHistoryEntry(
                at=e.at,
                action=e.action,
                actor_id=e.actor_id,
                from_user_id=e.from_user_id,
                to_user_id=e.to_user_id,
                reason=e.reason,
            )
            for e in events
        ],
    )


async def fetch_for_sync(
    session: AsyncSession, principal: Principal, poi_ids: list[UUID], now: datetime
) -> dict[UUID, Lead]:
    """The `leads` collection: the leads the user holds (private or won), with their dates and warnings."""
    views = await lead_views(session, principal.tenant_id, poi_ids, now)
    return {k: v for k, v in views.items() if v.holder is not None and v.holder.user_id == principal.user_id}


# -- transitions ----------------------------------------------------------------------------------------------


async def _load(session: AsyncSession, tenant_id: UUID, poi_id: UUID) -> tuple[UUID | None, LeadRecord | None]:
    row = (
        await session.execute(
            select(MERCHANTS.c.holder_id, LeadRecord)
            .outerjoin(
                LeadRecord, (LeadRecord.tenant_id == MERCHANTS.c.tenant_id) & (LeadRecord.poi_id == MERCHANTS.c.id)
            )
            .where(MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.id == poi_id)
        )
    ).one_or_none()
    if row is None:
        raise not_found("merchant")
    return row[0], row[1]


async def _event(
    session: AsyncSession,
    tenant_id: UUID,
    poi_id: UUID,
    action: str,
    at: datetime,
    *,
    actor: UUID | None,
    from_user: UUID | None = None,
    to_user: UUID | None = None,
    reason: str | None = None,
) -> None:
    await session.execute(
        insert(LeadEvent).values(
            tenant_id=tenant_id,
            poi_id=poi_id,
            action=action,
            at=at,
            actor_id=actor,
            from_user_id=from_user,
            to_user_id=to_user,
            reason=reason,
        )
    )


async def _set_state(session: AsyncSession, tenant_id: UUID, poi_id: UUID, now: datetime, **values: object) -> None:
    statement = insert(LeadRecord).values(tenant_id=tenant_id, poi_id=poi_id, updated_at=now, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["tenant_id", "poi_id"], set_={"updated_at": now, **values})
    )


def _taken(holder_id: UUID | None, record: LeadRecord | None) -> DomainError:
    won = record is not None and record.state == LeadState.WON
    return DomainError(
        ErrorCode.LEAD_TAKEN,
        "This lead is won and locked." if won else "Another BD holds this lead; it is not in the public pool.",
        state=LeadState.WON.value if won else LeadState.PRIVATE.value,
    )


async def _take(
    session: AsyncSession, tenant_id: UUID, poi_id: UUID, user_id: UUID, now: datetime, *, from_holder: UUID | None
) -> bool:
    """Move the merchant from `from_holder` (None: the pool) to `user_id`, only if it is still there."""
    taken = await session.scalar(
        update(MERCHANTS)
        .where(
            MERCHANTS.c.tenant_id == tenant_id,
            MERCHANTS.c.id == poi_id,
            MERCHANTS.c.holder_id.is_(None) if from_holder is None else MERCHANTS.c.holder_id == from_holder,
        )
        .values(holder_id=user_id, claimed_at=now, updated_at=now)
        .returning(MERCHANTS.c.id)
    )
    return taken is not None


async def _left_phone(session: AsyncSession, tenant_id: UUID, user_id: UUID, poi_id: UUID) -> list[Change]:
    """A lead that left its holder: it leaves their leads, and their merchants unless a work item keeps it."""
    changes = [Change(user_id, LEADS, poi_id, "remove")]
    if not await poi_in_scope(session, tenant_id, user_id, poi_id):
        changes.append(Change(user_id, POIS, poi_id, "remove"))
    return changes


async def claim(session: AsyncSession, principal: Principal, poi_id: UUID, now: datetime) -> Lead:
    """Take a lead from the public pool into the caller's private pool. Claiming one's own lead again answers it
    as it is (a retried claim)."""
    tenant_id, me = principal.tenant_id, principal.user_id
    policy = await lead_policy.load(session, tenant_id)
    max_held = policy.max_held.get(principal.role)
    max_per_day = policy.max_claims_per_day.get(principal.role)
    if max_held is None or max_per_day is None:
        raise forbidden("Your role cannot claim leads under the tenant's lead policy.")
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"lead-claims:{me}"})
    holder_id, record = await _load(session, tenant_id, poi_id)
    if holder_id == me:
        return await get_lead(session, principal, poi_id, now)
    if holder_id is not None or (record is not None and record.state == LeadState.WON):
        raise _taken(holder_id, record)
    # The cooldown and both caps in one round trip: when the caller last lost this lead, how many leads they
    # hold (won ones do not count), how many they claimed in the last 24 hours.
    lost_at, held, today = (
        await session.execute(
            select(
                select(func.max(LeadEvent.at))
                .where(LeadEvent.tenant_id == tenant_id, LeadEvent.from_user_id == me, LeadEvent.poi_id == poi_id)
                .scalar_subquery(),
                select(func.count())
                .select_from(MERCHANTS)
                .outerjoin(
                    LeadRecord, (LeadRecord.tenant_id == MERCHANTS.c.tenant_id) & (LeadRecord.poi_id == MERCHANTS.c.id)
                )
                .where(
                    MERCHANTS.c.tenant_id == tenant_id,
                    MERCHANTS.c.holder_id == me,
                    func.coalesce(LeadRecord.state, LeadState.PRIVATE.value) != LeadState.WON.value,
                )
                .scalar_subquery(),
                select(func.count())
                .select_from(LeadEvent)
                .where(
                    LeadEvent.tenant_id == tenant_id,
                    LeadEvent.actor_id == me,
                    LeadEvent.action == "claim",
                    LeadEvent.at > now - CLAIM_WINDOW,
                )
                .scalar_subquery(),
            )
        )
    ).one()
    if policy.cooldown_days and lost_at is not None and now < lost_at + timedelta(days=policy.cooldown_days):
        until = lost_at + timedelta(days=policy.cooldown_days)
        raise DomainError(
            ErrorCode.LEAD_COOLDOWN,
            f"You held this lead until {lost_at.isoformat()}; you may claim it again from {until.isoformat()}.",
            until=until.isoformat(),
        )
    if held >= max_held:
        raise DomainError(
            ErrorCode.CLAIM_LIMIT_REACHED,
            f"You hold {held} leads, the most your role may hold ({max_held}); won leads do not count.",
            limit="held",
            count=held,
            cap=max_held,
        )
    if today >= max_per_day:
        raise DomainError(
            ErrorCode.CLAIM_LIMIT_REACHED,
            f"You claimed {today} leads in the last 24 hours, the most your role may ({max_per_day}).",
            limit="per_day",
            count=today,
            cap=max_per_day,
        )
    if not await _take(session, tenant_id, poi_id, me, now, from_holder=None):
        # Another claim committed between our read and our UPDATE: it holds the row now.
        holder_id, record = await _load(session, tenant_id, poi_id)
        raise _taken(holder_id, record)
    await _set_state(
        session,
        tenant_id,
        poi_id,
        now,
        state=LeadState.PRIVATE.value,
        how=LeadHow.CLAIMED.value,
        since=now,
        extensions_used=0,
        extended_days=0,
        warned_release_at=None,
    )
    await _event(session, tenant_id, poi_id, "claim", now, actor=me, to_user=me)
    # The merchant reaches every phone that has it (the claimer's now among them), the lead the claimer's.
    await record_changes(session, tenant_id, [Change(me, LEADS, poi_id)])
    await bump_merchants(session, tenant_id, [poi_id])
    return await get_lead(session, principal, poi_id, now)


async def _manages(session: AsyncSession, principal: Principal, user_id: UUID) -> bool:
    return principal.has_role(*MANAGERS) and user_id in await users_in_scope(session, principal, [user_id])


async def release(session: AsyncSession, principal: Principal, poi_id: UUID, reason: str, now: datetime) -> Lead:
    """Back to the public pool, by its holder or a manager of theirs, with a reason."""
    tenant_id = principal.tenant_id
    holder_id, record = await _load(session, tenant_id, poi_id)
    if holder_id is None or (holder_id != principal.user_id and not await _manages(session, principal, holder_id)):
        raise DomainError(ErrorCode.LEAD_NOT_HELD, "This lead is not in your private pool, nor in your team's.")
    if record is not None and record.state == LeadState.WON:
        raise DomainError(ErrorCode.LEAD_WON, "A won lead is locked: it cannot go back to the pool.")
    await return_to_pool(session, tenant_id, [(poi_id, holder_id)], now, actor=principal.user_id, reason=reason)
    return await get_lead(session, principal, poi_id, now)


async def return_to_pool(
    session: AsyncSession,
    tenant_id: UUID,
    leads: Sequence[tuple[UUID, UUID]],
    now: datetime,
    *,
    actor: UUID | None,
    reason: str,
) -> int:
    """Back to the pool, each (merchant, holder) only if that holder still holds it: the one release of the
    routes, the hand-over and anyone else (the sync fleet's tests). Returns how many went."""
    released = 0
    changes: list[Change] = []
    for poi_id, holder_id in leads:
        done = await session.scalar(
            update(MERCHANTS)
            .where(MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.id == poi_id, MERCHANTS.c.holder_id == holder_id)
            .values(holder_id=None, claimed_at=None, updated_at=now)
            .returning(MERCHANTS.c.id)
        )
        if done is None:
            continue
        released += 1
        await _set_state(
            session,
            tenant_id,
            poi_id,
            now,
            state=LeadState.POOL.value,
            how=None,
            since=None,
            extensions_used=0,
            extended_days=0,
            warned_release_at=None,
        )
        await _event(session, tenant_id, poi_id, "release", now, actor=actor, from_user=holder_id, reason=reason)
        changes += await _left_phone(session, tenant_id, holder_id, poi_id)
    await record_changes(session, tenant_id, changes)
    await bump_merchants(session, tenant_id, [poi_id for poi_id, _ in leads])
    return released


async def assign(
    session: AsyncSession, principal: Principal, poi_id: UUID, user_id: UUID, reason: str | None, now: datetime
) -> Lead:
    """A manager puts a lead (from the pool, or from someone in their scope) in a BD's private pool: protection
    starts again from now. Caps bind claims, not a manager's decision."""
    if not principal.has_role(*MANAGERS):
        raise forbidden("Only a supervisor, ops or an admin can assign leads.")
    tenant_id = principal.tenant_id
    if user_id not in await users_in_scope(session, principal, [user_id], active_only=True):
        raise not_found("user")
    holder_id, record = await _load(session, tenant_id, poi_id)
    if record is not None and record.state == LeadState.WON:
        raise DomainError(ErrorCode.LEAD_WON, "A won lead is locked: it cannot change hands.")
    if holder_id is not None and holder_id != user_id and not await _manages(session, principal, holder_id):
        raise _taken(holder_id, record)
    await _assign(session, tenant_id, poi_id, holder_id, user_id, now, actor=principal.user_id, reason=reason)
    return await get_lead(session, principal, poi_id, now)


async def _assign(
    session: AsyncSession,
    tenant_id: UUID,
    poi_id: UUID,
    holder_id: UUID | None,
    user_id: UUID,
    now: datetime,
    *,
    actor: UUID | None,
    reason: str | None,
) -> bool:
    if not await _take(session, tenant_id, poi_id, user_id, now, from_holder=holder_id):
        return False
    await _set_state(
        session,
        tenant_id,
        poi_id,
        now,
        state=LeadState.PRIVATE.value,
        how=LeadHow.ASSIGNED.value,
        since=now,
        extensions_used=0,
        extended_days=0,
        warned_release_at=None,
    )
    await _event(
        session, tenant_id, poi_id, "assign", now, actor=actor, from_user=holder_id, to_user=user_id, reason=reason
    )
    changes = [Change(user_id, POIS, poi_id), Change(user_id, LEADS, poi_id)]
    if holder_id is not None and holder_id != user_id:
        changes += await _left_phone(session, tenant_id, holder_id, poi_id)
    await record_changes(session, tenant_id, changes)
    await bump_merchants(session, tenant_id, [poi_id])
    return True


async def extend(
    session: AsyncSession, principal: Principal, poi_id: UUID, days: int, reason: str | None, now: datetime
) -> Lead:
    """Push a private lead's release back by `days`: its holder a limited number of times, each of limited length
    (the policy's); a manager of the holder without those limits."""
    tenant_id = principal.tenant_id
    holder_id, record = await _load(session, tenant_id, poi_id)
    if record is not None and record.state == LeadState.WON:
        raise DomainError(ErrorCode.LEAD_WON, "A won lead is never released: it needs no extension.")
    by_holder = holder_id is not None and holder_id == principal.user_id
    if holder_id is None or not (by_holder or await _manages(session, principal, holder_id)):
        raise DomainError(ErrorCode.LEAD_NOT_HELD, "This lead is not in your private pool, nor in your team's.")
    used = record.extensions_used if record is not None else 0
    if by_holder:
        policy = await lead_policy.load(session, tenant_id)
        if used >= policy.max_extensions or days > policy.max_extension_days:
            raise DomainError(
                ErrorCode.EXTENSION_LIMIT_REACHED,
                f"You may extend a lead {policy.max_extensions} times, by at most {policy.max_extension_days} days "
                f"each; you have used {used}. Ask your supervisor.",
                max_extensions=policy.max_extensions,
                max_extension_days=policy.max_extension_days,
                extensions_used=used,
            )
    since = (record.since if record is not None else None) or await session.scalar(
        select(MERCHANTS.c.claimed_at).where(MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.id == poi_id)
    )
    await _set_state(
        session,
        tenant_id,
        poi_id,
        now,
        state=LeadState.PRIVATE.value,
        how=(record.how if record is not None else None) or LeadHow.CLAIMED.value,
        since=since,
        extensions_used=used + (1 if by_holder else 0),
        extended_days=(record.extended_days if record is not None else 0) + days,
    )
    await _event(
        session,
        tenant_id,
        poi_id,
        "extend",
        now,
        actor=principal.user_id,
        to_user=holder_id,
        reason=reason or f"+{days}d",
    )
    await record_changes(session, tenant_id, [Change(holder_id, LEADS, poi_id)])
    return await get_lead(session, principal, poi_id, now)


async def handover(
    session: AsyncSession,
    principal: Principal,
    from_user_id: UUID,
    to_user_id: UUID | None,
    reason: str,
    now: datetime,
) -> HandoverResult:
    """A BD leaves (or is disabled): their private leads go back to the pool, or to another BD of the manager's.
    Won leads stay with their holder (locked)."""
    if not principal.has_role(*MANAGERS):
        raise forbidden("Only a supervisor, ops or an admin can hand over a BD's leads.")
    if from_user_id not in await users_in_scope(session, principal, [from_user_id]):
        raise not_found("user")
    if to_user_id is not None and to_user_id not in await users_in_scope(
        session, principal, [to_user_id], active_only=True
    ):
        raise not_found("user")
    tenant_id = principal.tenant_id
    held = list(
        await session.scalars(
            select(MERCHANTS.c.id)
            .outerjoin(
                LeadRecord, (LeadRecord.tenant_id == MERCHANTS.c.tenant_id) & (LeadRecord.poi_id == MERCHANTS.c.id)
            )
            .where(
                MERCHANTS.c.tenant_id == tenant_id,
                MERCHANTS.c.holder_id == from_user_id,
                func.coalesce(LeadRecord.state, LeadState.PRIVATE.value) != LeadState.WON.value,
            )
            .order_by(MERCHANTS.c.id)
        )
    )
    if to_user_id is None or to_user_id == from_user_id:
        released = await return_to_pool(
            session, tenant_id, [(p, from_user_id) for p in held], now, actor=principal.user_id, reason=reason
        )
        return HandoverResult(released=released, reassigned=0)
    moved = 0
    for poi_id in held:
        moved += await _assign(
            session, tenant_id, poi_id, from_user_id, to_user_id, now, actor=principal.user_id, reason=reason
        )
    return HandoverResult(released=0, reassigned=moved)


async def found_in_the_field(session: AsyncSession, tenant_id: UUID, poi_id: UUID, user_id: UUID, at: datetime) -> None:
    """A BD added this merchant from the field and holds it from now: the start of its lead's history. No caps:
    finding a merchant is not taking one from the pool."""
    await _set_state(session, tenant_id, poi_id, at, state=LeadState.PRIVATE.value, how=LeadHow.CLAIMED.value, since=at)
    await _event(session, tenant_id, poi_id, "claim", at, actor=user_id, to_user=user_id, reason="found in the field")
    await record_changes(session, tenant_id, [Change(user_id, LEADS, poi_id)])


async def on_signing(session: AsyncSession, tenant_id: UUID, poi_id: UUID, at: datetime) -> bool:
    """A signing (a business event) wins the lead: locked to its holder, out of the release, out of the caps.
    Idempotent: a second signing changes nothing. Returns whether the lead was won now. An unknown merchant is
    a no-op (False): events may arrive for merchants this tenant never had."""
    row = (
        await session.execute(
            select(MERCHANTS.c.holder_id, LeadRecord.state)
            .outerjoin(
                LeadRecord, (LeadRecord.tenant_id == MERCHANTS.c.tenant_id) & (LeadRecord.poi_id == MERCHANTS.c.id)
            )
            .where(MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.id == poi_id)
            .with_for_update(of=MERCHANTS)
        )
    ).one_or_none()
    if row is None or row[1] == LeadState.WON:
        return False
    holder_id = row[0]
    await _set_state(session, tenant_id, poi_id, at, state=LeadState.WON.value, won_at=at)
    await _event(session, tenant_id, poi_id, "win", at, actor=None, to_user=holder_id, reason="signing")
    if holder_id is not None:
        await record_changes(session, tenant_id, [Change(holder_id, LEADS, poi_id), Change(holder_id, POIS, poi_id)])
    return True


async def assign_by_rule(
    session: AsyncSession, tenant_id: UUID, poi_id: UUID, user_id: UUID, now: datetime, *, reason: str
) -> bool:
    """The assignment rules put a lead from the public pool in a BD's private pool (no actor: the rules did).
    False when the lead is no longer in the pool."""
    return await _assign(session, tenant_id, poi_id, None, user_id, now, actor=None, reason=reason)
