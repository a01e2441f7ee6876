"""Business events: taking a signed event in (idempotent on (tenant, source, external id)), attributing it, and
the reads ops use (an event's attribution, a campaign's credits and its progress from them).

Attribution, in two layers, from stored facts only (so the answer does not depend on what arrived first):

1. Credit. For every work item on the event's merchant (one per campaign that targets it: a (campaign, target,
   assignee)), the event is credited when it happened inside the campaign's window and the assignee followed the
   merchant within the tenant's attribution window (default 30 days) before it: a believable visit (a check-in
   the server did not reject) or a logged follow-up (an edit of the work item from the assignee's phone or
   console: notes, answers, outcome). Otherwise the row says why not.
2. Goal. A credited event counts toward its campaign's goal only when it is of the goal's kind: a signing for
   `sign`, a recharge for `recharge_amount`, an order for `order_count`.

A late event is attributed when it arrives, against everything already stored. A late visit, follow-up or target
changes the answer for events already stored: it queues `events.reattribute` for the merchant (in its own
transaction, so it runs after that commits), and the handler recomputes every event of that merchant whole.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import iso4217
import msgspec
from sqlalchemy import String, Text, Uuid, column, delete, exists, func, insert, literal, select, table, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import permissions
from backend.auth.models import User
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.events.keys import Sender
from backend.events.models import (
    DEFAULT_ATTRIBUTION_WINDOW_DAYS,
    BusinessEvent,
    EventAttribution,
    EventSettings,
    IntegrationKey,
    MerchantCode,
    MerchantSigning,
    RefusedEvent,
)
from backend.leads import pool as lead_pool
from backend.queue.models import BackgroundJob
from mobile_contract import events as wire
from mobile_contract.admin import Feature
from mobile_contract.errors import ErrorCode

# Events sit below pois and tasks (which tell it of follow-ups and new targets), so it names the columns it
# reads of their tables, as leads does (pois.models.Poi, tasks.models.Campaign and WorkItem).
POIS = table("pois", column("tenant_id", Uuid), column("id", Uuid), column("name", String))
CAMPAIGNS = table("campaigns", column("tenant_id", Uuid), column("id", Uuid), column("goal", JSONB))
WORK_ITEMS = table(
    "work_items",
    column("tenant_id", Uuid),
    column("campaign_id", Uuid),
    column("poi_id", Uuid),
    column("assignee_id", Uuid),
)

REATTRIBUTE = "events.reattribute"
# Which event kind meets which goal kind (mobile_contract.tasks.GoalKind).
GOAL_EVENT_KIND = {
    "sign": wire.EventKind.SIGNING,
    "recharge_amount": wire.EventKind.RECHARGE,
    "order_count": wire.EventKind.ORDER,
}
_CURRENCIES = {currency.code: currency for currency in iso4217.Currency}


async def _check_ops(session: AsyncSession, principal: Principal) -> None:
    if not await permissions.can(session, principal, Feature.READ_BUSINESS_EVENTS):
        raise forbidden("Your role cannot read or set business events (the tenant's permissions).")


# -- settings ----------------------------------------------------------------------------------------------------


async def window_days(session: AsyncSession, tenant_id: UUID) -> int:
    stored = await session.scalar(
        select(EventSettings.attribution_window_days).where(EventSettings.tenant_id == tenant_id)
    )
    return int(stored) if stored is not None else DEFAULT_ATTRIBUTION_WINDOW_DAYS


async def get_settings(session: AsyncSession, principal: Principal) -> wire.EventSettings:
    await _check_ops(session, principal)
    return wire.EventSettings(attribution_window_days=await window_days(session, principal.tenant_id))


async def put_settings(session: AsyncSession, principal: Principal, data: wire.EventSettingsIn) -> wire.EventSettings:
    """A new window re-attributes every stored event of the tenant: a job per merchant with events, after the
    commit (the same handler as late visits use)."""
    await _check_ops(session, principal)
    before = await window_days(session, principal.tenant_id)
    await session.execute(
        pg_insert(EventSettings)
        .values(tenant_id=principal.tenant_id, attribution_window_days=data.attribution_window_days)
        .on_conflict_do_update(
            index_elements=[EventSettings.tenant_id],
            set_={"attribution_window_days": data.attribution_window_days},
        )
    )
    if before != data.attribution_window_days:
        await _reattribute_all(session, principal.tenant_id)
    return wire.EventSettings(attribution_window_days=data.attribution_window_days)


async def _reattribute_all(session: AsyncSession, tenant_id: UUID) -> None:
    merchants = (
        select(BusinessEvent.poi_id).where(BusinessEvent.tenant_id == tenant_id).distinct().subquery("merchants")
    )
    await session.execute(
        insert(BackgroundJob).from_select(
            ["tenant_id", "kind", "payload", "max_attempts"],
            select(
                literal(tenant_id),
                literal(REATTRIBUTE),
                func.jsonb_build_object("tenant_id", str(tenant_id), "poi_id", func.cast(merchants.c.poi_id, Text)),
                literal(12),
            ),
        )
    )


# -- merchant codes ----------------------------------------------------------------------------------------------


async def set_merchant_code(
    session: AsyncSession, principal: Principal, poi_id: UUID, data: wire.MerchantCodeIn
) -> wire.MerchantCode:
    await _check_ops(session, principal)
    if (
        await session.scalar(select(POIS.c.id).where(POIS.c.tenant_id == principal.tenant_id, POIS.c.id == poi_id))
        is None
    ):
        raise not_found("merchant")
    holder = await session.scalar(
        select(MerchantCode.poi_id).where(
            MerchantCode.tenant_id == principal.tenant_id, MerchantCode.code == data.external_code
        )
    )
    if holder is not None and holder != poi_id:
        raise DomainError(ErrorCode.MERCHANT_CODE_TAKEN, "Another merchant already has this external code.")
    await session.execute(
        delete(MerchantCode).where(MerchantCode.tenant_id == principal.tenant_id, MerchantCode.poi_id == poi_id)
    )
    await session.execute(
        insert(MerchantCode).values(tenant_id=principal.tenant_id, code=data.external_code, poi_id=poi_id)
    )
    return wire.MerchantCode(poi_id=poi_id, external_code=data.external_code)


async def _merchant(session: AsyncSession, tenant_id: UUID, ref: wire.MerchantRef) -> UUID | None:
    """Our merchant id for a reference, within the tenant only: another tenant's merchant id never matches."""
    if ref.id is not None:
        return await session.scalar(select(POIS.c.id).where(POIS.c.tenant_id == tenant_id, POIS.c.id == ref.id))
    return await session.scalar(
        select(MerchantCode.poi_id).where(MerchantCode.tenant_id == tenant_id, MerchantCode.code == ref.external_code)
    )


