"""Who holds a merchant, and which merchants belong on a user's phone.

A merchant belongs on a user's phone when they hold it as a lead or a work item of theirs targets it: that rule
is `_on_phones`, defined once, and read both ways, as the merchants of one user (`merchants_on_phone`,
`poi_in_scope`) and as the users of some merchants (`phones_with`, `merchant_bump_from`, `bump_merchants`).

Leads sits below pois and tasks, so it names the few columns it reads (`MERCHANTS`, `WORK_ITEMS_HELD`) rather
than import their models; tests/pois/test_leads.py checks they agree with the tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CompoundSelect,
    DateTime,
    String,
    Uuid,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_contract.pois import Holder
from sync.feed import Change, record_changes
from sync.tables import sync_changes

POIS = "pois"  # the merchants' sync collection

# The merchant as a lead: its name, who holds it and since when (pois.models.Poi's columns of the same names);
# tasks reads a target's name through it, so tasks imports nothing of pois.
MERCHANTS = table(
    "pois",
    column("tenant_id", Uuid),
    column("id", Uuid),
    column("name", String),
    column("holder_id", Uuid),
    column("claimed_at", DateTime(timezone=True)),
    column("updated_at", DateTime(timezone=True)),
)
# Whom a work item puts a merchant in front of (tasks.models.WorkItem's columns of the same names).
WORK_ITEMS_HELD = table("work_items", column("tenant_id", Uuid), column("poi_id", Uuid), column("assignee_id", Uuid))


# -- who holds a merchant ----------------------------------------------------------------------------------------


def claim(user_id: UUID, at: datetime) -> dict[str, Any]:
    """The columns of a merchant that `user_id` holds as their lead from `at` on (whoever finds one holds it)."""
    return {"holder_id": user_id, "claimed_at": at}


def holder_view(holder_id: UUID | None, display_name: str | None) -> Holder | None:
    """The holder as the wire shows it, or None for a merchant nobody holds."""
    return Holder(user_id=holder_id, display_name=display_name or "") if holder_id is not None else None


async def holders_of(session: AsyncSession, tenant_id: UUID, poi_ids: Sequence[UUID]) -> dict[UUID, UUID | None]:
    """Each merchant of the tenant among `poi_ids` and who holds it (None: nobody); unknown ids are left out."""
    rows = await session.execute(
        select(MERCHANTS.c.id, MERCHANTS.c.holder_id).where(
            MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.id.in_(poi_ids)
        )
    )
    return {row.id: row.holder_id for row in rows}


# -- which merchants belong on a phone ---------------------------------------------------------------------------


def _on_phones(
    tenant_id: Any, *, user_id: UUID | None = None, poi_ids: Iterable[UUID] | None = None, poi_id: Any = None
) -> CompoundSelect[Any]:
    """THE rule, as (user_id, poi_id, tenant_id) rows: a merchant is on the phone of whoever holds it as a lead
    and of the assignee of every work item that targets it. Narrowed to one user, to some merchants, or to one
    merchant (`poi_id`: an SQL expression, a CTE's column), inside each branch so the indexes serve it."""
    held = [MERCHANTS.c.tenant_id == tenant_id, MERCHANTS.c.holder_id.is_not(None)]
    targeted = [WORK_ITEMS_HELD.c.tenant_id == tenant_id, WORK_ITEMS_HELD.c.assignee_id.is_not(None)]
    if user_id is not None:
        held.append(MERCHANTS.c.holder_id == user_id)
        targeted.append(WORK_ITEMS_HELD.c.assignee_id == user_id)
    if poi_ids is not None:
        wanted = list(poi_ids)
        held.append(MERCHANTS.c.id.in_(wanted))
        targeted.append(WORK_ITEMS_HELD.c.poi_id.in_(wanted))
    if poi_id is not None:
        held.append(MERCHANTS.c.id == poi_id)
        targeted.append(WORK_ITEMS_HELD.c.poi_id == poi_id)
    return (
        select(MERCHANTS.c.holder_id.label("user_id"), MERCHANTS.c.id.label("poi_id"), MERCHANTS.c.tenant_id).where(
            *held
        )
    ).union(
        select(WORK_ITEMS_HELD.c.assignee_id, WORK_ITEMS_HELD.c.poi_id, WORK_ITEMS_HELD.c.tenant_id).where(*targeted)
    )


def on_phones_sql() -> str:
    """The rule as SQL text for bulk writers on a raw asyncpg connection (the demo seed): rows
    (user_id, poi_id, tenant_id) of the tenant bound as $1."""
    return str(_on_phones(bindparam("tenant_id", type_=Uuid)).compile(dialect=PGDialect_asyncpg()))  # type: ignore[no-untyped-call]


def merchants_on_phone(tenant_id: UUID, user_id: UUID) -> Any:
    """The merchants on a user's phone, as a subquery of merchant ids: the sync collection, the scope exits and
    the bumps all read the rule from here."""
    pairs = _on_phones(tenant_id, user_id=user_id).subquery("on_phone")
    return select(pairs.c.poi_id)


async def poi_in_scope(session: AsyncSession, tenant_id: UUID, user_id: UUID, poi_id: UUID) -> bool:
    """Does the user still have a reason to keep this merchant on their phone?"""
    on_phone = merchants_on_phone(tenant_id, user_id).subquery()
    return bool(await session.scalar(select(exists().where(on_phone.c[0] == poi_id))))


async def phones_with(session: AsyncSession, tenant_id: UUID, poi_ids: Iterable[UUID]) -> set[tuple[UUID, UUID]]:
    """The other way round: (user, merchant) for every user who has one of these merchants on their phone."""
    wanted = list(set(poi_ids))
    if not wanted:
        return set()
    rows = await session.execute(_on_phones(tenant_id, poi_ids=wanted))
    return {(row.user_id, row.poi_id) for row in rows}


def merchant_bump_from(tenant_id: Any, poi_id: Any) -> Any:
    """bump_merchants as an INSERT ... SELECT of one merchant, to nest in the statement of the change itself (a
    check-in's insert: one round trip fewer per check-in, two statements fewer in an offline push of hundreds).
    `tenant_id` and `poi_id` are SQL expressions (a CTE's columns): no row there, no bump."""
    holders = _on_phones(tenant_id, poi_id=poi_id).subquery("holders")
    return (
        insert(sync_changes)
        .from_select(
            ["user_id", "collection", "record_id", "tenant_id", "op"],
            select(
                holders.c.user_id,
                literal_column(f"'{POIS}'"),
                holders.c.poi_id,
                holders.c.tenant_id,
                literal_column("'upsert'"),
            ),
        )
        .on_conflict_do_update(
            index_elements=["user_id", "collection", "record_id"],
            set_={"op": literal_column("excluded.op"), "xid": text("pg_current_xact_id()"), "changed_at": func.now()},
        )
    )


async def bump_merchants(session: AsyncSession, tenant_id: UUID, poi_ids: Iterable[UUID]) -> None:
    """A merchant's record on the phone embeds its open work items and recent visits: when those change, every
    phone that has the merchant must get it again."""
    holders = await phones_with(session, tenant_id, poi_ids)
    await record_changes(session, tenant_id, [Change(user, POIS, poi) for user, poi in holders])
