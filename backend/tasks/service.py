"""Campaign and work-item rules: creating campaigns, targeting merchants, following and closing work items.

Every change here also writes the change feed for the users it concerns (sync.feed), in the same transaction:
a work item entering someone's list, changing, or leaving it (reassigned) reaches their phone on its next pull.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from sqlalchemy import Uuid, bindparam, exists, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User
from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.paging import decode_cursor, encode_cursor
from backend.pois.models import Poi
from backend.push.service import notify_users
from backend.tasks.models import Campaign, WorkItem, WorkItemVisit
from mobile_contract import tasks as wire
from mobile_contract.auth import Role
from mobile_contract.base import AwareDatetime
from mobile_contract.errors import ErrorCode
from sync.feed import Change, record_changes

WORK_ITEMS = "work_items"
POIS = "pois"
OPEN_STATUSES = (wire.WorkItemStatus.ASSIGNED.value, wire.WorkItemStatus.IN_PROGRESS.value)
CAN_MANAGE_CAMPAIGNS = (Role.OPS, Role.ADMIN)
CAN_REASSIGN = (Role.OPS, Role.ADMIN, Role.SUPERVISOR)


# -- campaigns ----------------------------------------------------------------------------------------------


def _campaign_wire(campaign: Campaign) -> wire.Campaign:
    return wire.Campaign(
        id=campaign.id,
        type=wire.CampaignType(campaign.type),
        title=campaign.title,
        instructions=campaign.instructions,
        goal=msgspec.convert(campaign.goal, wire.Goal),
        form=msgspec.convert(campaign.form, wire.FormSchema),
        offer=msgspec.convert(campaign.offer, wire.Offer) if campaign.offer else None,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        time_zone=campaign.time_zone,
        created_at=campaign.created_at,
    )


def _validate_campaign(data: wire.CampaignCreate) -> None:
    if data.ends_at <= data.starts_at:
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "ends_at must be after starts_at.", errors=[])
    try:
        zoneinfo.ZoneInfo(data.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, 422, f"Unknown time zone {data.time_zone!r}; use an IANA name.", errors=[]
        ) from exc
    keys = [f.key for f in data.form.fields]
    if len(keys) != len(set(keys)):
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "Form field keys must be unique.", errors=[])
    for form_field in data.form.fields:
        if (form_field.type == "choice") != (form_field.options is not None):
            raise DomainError(
                ErrorCode.VALIDATION_FAILED, 422, f"Field {form_field.key}: options go with type choice.", errors=[]
            )


async def create_campaign(
    session: AsyncSession, principal: Principal, data: wire.CampaignCreate
) -> tuple[wire.Campaign, bool]:
    if not principal.has_role(*CAN_MANAGE_CAMPAIGNS):
        raise forbidden("Only operations can create campaigns.")
    _validate_campaign(data)
    campaign_id = data.id or uuid4()
    request_hash = hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(data, id=None))).hexdigest()
    existing = await session.get(Campaign, campaign_id)
    if existing is not None:
        if existing.tenant_id == principal.tenant_id and existing.request_hash == request_hash:
            return _campaign_wire(existing), False
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, 409, "This campaign id was already used.")
    campaign = Campaign(
        id=campaign_id,
        tenant_id=principal.tenant_id,
        type=data.type.value,
        title=data.title,
        instructions=data.instructions,
        goal=msgspec.to_builtins(data.goal),
        form=msgspec.to_builtins(data.form),
        offer=msgspec.to_builtins(data.offer) if data.offer else None,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        time_zone=data.time_zone,
        created_by=principal.user_id,
        request_hash=request_hash,
    )
    session.add(campaign)
    await session.flush()
    await session.refresh(campaign)
    return _campaign_wire(campaign), True


async def _campaign_in_tenant(session: AsyncSession, principal: Principal, campaign_id: UUID) -> Campaign:
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.tenant_id == principal.tenant_id)
    )
    if campaign is None:
        raise not_found("campaign")
    return campaign


async def add_targets(
    session: AsyncSession, principal: Principal, campaign_id: UUID, data: wire.TargetsAdd
) -> wire.TargetsAdded:
    """Target merchants, each assigned explicitly or to whoever holds the merchant as a lead.

    Assignment strategies are kept to one place (`_assignee_for`), so rule-based assignment can join them.
    """
    if not principal.has_role(*CAN_MANAGE_CAMPAIGNS):
        raise forbidden("Only operations can target merchants.")
    campaign = await _campaign_in_tenant(session, principal, campaign_id)
    poi_ids = [t.poi_id for t in data.targets]
    pois = {
        row.id: row.holder_id
        for row in await session.execute(
            select(Poi.id, Poi.holder_id).where(Poi.tenant_id == principal.tenant_id, Poi.id.in_(poi_ids))
        )
    }
    wanted_users = {t.assignee_id for t in data.targets if t.assignee_id} | {h for h in pois.values() if h}
    active_users = set(
        await session.scalars(
            select(User.id).where(
                User.tenant_id == principal.tenant_id, User.id.in_(wanted_users), User.is_active.is_(True)
            )
        )
    )
    created: list[UUID] = []
    skipped: list[wire.SkippedTarget] = []
    changes: list[Change] = []
    for target in data.targets:
        if target.poi_id not in pois:
            skipped.append(wire.SkippedTarget(poi_id=target.poi_id, reason="not_found"))
            continue
        assignee = _assignee_for(target, data.assign, pois[target.poi_id])
        if assignee is None:
            skipped.append(wire.SkippedTarget(poi_id=target.poi_id, reason="no_holder"))
            continue
        if assignee not in active_users:
            skipped.append(wire.SkippedTarget(poi_id=target.poi_id, reason="assignee_not_found"))
            continue
        work_item_id = uuid4()
        inserted = await session.scalar(
            insert(WorkItem)
            .values(
                id=work_item_id,
                tenant_id=principal.tenant_id,
                campaign_id=campaign.id,
                poi_id=target.poi_id,
                assignee_id=assignee,
                form_version=campaign.form.get("version", 1),
            )
            .on_conflict_do_nothing(constraint="uq_work_items_campaign_poi")
            .returning(WorkItem.id)
        )
        if inserted is None:
            skipped.append(wire.SkippedTarget(poi_id=target.poi_id, reason="already_targeted"))
            continue
        created.append(work_item_id)
        changes += [Change(assignee, WORK_ITEMS, work_item_id), Change(assignee, POIS, target.poi_id)]
    await record_changes(session, principal.tenant_id, changes)
    # One push per phone, not per work item: it only tells the app to sync.
    await notify_users(
        session, principal.tenant_id, {c.user_id for c in changes}, reason="assigned", collection=WORK_ITEMS
    )
    return wire.TargetsAdded(created=created, skipped=skipped)


def _assignee_for(target: wire.Target, strategy: str, holder: UUID | None) -> UUID | None:
    if strategy == "poi_holder":
        return holder
    return target.assignee_id


# -- reading ------------------------------------------------------------------------------------------------


async def load_wire(session: AsyncSession, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, wire.WorkItem]:
    """Work items in their wire shape, with campaign, merchant and assignee names and linked visits."""
    if not ids:
        return {}
    rows = await session.execute(
        select(WorkItem, Campaign, Poi.name, User.display_name)
        .join(Campaign, Campaign.id == WorkItem.campaign_id)
        .join(Poi, Poi.id == WorkItem.poi_id)
        .join(User, User.id == WorkItem.assignee_id)
        .where(WorkItem.tenant_id == tenant_id, WorkItem.id.in_(ids))
    )
    visits: dict[UUID, list[UUID]] = {}
    for link in await session.execute(
        select(WorkItemVisit.work_item_id, WorkItemVisit.visit_id)
        .where(WorkItemVisit.work_item_id.in_(ids))
        .order_by(WorkItemVisit.linked_at, WorkItemVisit.visit_id)
    ):
        visits.setdefault(link.work_item_id, []).append(link.visit_id)
    campaigns: dict[UUID, wire.Campaign] = {}
    result = {}
    for item, campaign, poi_name, assignee_name in rows:
        if campaign.id not in campaigns:
            campaigns[campaign.id] = _campaign_wire(campaign)
        result[item.id] = wire.WorkItem(
            id=item.id,
            campaign=campaigns[campaign.id],
            poi_id=item.poi_id,
            poi_name=poi_name,
            assignee_id=item.assignee_id,
            assignee_name=assignee_name,
            status=wire.WorkItemStatus(item.status),
            notes=item.notes,
            answers=item.answers,
            form_version=item.form_version,
            outcome=msgspec.convert(item.outcome, wire.Outcome),
            visit_ids=visits.get(item.id, []),
            updated_at=item.updated_at,
        )
    return result


async def get_work_item(session: AsyncSession, principal: Principal, work_item_id: UUID) -> wire.WorkItem:
    visible = await session.scalar(
        select(WorkItem.id).where(
            WorkItem.id == work_item_id,
            WorkItem.tenant_id == principal.tenant_id,
            visible_to(effective_scope(principal), WorkItem.assignee_id),
        ),
        scope_params(principal),
    )
    if visible is None:
        raise not_found("work item")
    return (await load_wire(session, principal.tenant_id, [work_item_id]))[work_item_id]


async def list_work_items(
    session: AsyncSession,
    principal: Principal,
    *,
    campaign_id: UUID | None,
    status: wire.WorkItemStatus | None,
    assignee_id: UUID | None,
    limit: int,
    cursor: str | None,
) -> wire.WorkItemPage:
    """Work items whose assignee is in the caller's data scope, most recently changed first."""
    statement = select(WorkItem.id, WorkItem.updated_at).where(
        WorkItem.tenant_id == principal.tenant_id, visible_to(effective_scope(principal), WorkItem.assignee_id)
    )
    if campaign_id is not None:
        statement = statement.where(WorkItem.campaign_id == campaign_id)
    if status is not None:
        statement = statement.where(WorkItem.status == status.value)
    if assignee_id is not None:
        statement = statement.where(WorkItem.assignee_id == assignee_id)
    if cursor:
        at, after = decode_cursor(cursor, tuple[AwareDatetime, UUID])
        statement = statement.where(tuple_(WorkItem.updated_at, WorkItem.id) < tuple_(at, after))
    statement = statement.order_by(WorkItem.updated_at.desc(), WorkItem.id.desc()).limit(limit + 1)
    rows = (await session.execute(statement, scope_params(principal))).all()
    page = rows[:limit]
    loaded = await load_wire(session, principal.tenant_id, [r.id for r in page])
    next_cursor = encode_cursor(page[-1].updated_at, page[-1].id) if len(rows) > limit else None
    return wire.WorkItemPage(items=[loaded[r.id] for r in page], next_cursor=next_cursor)