# -- ingest ------------------------------------------------------------------------------------------------------


def request_hash(data: wire.EventIn) -> str:
    """What makes a resend the same event: its values, not its bytes (key order, spacing, `199.0` vs `199.00` and
    the offset `occurred_at` was written in do not matter)."""
    canonical = {
        "source": data.source,
        "external_id": data.external_id,
        "kind": data.kind.value,
        "merchant": msgspec.to_builtins(data.merchant),
        "amount": None if data.decimal_amount is None else format(data.decimal_amount.normalize(), "f"),
        "currency": data.currency,
        "occurred_at": data.occurred_at.timestamp(),
    }
    return hashlib.sha256(msgspec.json.encode(canonical, order="sorted")).hexdigest()


def _problem_of(data: wire.EventIn, now: datetime) -> tuple[ErrorCode, str] | None:
    if data.currency is not None:
        currency = _CURRENCIES.get(data.currency)
        if currency is None:
            return ErrorCode.UNKNOWN_CURRENCY, f"{data.currency} is not an ISO 4217 currency code."
        minor = currency.exponent or 0
        amount = data.decimal_amount
        if amount is not None and amount != amount.quantize(Decimal(1).scaleb(-minor)):
            return ErrorCode.UNKNOWN_CURRENCY, f"{data.currency} has {minor} decimals; the amount has more."
    if data.occurred_at > now + timedelta(seconds=wire.FUTURE_SKEW_S):
        return ErrorCode.OCCURRED_IN_FUTURE, "occurred_at is in the future (beyond 5 minutes of clock drift)."
    return None


async def _refuse(
    session: AsyncSession, sender: Sender, data: wire.EventIn, code: ErrorCode, detail: str, now: datetime
) -> DomainError:
    session.add(
        RefusedEvent(
            tenant_id=sender.tenant_id,
            key_id=sender.key_id,
            source=data.source,
            external_id=data.external_id,
            code=code.value,
            detail=detail,
            body=msgspec.to_builtins(data),
            received_at=now,
        )
    )
    await session.flush()
    return DomainError(code, detail, keep_effects=True)


def _event_wire(row: BusinessEvent) -> wire.Event:
    return wire.Event(
        id=row.id,
        source=row.source,
        external_id=row.external_id,
        kind=wire.EventKind(row.kind),
        merchant_id=row.poi_id,
        amount=row.amount,
        currency=row.currency,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
    )


async def ingest(
    session: AsyncSession, sender: Sender, data: wire.EventIn, *, now: datetime
) -> tuple[wire.Event, bool]:
    """Store an event and attribute it. Returns the answer and whether it was stored now (False: a replay, answered
    with the first answer). Concurrent duplicates: the unique key makes the second insert wait for the first and
    then do nothing; it then reads the first's row, so both answer the same event."""
    problem = _problem_of(data, now)
    if problem is not None:
        raise await _refuse(session, sender, data, *problem, now)
    digest = request_hash(data)
    existing = await _existing(session, sender.tenant_id, data)
    if existing is not None:
        return _replay(existing, digest)
    poi_id = await _merchant(session, sender.tenant_id, data.merchant)
    if poi_id is None:
        raise await _refuse(
            session, sender, data, ErrorCode.UNKNOWN_MERCHANT, "No merchant of this tenant has this id or code.", now
        )
    event_id = uuid.uuid4()
    amount = data.decimal_amount
    answer = wire.Event(
        id=event_id,
        source=data.source,
        external_id=data.external_id,
        kind=data.kind,
        merchant_id=poi_id,
        amount=amount,
        currency=data.currency,
        occurred_at=data.occurred_at,
        received_at=now,
    )
    inserted = await session.scalar(
        pg_insert(BusinessEvent)
        .values(
            tenant_id=sender.tenant_id,
            id=event_id,
            source=data.source,
            external_id=data.external_id,
            kind=data.kind.value,
            poi_id=poi_id,
            merchant_ref=msgspec.to_builtins(data.merchant),
            amount=amount,
            currency=data.currency,
            occurred_at=data.occurred_at,
            received_at=now,
            key_id=sender.key_id,
            request_hash=digest,
            result=msgspec.to_builtins(answer),
        )
        .on_conflict_do_nothing(constraint="uq_business_events_source_external_id")
        .returning(BusinessEvent.id)
    )
    if inserted is None:
        existing = await _existing(session, sender.tenant_id, data)
        if existing is None:  # pragma: no cover - the conflicting row was deleted in between
            raise DomainError(ErrorCode.CONFLICT, "A concurrent write got there first; retry.")
        return _replay(existing, digest)
    if data.kind is wire.EventKind.SIGNING:
        await on_signing(session, sender.tenant_id, poi_id, data.occurred_at)
    await attribute_events(session, sender.tenant_id, [event_id])
    return answer, True


async def _existing(session: AsyncSession, tenant_id: UUID, data: wire.EventIn) -> Any:
    return (
        await session.execute(
            select(BusinessEvent.request_hash, BusinessEvent.result).where(
                BusinessEvent.tenant_id == tenant_id,
                BusinessEvent.source == data.source,
                BusinessEvent.external_id == data.external_id,
            )
        )
    ).one_or_none()


def _replay(existing: Any, digest: str) -> tuple[wire.Event, bool]:
    if existing.request_hash != digest:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "This source and external_id were already used for a different event; send a new external_id.",
        )
    return msgspec.convert(existing.result, wire.Event), False