async def progress(session: AsyncSession, principal: Principal, campaign_id: UUID, by: str) -> wire.Progress:
    """Counts per status, by target merchant or by assignee, over the work items in the caller's scope."""
    await _campaign_in_tenant(session, principal, campaign_id)
    key, name = (Poi.id, Poi.name) if by == "target" else (User.id, User.display_name)
    counts = [
        func.count().filter(WorkItem.status == status.value).label(status.value) for status in wire.WorkItemStatus
    ]
    rows = await session.execute(
        select(key.label("key"), name.label("name"), func.count().label("total"), *counts)
        .select_from(WorkItem)
        .join(Poi, Poi.id == WorkItem.poi_id)
        .join(User, User.id == WorkItem.assignee_id)
        .where(
            WorkItem.tenant_id == principal.tenant_id,
            WorkItem.campaign_id == campaign_id,
            visible_to(effective_scope(principal), WorkItem.assignee_id),
        )
        .group_by(key, name)
        .order_by(name, key),
        scope_params(principal),
    )
    return wire.Progress(
        campaign_id=campaign_id,
        by="target" if by == "target" else "assignee",
        rows=[
            wire.ProgressRow(
                key=r.key,
                name=r.name,
                total=r.total,
                assigned=r.assigned,
                in_progress=r.in_progress,
                goal_met=r.goal_met,
                visited_not_met=r.visited_not_met,
                expired=r.expired,
            )
            for r in rows
        ],
    )