# -- signings ----------------------------------------------------------------------------------------------------


async def on_signing(session: AsyncSession, tenant_id: UUID, poi_id: UUID, at: datetime) -> None:
    """A merchant signed at `at`. Recorded per merchant (first and latest signing, whatever order events arrive
    in) for the lead pool to read, and the lead is won in the same transaction (backend/leads/pool.py on_signing:
    locked to its holder, exempt from release, out of the caps; a later or earlier signing changes nothing more)."""
    await session.execute(
        pg_insert(MerchantSigning)
        .values(tenant_id=tenant_id, poi_id=poi_id, first_signed_at=at, last_signed_at=at)
        .on_conflict_do_update(
            index_elements=[MerchantSigning.tenant_id, MerchantSigning.poi_id],
            set_={
                "first_signed_at": text("LEAST(merchant_signings.first_signed_at, excluded.first_signed_at)"),
                "last_signed_at": text("GREATEST(merchant_signings.last_signed_at, excluded.last_signed_at)"),
                "updated_at": text("now()"),
            },
        )
    )
    await lead_pool.on_signing(session, tenant_id, poi_id, at)


async def signed_at(
    session: AsyncSession, tenant_id: UUID, poi_ids: Sequence[UUID]
) -> dict[UUID, tuple[datetime, datetime]]:
    """(first, latest) signing per merchant that signed: what "no signing in 30 days" and "won" read."""
    rows = await session.execute(
        select(MerchantSigning.poi_id, MerchantSigning.first_signed_at, MerchantSigning.last_signed_at).where(
            MerchantSigning.tenant_id == tenant_id, MerchantSigning.poi_id.in_(poi_ids)
        )
    )
    return {row.poi_id: (row.first_signed_at, row.last_signed_at) for row in rows}


# -- attribution -------------------------------------------------------------------------------------------------

# Per work item on the merchant: the campaign, and the assignee's latest believable visit, latest rejected visit
# and latest logged follow-up at or before the event. Every table is read within the tenant (binds :tenant_id).
_CANDIDATES = text(
    """
SELECT w.id AS work_item_id, w.campaign_id, w.assignee_id, c.starts_at, c.ends_at, c.goal,
       v.checked_in_at AS visit_at, rv.checked_in_at AS rejected_at, f.at AS follow_up_at
FROM work_items w
JOIN campaigns c ON c.tenant_id = :tenant_id AND c.id = w.campaign_id
LEFT JOIN LATERAL (
    SELECT checked_in_at FROM visits
    WHERE tenant_id = :tenant_id AND poi_id = :poi_id AND user_id = w.assignee_id
      AND check_in_status <> 'rejected' AND checked_in_at <= :at
    ORDER BY checked_in_at DESC LIMIT 1) v ON true
LEFT JOIN LATERAL (
    SELECT checked_in_at FROM visits
    WHERE tenant_id = :tenant_id AND poi_id = :poi_id AND user_id = w.assignee_id
      AND check_in_status = 'rejected' AND checked_in_at <= :at AND checked_in_at >= :since
    ORDER BY checked_in_at DESC LIMIT 1) rv ON true
LEFT JOIN LATERAL (
    SELECT at FROM work_item_history
    WHERE tenant_id = :tenant_id AND work_item_id = w.id AND user_id = w.assignee_id
      AND origin <> 'server' AND at <= :at
    ORDER BY at DESC LIMIT 1) f ON true
WHERE w.tenant_id = :tenant_id AND w.poi_id = :poi_id
ORDER BY w.campaign_id, w.id
"""
)


@dataclass(frozen=True, slots=True)
class Verdict:
    credited: bool
    reason: wire.CreditReason
    counts: bool
    goal_reason: wire.GoalReason
    followed_at: datetime | None
    explanation: str