async def open_on_poi(session: AsyncSession, tenant_id: UUID, poi_ids: Sequence[UUID]) -> dict[UUID, list[Any]]:
    """Open work items on these merchants, whoever holds them: so one BD does not call on a merchant that
    another's task already covers. Rows: (poi_id, work item id, campaign id, title, type, assignee, name, status)."""
    rows = await session.execute(
        select(
            WorkItem.poi_id,
            WorkItem.id,
            Campaign.id.label("campaign_id"),
            Campaign.title,
            Campaign.type,
            WorkItem.assignee_id,
            User.display_name,
            WorkItem.status,
        )
        .join(Campaign, Campaign.id == WorkItem.campaign_id)
        .join(User, User.id == WorkItem.assignee_id)
        .where(WorkItem.tenant_id == tenant_id, WorkItem.poi_id.in_(poi_ids), WorkItem.status.in_(OPEN_STATUSES))
        .order_by(Campaign.ends_at, WorkItem.id)
    )
    result: dict[UUID, list[Any]] = {}
    for row in rows:
        result.setdefault(row.poi_id, []).append(row)
    return result


# -- changing -----------------------------------------------------------------------------------------------


def _stamp(fields: Iterable[str]) -> Any:
    """SQL that records this transaction as the last server change of each field."""
    pairs = ", ".join(f"'{field}', pg_current_xact_id()::text" for field in fields)
    return text(f"work_items.field_xids || jsonb_build_object({pairs})")


def _changed_since(item: WorkItem, field: str, base_xid: int | None) -> bool:
    if base_xid is None:
        return False
    stamped = item.field_xids.get(field)
    return stamped is not None and int(stamped) >= base_xid


def _goal_met(goal: dict[str, Any], outcome: dict[str, Any]) -> bool:
    kind, target = goal["kind"], float(goal.get("target", 1))
    if kind == wire.GoalKind.SIGN:
        return bool(outcome.get("signed"))
    if kind == wire.GoalKind.RECHARGE_AMOUNT:
        return float(outcome.get("recharge_amount") or 0) >= target
    return float(outcome.get("order_count") or 0) >= target


_ANSWER_TYPES: dict[str, tuple[type, ...]] = {"text": (str,), "number": (int, float), "boolean": (bool,)}


def _check_answers(form: dict[str, Any], answers: dict[str, Any], *, complete: bool) -> None:
    fields = {f["key"]: f for f in form.get("fields", [])}
    problems = []
    for key, value in answers.items():
        spec = fields.get(key)
        if spec is None:
            problems.append({"field": f"answers.{key}", "message": "not a question of this form"})
        elif value is None:
            continue
        elif spec["type"] == "choice":
            if value not in (spec.get("options") or []):
                problems.append({"field": f"answers.{key}", "message": "not one of the options"})
        elif (isinstance(value, bool) and spec["type"] == "number") or not isinstance(
            value, _ANSWER_TYPES[spec["type"]]
        ):
            problems.append({"field": f"answers.{key}", "message": f"expected {spec['type']}"})
    if complete:
        problems += [
            {"field": f"answers.{key}", "message": "required to close the work item"}
            for key, spec in fields.items()
            if spec.get("required") and answers.get(key) in (None, "")
        ]
    if problems:
        raise DomainError(ErrorCode.VALIDATION_FAILED, 422, "The answers do not fit the form.", errors=problems)