def judge(
    kind: wire.EventKind,
    occurred_at: datetime,
    window: timedelta,
    candidate: Any,
) -> Verdict:
    """The two layers for one (event, work item): pure, so the same facts always give the same answer."""
    days = window.days

    def no(reason: wire.CreditReason, followed_at: datetime | None, why: str) -> Verdict:
        return Verdict(False, reason, False, wire.GoalReason.NOT_CREDITED, followed_at, why)

    if not (candidate.starts_at <= occurred_at <= candidate.ends_at):
        return no(wire.CreditReason.OUTSIDE_CAMPAIGN, None, "The event happened outside the campaign's window.")
    since = occurred_at - window
    visit_at, follow_up_at = candidate.visit_at, candidate.follow_up_at
    best: tuple[datetime, wire.CreditReason] | None = None
    if visit_at is not None and visit_at >= since:
        best = (visit_at, wire.CreditReason.VISITED)
    if follow_up_at is not None and follow_up_at >= since and (best is None or follow_up_at > best[0]):
        best = (follow_up_at, wire.CreditReason.FOLLOWED_UP)
    if best is None:
        if candidate.rejected_at is not None:
            return no(
                wire.CreditReason.ONLY_REJECTED_VISITS,
                candidate.rejected_at,
                f"Within {days} days before the event the assignee's only check-ins there were rejected.",
            )
        latest = max((t for t in (visit_at, follow_up_at) if t is not None), default=None)
        if latest is not None:
            return no(
                wire.CreditReason.FOLLOW_UP_TOO_OLD,
                latest,
                f"The assignee's latest visit or follow-up was more than {days} days before the event.",
            )
        return no(wire.CreditReason.NO_FOLLOW_UP, None, "The assignee never visited nor followed up before the event.")
    followed_at, reason = best
    how = "visited the merchant" if reason is wire.CreditReason.VISITED else "logged a follow-up"
    goal_kind = str(candidate.goal.get("kind"))
    if GOAL_EVENT_KIND.get(goal_kind) is kind:
        return Verdict(
            True,
            reason,
            True,
            wire.GoalReason.COUNTS,
            followed_at,
            f"The assignee {how} within {days} days before it; a {kind.value} counts toward a {goal_kind} goal.",
        )
    return Verdict(
        True,
        reason,
        False,
        wire.GoalReason.KIND_MISMATCH,
        followed_at,
        f"The assignee {how} within {days} days before it; a {kind.value} does not count toward a {goal_kind} goal.",
    )


async def attribute_events(session: AsyncSession, tenant_id: UUID, event_ids: Sequence[UUID]) -> int:
    """(Re)compute the attribution of these events whole: delete their rows, write one per work item on their
    merchant (or one `not_targeted`). Returns the rows written."""
    if not event_ids:
        return 0
    window = timedelta(days=await window_days(session, tenant_id))
    events = (
        await session.execute(
            select(BusinessEvent.id, BusinessEvent.poi_id, BusinessEvent.kind, BusinessEvent.occurred_at)
            .where(BusinessEvent.tenant_id == tenant_id, BusinessEvent.id.in_(event_ids))
            .order_by(BusinessEvent.id)
            # Two re-attributions of one merchant at once (two late visits) take turns instead of both writing.
            .with_for_update()
        )
    ).all()
    await session.execute(
        delete(EventAttribution).where(
            EventAttribution.tenant_id == tenant_id, EventAttribution.event_id.in_(event_ids)
        )
    )
    rows: list[dict[str, Any]] = []
    for event in events:
        candidates = (
            await session.execute(
                _CANDIDATES,
                {
                    "tenant_id": tenant_id,
                    "poi_id": event.poi_id,
                    "at": event.occurred_at,
                    "since": event.occurred_at - window,
                },
            )
        ).all()
        base = {"tenant_id": tenant_id, "event_id": event.id, "poi_id": event.poi_id, "window_days": window.days}
        if not candidates:
            rows.append(
                {
                    **base,
                    "campaign_id": None,
                    "work_item_id": None,
                    "assignee_id": None,
                    "credited": False,
                    "reason": wire.CreditReason.NOT_TARGETED.value,
                    "counts_toward_goal": False,
                    "goal_reason": wire.GoalReason.NOT_CREDITED.value,
                    "followed_at": None,
                    "explanation": "No campaign targets this merchant.",
                }
            )
        for candidate in candidates:
            verdict = judge(wire.EventKind(event.kind), event.occurred_at, window, candidate)
            rows.append(
                {
                    **base,
                    "campaign_id": candidate.campaign_id,
                    "work_item_id": candidate.work_item_id,
                    "assignee_id": candidate.assignee_id,
                    "credited": verdict.credited,
                    "reason": verdict.reason.value,
                    "counts_toward_goal": verdict.counts,
                    "goal_reason": verdict.goal_reason.value,
                    "followed_at": verdict.followed_at,
                    "explanation": verdict.explanation,
                }
            )
    if rows:
        await session.execute(insert(EventAttribution), rows)
    await session.execute(
        update(BusinessEvent)
        .where(BusinessEvent.tenant_id == tenant_id, BusinessEvent.id.in_(event_ids))
        .values(attributed_at=text("now()"))
    )
    return len(rows)