async def update_work_item(
    session: AsyncSession,
    principal: Principal,
    work_item_id: UUID,
    patch: wire.WorkItemUpdate,
    *,
    base_xid: int | None = None,
) -> wire.WorkItemUpdated:
    """Apply an edit. `base_xid` is the snapshot of the phone's last pull, for edits made offline; online edits
    pass None (the editor saw the current state).

    Conflict rules, per field, when the server changed the field after the phone last pulled:
      status  - the server's value stays (it is the judge: expiry and review are server decisions); a work item
                the server closed as expired never reopens.
      notes   - both are kept: the server's text, then the phone's, on a new line.
      answers, outcome - merged per key; on the same key the phone's value wins: it was collected at the shop.
    The phone learns the outcome on its next pull (the record is bumped for its assignee).
    """
    item = await session.scalar(
        select(WorkItem).where(WorkItem.id == work_item_id, WorkItem.tenant_id == principal.tenant_id).with_for_update()
    )
    if item is None:
        raise not_found("work item")
    if patch.assignee_id is not msgspec.UNSET:
        return await _reassign(session, principal, item, patch.assignee_id)
    if item.assignee_id != principal.user_id:
        raise not_found("work item") if principal.role is Role.BD else forbidden("Only the assignee edits a work item.")
    campaign = await session.get_one(Campaign, item.campaign_id)
    conflicts: list[wire.FieldConflict] = []
    values: dict[str, Any] = {}

    if patch.notes is not msgspec.UNSET and patch.notes != item.notes:
        if _changed_since(item, "notes", base_xid) and patch.notes not in item.notes:
            values["notes"] = f"{item.notes}\n{patch.notes}" if item.notes else patch.notes
            conflicts.append(wire.FieldConflict(field="notes", resolution="merged"))
        else:
            values["notes"] = patch.notes
    for field in ("answers", "outcome"):
        incoming = getattr(patch, field)
        if incoming is msgspec.UNSET:
            continue
        incoming = msgspec.to_builtins(incoming)
        if field == "outcome":
            incoming = {k: v for k, v in incoming.items() if v is not None}
        merged = {**getattr(item, field), **incoming}
        if merged != getattr(item, field):
            values[field] = merged
            if _changed_since(item, field, base_xid):
                conflicts.append(wire.FieldConflict(field=field, resolution="merged"))
    answers = values.get("answers", item.answers)
    outcome = values.get("outcome", item.outcome)
    if patch.status is not msgspec.UNSET and patch.status != item.status:
        if item.status == wire.WorkItemStatus.EXPIRED or _changed_since(item, "status", base_xid):
            conflicts.append(wire.FieldConflict(field="status", resolution="server_kept"))
        else:
            closing = patch.status in ("goal_met", "visited_not_met")
            _check_answers(campaign.form, answers, complete=closing)
            if patch.status == "goal_met" and not _goal_met(campaign.goal, outcome):
                raise DomainError(
                    ErrorCode.GOAL_NOT_MET, 422, "The outcome does not meet the campaign's goal; record it first."
                )
            values["status"] = patch.status
    if "answers" in values and "status" not in values:
        _check_answers(campaign.form, answers, complete=False)

    item_id, assignee_id = item.id, item.assignee_id
    if values:
        await session.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id)
            .values(**values, field_xids=_stamp(values), updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        session.expire(item)
    # Bump even when nothing changed: the phone's view may be behind (a kept server value, a no-op replay).
    await record_changes(session, principal.tenant_id, [Change(assignee_id, WORK_ITEMS, item_id)])
    loaded = await load_wire(session, principal.tenant_id, [item_id])
    return wire.WorkItemUpdated(work_item=loaded[item_id], conflicts=conflicts)


async def _reassign(
    session: AsyncSession, principal: Principal, item: WorkItem, assignee_id: UUID
) -> wire.WorkItemUpdated:
    if not principal.has_role(*CAN_REASSIGN):
        raise forbidden("Your role cannot reassign work items.")
    scope = effective_scope(principal)
    in_scope = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.tenant_id == principal.tenant_id,
            User.id.in_([item.assignee_id, assignee_id]),
            User.is_active.is_(True),
            visible_to(scope, User.id),
        ),
        scope_params(principal),
    )
    if in_scope != len({item.assignee_id, assignee_id}):
        raise not_found("assignee")
    if item.status not in OPEN_STATUSES:
        raise DomainError(ErrorCode.WORK_ITEM_CLOSED, 409, "A closed work item cannot be reassigned.")
    previous, item_id, poi_id, tenant_id = item.assignee_id, item.id, item.poi_id, item.tenant_id
    changes: list[Change] = []
    if previous != assignee_id:
        await session.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id)
            .values(assignee_id=assignee_id, field_xids=_stamp(["assignee_id"]), updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        session.expire(item)
        changes += [Change(previous, WORK_ITEMS, item_id, "remove")]
        if not await poi_in_scope(session, tenant_id, previous, poi_id):
            changes.append(Change(previous, POIS, poi_id, "remove"))
        changes += [Change(assignee_id, WORK_ITEMS, item_id), Change(assignee_id, POIS, poi_id)]
        await notify_users(session, tenant_id, [previous], reason="removed", collection=WORK_ITEMS, record_id=item_id)
        await notify_users(
            session, tenant_id, [assignee_id], reason="assigned", collection=WORK_ITEMS, record_id=item_id
        )
    await record_changes(session, tenant_id, changes)
    loaded = await load_wire(session, principal.tenant_id, [item_id])
    return wire.WorkItemUpdated(work_item=loaded[item_id], conflicts=[])


async def poi_in_scope(session: AsyncSession, tenant_id: UUID, user_id: UUID, poi_id: UUID) -> bool:
    """Does the user still have a reason to keep this merchant on their phone?"""
    held = select(Poi.id).where(Poi.id == poi_id, Poi.tenant_id == tenant_id, Poi.holder_id == user_id)
    targeted = select(WorkItem.id).where(
        WorkItem.poi_id == poi_id, WorkItem.tenant_id == tenant_id, WorkItem.assignee_id == user_id
    )
    return bool(await session.scalar(select(or_(exists(held), exists(targeted)))))


async def link_visit(session: AsyncSession, tenant_id: UUID, user_id: UUID, poi_id: UUID, visit_id: UUID) -> None:
    """A check-in at a merchant counts for the user's open work items there: linked, and the first check-in
    moves an assigned item to in progress."""
    # One round trip (it runs once per check-in, hundreds of times in one offline push): see _link_visit().
    await (await session.connection()).execute(
        _LINK_VISIT, {"tenant_id": tenant_id, "user_id": user_id, "poi_id": poi_id, "visit_id": visit_id}
    )


def _link_visit() -> Any:
    """link_visit as one statement: the open items, their links, the move to in progress and their feed rows are
    data-modifying CTEs over one snapshot, which is what the four statements it replaces saw too. Text, because
    SQLAlchemy 2.0 loses the bound values of an UPDATE ... VALUES nested in a CTE."""
    open_statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    assigned, in_progress = wire.WorkItemStatus.ASSIGNED.value, wire.WorkItemStatus.IN_PROGRESS.value
    return text(
        f"""
        WITH items AS (
            SELECT work_items.id, work_items.status FROM work_items
            JOIN campaigns ON campaigns.id = work_items.campaign_id
            WHERE work_items.tenant_id = :tenant_id AND work_items.assignee_id = :user_id
              AND work_items.poi_id = :poi_id AND work_items.status IN ({open_statuses})
        ), linked AS (
            INSERT INTO work_item_visits (work_item_id, visit_id, tenant_id)
            SELECT items.id, CAST(:visit_id AS uuid), CAST(:tenant_id AS uuid) FROM items
            ON CONFLICT DO NOTHING
        ), moved AS (
            UPDATE work_items SET status = '{in_progress}', updated_at = now(),
                field_xids = {_stamp(["status"]).text}
            WHERE work_items.id IN (SELECT items.id FROM items WHERE items.status = '{assigned}')
              AND work_items.status = '{assigned}'
        ), feed AS (
            INSERT INTO sync_changes (user_id, collection, record_id, tenant_id, op)
            SELECT CAST(:user_id AS uuid), '{WORK_ITEMS}', items.id, CAST(:tenant_id AS uuid), 'upsert' FROM items
            ON CONFLICT (user_id, collection, record_id)
            DO UPDATE SET op = excluded.op, xid = pg_current_xact_id(), changed_at = now()
        )
        SELECT items.id FROM items
        """  # noqa: S608 - built once from this module's constants, no input
    ).bindparams(
        bindparam("tenant_id", type_=Uuid),
        bindparam("user_id", type_=Uuid),
        bindparam("poi_id", type_=Uuid),
        bindparam("visit_id", type_=Uuid),
    )


_LINK_VISIT = _link_visit()


async def expire_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Close, as expired, the open work items of campaigns whose window has ended. Safe to run anywhere, often."""
    moment = now or datetime.now(UTC)
    expired = (
        await session.execute(
            update(WorkItem)
            .where(
                WorkItem.status.in_(OPEN_STATUSES),
                WorkItem.campaign_id.in_(select(Campaign.id).where(Campaign.ends_at <= moment)),
            )
            .values(status=wire.WorkItemStatus.EXPIRED.value, field_xids=_stamp(["status"]), updated_at=func.now())
            .returning(WorkItem.id, WorkItem.tenant_id, WorkItem.assignee_id)
        )
    ).all()
    by_tenant: dict[UUID, list[Change]] = {}
    for row in expired:
        by_tenant.setdefault(row.tenant_id, []).append(Change(row.assignee_id, WORK_ITEMS, row.id))
    for tenant_id, changes in by_tenant.items():
        await record_changes(session, tenant_id, changes)
        await notify_users(session, tenant_id, {c.user_id for c in changes}, reason="changed", collection=WORK_ITEMS)
    return len(expired)


async def fetch_for_sync(
    session: AsyncSession, tenant_id: UUID, user_id: UUID, ids: list[UUID]
) -> dict[UUID, wire.WorkItem]:
    """The sync collection: the user's own work items (a reassigned one is gone, so it reaches them as removed)."""
    mine = list(
        await session.scalars(
            select(WorkItem.id).where(
                WorkItem.tenant_id == tenant_id, WorkItem.assignee_id == user_id, WorkItem.id.in_(ids)
            )
        )
    )
    return await load_wire(session, tenant_id, mine)