async def reattribute_merchant(session: AsyncSession, tenant_id: UUID, poi_id: UUID) -> int:
    ids = list(
        await session.scalars(
            select(BusinessEvent.id).where(BusinessEvent.tenant_id == tenant_id, BusinessEvent.poi_id == poi_id)
        )
    )
    return await attribute_events(session, tenant_id, ids)


async def follow_up_recorded(session: AsyncSession, tenant_id: UUID, poi_id: UUID, at: datetime | None) -> None:
    """A visit or follow-up at a merchant was just written (in the caller's transaction): when events of that
    merchant exist that it could change (occurred at or after it), queue their re-attribution, which runs after
    the caller commits. One statement, and nothing queued for the many merchants without events. `at` None: the
    transaction's time (a work item edit's)."""
    since: Any = func.now() if at is None else at
    await session.execute(
        insert(BackgroundJob).from_select(
            ["tenant_id", "kind", "payload", "max_attempts"],
            select(
                literal(tenant_id),
                literal(REATTRIBUTE),
                literal({"tenant_id": str(tenant_id), "poi_id": str(poi_id)}, BackgroundJob.payload.type),
                literal(12),
            ).where(
                exists().where(
                    BusinessEvent.tenant_id == tenant_id,
                    BusinessEvent.poi_id == poi_id,
                    BusinessEvent.occurred_at >= since,
                )
            ),
        )
    )


async def targets_added(session: AsyncSession, tenant_id: UUID, poi_ids: Sequence[UUID]) -> None:
    """New work items on these merchants: their stored events get rows for the new (campaign, target)."""
    if not poi_ids:
        return
    found = list(
        await session.scalars(
            select(BusinessEvent.poi_id)
            .where(BusinessEvent.tenant_id == tenant_id, BusinessEvent.poi_id.in_(poi_ids))
            .distinct()
        )
    )
    if found:
        await session.execute(
            insert(BackgroundJob),
            [
                {
                    "tenant_id": tenant_id,
                    "kind": REATTRIBUTE,
                    "payload": {"tenant_id": str(tenant_id), "poi_id": str(poi)},
                    "max_attempts": 12,
                }
                for poi in sorted(found)
            ],
        )


# -- reads -------------------------------------------------------------------------------------------------------


def _attribution_wire(row: EventAttribution) -> wire.Attribution:
    return wire.Attribution(
        event_id=row.event_id,
        campaign_id=row.campaign_id,
        work_item_id=row.work_item_id,
        poi_id=row.poi_id,
        assignee_id=row.assignee_id,
        credited=row.credited,
        reason=wire.CreditReason(row.reason),
        counts_toward_goal=row.counts_toward_goal,
        goal_reason=wire.GoalReason(row.goal_reason),
        followed_at=row.followed_at,
        window_days=row.window_days,
        explanation=row.explanation,
    )


async def event_attribution(session: AsyncSession, principal: Principal, event_id: UUID) -> wire.EventAttribution:
    await _check_ops(session, principal)
    event = await session.get(BusinessEvent, (principal.tenant_id, event_id))
    if event is None:
        raise not_found("event")
    rows = await session.scalars(
        select(EventAttribution)
        .where(EventAttribution.tenant_id == principal.tenant_id, EventAttribution.event_id == event_id)
        .order_by(EventAttribution.campaign_id, EventAttribution.work_item_id)
    )
    return wire.EventAttribution(event=_event_wire(event), attributions=[_attribution_wire(row) for row in rows])


async def refused_events(
    session: AsyncSession, principal: Principal, *, after: int | None, limit: int
) -> tuple[list[wire.RefusedEvent], int | None]:
    """The tenant's refused events, newest first: what an integration sent that could not be taken, and why."""
    await _check_ops(session, principal)
    statement = select(RefusedEvent).where(RefusedEvent.tenant_id == principal.tenant_id)
    if after is not None:
        statement = statement.where(RefusedEvent.id < after)
    rows = list(await session.scalars(statement.order_by(RefusedEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        wire.RefusedEvent(
            id=row.id,
            source=row.source,
            external_id=row.external_id,
            code=row.code,
            detail=row.detail,
            body=row.body,
            received_at=row.received_at,
        )
        for row in rows
    ]
    return items, (rows[-1].id if more else None)


async def _campaign(session: AsyncSession, principal: Principal, campaign_id: UUID) -> Any:
    await _check_ops(session, principal)
    campaign = (
        await session.execute(
            select(CAMPAIGNS.c.id, CAMPAIGNS.c.goal).where(
                CAMPAIGNS.c.tenant_id == principal.tenant_id, CAMPAIGNS.c.id == campaign_id
            )
        )
    ).first()
    if campaign is None:
        raise not_found("campaign")
    return campaign


async def campaign_attributions(
    session: AsyncSession,
    principal: Principal,
    campaign_id: UUID,
    *,
    credited: bool | None,
    after: int | None,
    limit: int,
) -> tuple[list[wire.Attribution], int | None]:
    """A campaign's attributions (credits and non-credits), oldest first; paged by row id."""
    await _campaign(session, principal, campaign_id)
    statement = select(EventAttribution).where(
        EventAttribution.tenant_id == principal.tenant_id, EventAttribution.campaign_id == campaign_id
    )
    if credited is not None:
        statement = statement.where(EventAttribution.credited.is_(credited))
    if after is not None:
        statement = statement.where(EventAttribution.id > after)
    rows = list(await session.scalars(statement.order_by(EventAttribution.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return [_attribution_wire(row) for row in rows], (rows[-1].id if more else None)


async def progress(session: AsyncSession, principal: Principal, campaign_id: UUID, by: str) -> wire.EventProgress:
    """A campaign's progress measured from credited events, by target merchant or by assignee."""
    campaign = await _campaign(session, principal, campaign_id)
    goal_kind = str(campaign.goal.get("kind"))
    target = float(campaign.goal.get("target", 1))
    rows = (
        await session.execute(
            select(
                EventAttribution.poi_id,
                EventAttribution.assignee_id,
                EventAttribution.counts_toward_goal,
                BusinessEvent.kind,
                BusinessEvent.amount,
                BusinessEvent.currency,
            )
            .join(
                BusinessEvent,
                (BusinessEvent.tenant_id == EventAttribution.tenant_id)
                & (BusinessEvent.id == EventAttribution.event_id),
            )
            .where(
                EventAttribution.tenant_id == principal.tenant_id,
                BusinessEvent.tenant_id == principal.tenant_id,
                EventAttribution.campaign_id == campaign_id,
                EventAttribution.credited.is_(True),
            )
        )
    ).all()
    # Every target (or assignee) of the campaign has a row, credited or not.
    items = (
        await session.execute(
            select(WORK_ITEMS.c.poi_id, WORK_ITEMS.c.assignee_id, POIS.c.name.label("poi_name"), User.display_name)
            .select_from(WORK_ITEMS)
            .join(POIS, (POIS.c.tenant_id == WORK_ITEMS.c.tenant_id) & (POIS.c.id == WORK_ITEMS.c.poi_id))
            .join(User, User.id == WORK_ITEMS.c.assignee_id)
            .where(
                WORK_ITEMS.c.tenant_id == principal.tenant_id,
                POIS.c.tenant_id == principal.tenant_id,
                WORK_ITEMS.c.campaign_id == campaign_id,
            )
        )
    ).all()
    per_target: dict[UUID, _Tally] = {item.poi_id: _Tally() for item in items}
    for row in rows:
        tally = per_target.setdefault(row.poi_id, _Tally())
        tally.add(row)
    met = {poi: tally.met(goal_kind, target) for poi, tally in per_target.items()}
    if by == "target":
        names = {item.poi_id: item.poi_name for item in items}
        out = [per_target[poi].row(poi, names.get(poi, ""), met[poi]) for poi in per_target]
    else:
        by_assignee: dict[UUID, _Tally] = {}
        names = {}
        assignee_met: dict[UUID, bool] = {}
        for item in items:
            names[item.assignee_id] = item.display_name
            by_assignee.setdefault(item.assignee_id, _Tally())
            assignee_met[item.assignee_id] = assignee_met.get(item.assignee_id, True) and met[item.poi_id]
        for row in rows:
            if row.assignee_id is not None:
                by_assignee.setdefault(row.assignee_id, _Tally()).add(row)
        out = [
            tally.row(user, names.get(user, ""), assignee_met.get(user, False)) for user, tally in by_assignee.items()
        ]
    out.sort(key=lambda r: (r.name, str(r.key)))
    return wire.EventProgress(campaign_id=campaign_id, by=by, goal_kind=goal_kind, goal_target=target, rows=out)


async def goal_measured(
    session: AsyncSession, tenant_id: UUID, work_item_id: UUID, goal: dict[str, Any]
) -> bool | None:
    """Whether the events credited to this work item meet its campaign's goal (sign, recharge amount, order
    count), as the progress reads them. None when the tenant has no event source connected (no active integration
    key): then there is nothing to measure with, and the goal is what the BD recorded."""
    connected = await session.scalar(
        select(exists().where(IntegrationKey.tenant_id == tenant_id, IntegrationKey.revoked_at.is_(None)))
    )
    if not connected:
        return None
    rows = (
        await session.execute(
            select(
                EventAttribution.counts_toward_goal, BusinessEvent.kind, BusinessEvent.amount, BusinessEvent.currency
            )
            .join(
                BusinessEvent,
                (BusinessEvent.tenant_id == EventAttribution.tenant_id)
                & (BusinessEvent.id == EventAttribution.event_id),
            )
            .where(
                EventAttribution.tenant_id == tenant_id,
                BusinessEvent.tenant_id == tenant_id,
                EventAttribution.work_item_id == work_item_id,
                EventAttribution.credited.is_(True),
            )
        )
    ).all()
    tally = _Tally()
    for row in rows:
        tally.add(row)
    return tally.met(str(goal.get("kind")), float(goal.get("target", 1)))


class _Tally:
    def __init__(self) -> None:
        self.credited = 0
        self.counting = 0
        self.signings = 0
        self.orders = 0
        self.amounts: dict[str, Decimal] = {}

    def add(self, row: Any) -> None:
        self.credited += 1
        if not row.counts_toward_goal:
            return
        self.counting += 1
        if row.kind == wire.EventKind.SIGNING.value:
            self.signings += 1
        elif row.kind == wire.EventKind.ORDER.value:
            self.orders += 1
        elif row.amount is not None and row.currency is not None:
            self.amounts[row.currency] = self.amounts.get(row.currency, Decimal(0)) + row.amount

    def met(self, goal_kind: str, target: float) -> bool:
        """Amounts of different currencies are never added up: a recharge goal is met in one currency."""
        if goal_kind == "sign":
            return self.signings >= 1
        if goal_kind == "order_count":
            return self.orders >= target
        return any(amount >= Decimal(str(target)) for amount in self.amounts.values())

    def row(self, key: UUID, name: str, met: bool) -> wire.ProgressRow:
        return wire.ProgressRow(
            key=key,
            name=name,
            credited_events=self.credited,
            counting_events=self.counting,
            signings=self.signings,
            orders=self.orders,
            amounts={currency: self.amounts[currency] for currency in sorted(self.amounts)},
            goal_met=met,
        )
