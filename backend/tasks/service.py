"""Campaign and work-item rules: creating campaigns, targeting merchants, following and closing work items.

Every change here also writes the change feed for the users it concerns (sync.feed), in the same transaction:
a work item entering someone's list, changing, or leaving it (reassigned) reaches their phone on its next pull.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from typing import cast as typing_cast
from uuid import UUID, uuid4

import merge3
import msgspec
from sqlalchemy import (
    String,
    Table,
    Uuid,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment.rules import assign_targets
from backend.auth.models import User
from backend.auth.permissions import require
from backend.auth.scopes import effective_scope, scope_params, users_in_scope, visible_to
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.events import service as events_service
from backend.leads.service import MERCHANTS, POIS, bump_merchants, holders_of, poi_in_scope
from backend.paging import decode_cursor, encode_cursor
from backend.push.service import notify_users
from backend.tasks.models import Campaign, WorkItem, WorkItemEdit, WorkItemVisit
from mobile_contract import tasks as wire
from mobile_contract.admin import Feature
from mobile_contract.auth import Role
from mobile_contract.base import AwareDatetime
from mobile_contract.conflicts import Origin, Resolution
from mobile_contract.errors import ErrorCode
from sync.feed import Change, record_changes
from sync.tables import sync_changes

WORK_ITEMS = "work_items"
OPEN_STATUSES = (wire.WorkItemStatus.ASSIGNED.value, wire.WorkItemStatus.IN_PROGRESS.value)
# Who may create campaigns and reassign work items: tenant configuration (auth/permissions.py).


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
        raise DomainError(ErrorCode.VALIDATION_FAILED, "ends_at must be after starts_at.", errors=[])
    try:
        zoneinfo.ZoneInfo(data.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"Unknown time zone {data.time_zone!r}; use an IANA name.", errors=[]
        ) from exc
    keys = [f.key for f in data.form.fields]
    if len(keys) != len(set(keys)):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Form field keys must be unique.", errors=[])
    for form_field in data.form.fields:
        if (form_field.type == "choice") != (form_field.options is not None):
            raise DomainError(
                ErrorCode.VALIDATION_FAILED, f"Field {form_field.key}: options go with type choice.", errors=[]
            )


async def create_campaign(
    session: AsyncSession, principal: Principal, data: wire.CampaignCreate
) -> tuple[wire.Campaign, bool]:
    await require(session, principal, Feature.MANAGE_CAMPAIGNS, "Your role cannot create campaigns.")
    _validate_campaign(data)
    campaign_id = data.id or uuid4()
    request_hash = hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(data, id=None))).hexdigest()
    existing = await session.get(Campaign, (principal.tenant_id, campaign_id))
    if existing is not None:
        if existing.request_hash == request_hash:
            return _campaign_wire(existing), False
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, "This campaign id was already used.")
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


async def get_campaign(session: AsyncSession, principal: Principal, campaign_id: UUID) -> wire.Campaign:
    """Any user of the tenant reads a campaign: its title, form and goal are what a phone shows beside a work item."""
    return _campaign_wire(await _campaign_in_tenant(session, principal, campaign_id))


async def list_campaigns(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> wire.CampaignPage:
    """The tenant's campaigns, newest first (keyset-paged on created_at, id)."""
    statement = select(Campaign).where(Campaign.tenant_id == principal.tenant_id)
    if cursor:
        at, after = decode_cursor(cursor, tuple[AwareDatetime, UUID])
        statement = statement.where(tuple_(Campaign.created_at, Campaign.id) < tuple_(at, after))
    rows = list(
        await session.scalars(statement.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit + 1))
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return wire.CampaignPage(items=[_campaign_wire(c) for c in page], next_cursor=next_cursor)


async def add_targets(
    session: AsyncSession,
    principal: Principal,
    campaign_id: UUID,
    data: wire.TargetsAdd,
    now: datetime | None = None,
) -> wire.TargetsAdded:
    """Target merchants, each assigned explicitly, to whoever holds the merchant as a lead, or as the tenant's
    assignment rules choose (backend/assignment/rules.py; each choice stored with its explanation).

    Assignment strategies are kept to one place (`_assignee_for`), so rule-based assignment can join them.
    """
    await require(session, principal, Feature.MANAGE_CAMPAIGNS, "Your role cannot target merchants.")
    campaign = await _campaign_in_tenant(session, principal, campaign_id)
    poi_ids = [t.poi_id for t in data.targets]
    pois = await holders_of(session, principal.tenant_id, poi_ids)
    by_rule: dict[UUID, UUID | None] = {}
    if data.assign == "rule":
        outcomes = await assign_targets(
            session, principal.tenant_id, [p for p in poi_ids if p in pois], now or datetime.now(UTC)
        )
        by_rule = {poi_id: outcome.chosen for poi_id, outcome in outcomes.items()}
    wanted_users = (
        {t.assignee_id for t in data.targets if t.assignee_id}
        | {h for h in pois.values() if h}
        | {u for u in by_rule.values() if u}
    )
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
        assignee = _assignee_for(target, data.assign, pois[target.poi_id], by_rule.get(target.poi_id))
        if assignee is None:
            reason = "no_rule_choice" if data.assign == "rule" else "no_holder"
            skipped.append(wire.SkippedTarget(poi_id=target.poi_id, reason=reason))
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
    await bump_merchants(session, principal.tenant_id, [c.record_id for c in changes if c.collection == POIS])
    # The new targets' stored business events get their (campaign, target, assignee) rows, after the commit.
    await events_service.targets_added(
        session, principal.tenant_id, [c.record_id for c in changes if c.collection == POIS]
    )
    # One push per phone, not per work item: it only tells the app to sync.
    await notify_users(
        session, principal.tenant_id, {c.user_id for c in changes}, reason="assigned", collection=WORK_ITEMS
    )
    return wire.TargetsAdded(created=created, skipped=skipped)


def _assignee_for(target: wire.Target, strategy: str, holder: UUID | None, by_rule: UUID | None) -> UUID | None:
    if strategy == "poi_holder":
        return holder
    if strategy == "rule":
        return by_rule
    return target.assignee_id


# -- reading ------------------------------------------------------------------------------------------------


async def load_wire(session: AsyncSession, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, wire.WorkItem]:
    """Work items in their wire shape, with campaign, merchant and assignee names and linked visits."""
    if not ids:
        return {}
    rows = await session.execute(
        select(WorkItem, Campaign, MERCHANTS.c.name, User.display_name)
        .join(Campaign, (Campaign.tenant_id == WorkItem.tenant_id) & (Campaign.id == WorkItem.campaign_id))
        .join(MERCHANTS, (MERCHANTS.c.tenant_id == WorkItem.tenant_id) & (MERCHANTS.c.id == WorkItem.poi_id))
        .join(User, User.id == WorkItem.assignee_id)
        .where(WorkItem.tenant_id == tenant_id, WorkItem.id.in_(ids))
    )
    visits: dict[UUID, list[UUID]] = {}
    for link in await session.execute(
        select(WorkItemVisit.work_item_id, WorkItemVisit.visit_id)
        .where(WorkItemVisit.tenant_id == tenant_id, WorkItemVisit.work_item_id.in_(ids))
        .order_by(WorkItemVisit.linked_at, WorkItemVisit.visit_id)
    ):
        visits.setdefault(link.work_item_id, []).append(link.visit_id)
    late = await _late_edits(session, tenant_id, ids)
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
            late_edits=late.get(item.id, []),
        )
    return result


async def _late_edits(session: AsyncSession, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, list[wire.LateEdit]]:
    rows = await session.execute(
        select(WorkItemEdit, User.display_name)
        .outerjoin(User, User.id == WorkItemEdit.user_id)
        .where(
            WorkItemEdit.tenant_id == tenant_id,
            WorkItemEdit.work_item_id.in_(ids),
            WorkItemEdit.resolution.in_([Resolution.LATE_KEPT.value, Resolution.LATE_APPLIED.value]),
        )
        .order_by(WorkItemEdit.id)
    )
    result: dict[UUID, list[wire.LateEdit]] = {}
    for edit, name in rows:
        result.setdefault(edit.work_item_id, []).append(
            wire.LateEdit(
                user_id=edit.user_id,
                user_name=name,
                at=edit.at,
                field=edit.field,
                value=edit.value,
                resolution=Resolution(edit.resolution),
            )
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
    key, name = (MERCHANTS.c.id, MERCHANTS.c.name) if by == "target" else (User.id, User.display_name)
    counts = [
        func.count().filter(WorkItem.status == status.value).label(status.value) for status in wire.WorkItemStatus
    ]
    rows = await session.execute(
        select(key.label("key"), name.label("name"), func.count().label("total"), *counts)
        .select_from(WorkItem)
        .join(MERCHANTS, (MERCHANTS.c.tenant_id == WorkItem.tenant_id) & (MERCHANTS.c.id == WorkItem.poi_id))
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
        .join(Campaign, (Campaign.tenant_id == WorkItem.tenant_id) & (Campaign.id == WorkItem.campaign_id))
        .join(User, User.id == WorkItem.assignee_id)
        .where(WorkItem.tenant_id == tenant_id, WorkItem.poi_id.in_(poi_ids), WorkItem.status.in_(OPEN_STATUSES))
        .order_by(Campaign.ends_at, WorkItem.id)
    )
    result: dict[UUID, list[Any]] = {}
    for row in rows:
        result.setdefault(row.poi_id, []).append(row)
    return result


# -- changing -----------------------------------------------------------------------------------------------

SERVER = "server"  # the writer of changes nobody's phone asked for: expiry, scheduled work


def writer_of(principal: Principal) -> str:
    """Who a change comes from, for the conflict rules: one phone (or browser) of one user. Two phones of the
    same user are two writers; the online requests and the queued pushes of one phone are one."""
    return f"{principal.user_id}/{principal.device_id or '-'}"


@dataclass(frozen=True, slots=True)
class _Edit:
    """One field's outcome inside an update: the history row to write, and what the phone is told."""

    field: str
    value: Any  # what was sent
    result: Any  # the field afterwards
    resolution: Resolution
    code: str | None = None  # why a refused value was refused (an ErrorCode)


def _stamp(fields: Iterable[str], writer: str) -> dict[str, Any]:
    """SQL that records this transaction and `writer` as the last change of each field."""
    names = list(fields)
    xids = ", ".join(f"'{field}', pg_current_xact_id()::text" for field in names)
    writers = ", ".join(f"'{field}', CAST(:stamp_writer AS text)" for field in names)
    return {
        "field_xids": text(f"work_items.field_xids || jsonb_build_object({xids})"),
        "field_writers": text(f"work_items.field_writers || jsonb_build_object({writers})").bindparams(
            stamp_writer=writer
        ),
    }


def _conflicts(item: WorkItem, field: str, base_xid: int | None, writer: str) -> bool:
    """Did someone other than `writer` change the field on the server since the phone's base?"""
    if base_xid is None:
        return False  # online: the editor saw the current state
    stamped = item.field_xids.get(field)
    if stamped is None or int(stamped) < base_xid:
        return False
    return bool(item.field_writers.get(field) != writer)


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
        raise DomainError(ErrorCode.VALIDATION_FAILED, "The answers do not fit the form.", errors=problems)


def merge_notes(base: str | None, server: str, phone: str) -> str:
    """Both texts kept: a three-way merge by lines against the text the phone had seen (`base`), so lines each
    side added survive once, the server's first where both wrote at the same place. Without a base, the server's
    text then the phone's, unless one already contains the other."""
    if phone == server or _contains_lines(server, phone):
        return server
    if base is None:
        if _contains_lines(phone, server):
            return phone
        return f"{server}\n{phone}" if server else phone
    merged: list[str] = []
    groups = merge3.Merge3(_lines(base), _lines(server), _lines(phone))
    for group in groups.merge_groups():
        if group[0] == "conflict":
            ours, theirs = group[2], group[3]
            merged += ours
            merged += [line for line in theirs if line not in ours]
        else:
            merged += group[1]
    result = "".join(merged)
    if not (server.endswith("\n") or phone.endswith("\n")):
        result = result.removesuffix("\n")
    return result


def _contains_lines(big: str, small: str) -> bool:
    """Is `small` a run of whole lines of `big`?"""
    lines, part = big.splitlines(), small.splitlines()
    if not part:
        return True
    return any(lines[i : i + len(part)] == part for i in range(len(lines) - len(part) + 1))


def _lines(text_: str) -> list[str]:
    # Every line with its newline, the last one too: "a" and "a\n" are the same line to a person.
    return [line + "\n" for line in text_.splitlines()]


async def _history_for_replay(
    session: AsyncSession, tenant_id: UUID, item_id: UUID, writer: str
) -> dict[str, tuple[Any, int]]:
    """What this writer last sent for each field of the item, and in which transaction."""
    rows = await session.execute(
        select(WorkItemEdit.field, WorkItemEdit.value, WorkItemEdit.xid)
        .where(WorkItemEdit.tenant_id == tenant_id, WorkItemEdit.work_item_id == item_id, WorkItemEdit.writer == writer)
        .order_by(WorkItemEdit.id.desc())
    )
    latest: dict[str, tuple[Any, int]] = {}
    for row in rows:
        latest.setdefault(row.field, (row.value, row.xid))
    return latest


def _is_replay(last_sent: dict[str, tuple[Any, int]], field: str, value: Any, base_xid: int | None) -> bool:
    """A value equal to what this phone last sent for the field, sent again before the phone pulled past that
    push: the same edit retried (an answer lost on the way), not a new one. A value set back to an earlier one
    after a sync is a new edit."""
    if base_xid is None or field not in last_sent:
        return False
    sent, xid = last_sent[field]
    return bool(sent == value and xid >= base_xid)


async def _notes_as_of(session: AsyncSession, tenant_id: UUID, item_id: UUID, base_xid: int) -> str | None:
    """The notes the phone had seen: their value before the phone's base, from the history (None: unknown)."""
    rows = (
        await session.execute(
            select(WorkItemEdit.result, WorkItemEdit.xid)
            .where(
                WorkItemEdit.tenant_id == tenant_id,
                WorkItemEdit.work_item_id == item_id,
                WorkItemEdit.field == "notes",
            )
            .order_by(WorkItemEdit.id.desc())
        )
    ).all()
    for result, xid in rows:
        if xid < base_xid:
            return str(result) if result is not None else ""
    return "" if rows else None


async def _record_history(
    session: AsyncSession,
    tenant_id: UUID,
    item_id: UUID,
    edits: Sequence[_Edit],
    *,
    writer: str,
    user_id: UUID | None,
    origin: Origin,
) -> None:
    if not edits:
        return
    await session.execute(
        insert(WorkItemEdit).values(xid=text("pg_current_xact_id()::text::bigint")),
        [
            {
                "tenant_id": tenant_id,
                "work_item_id": item_id,
                "field": e.field,
                "value": e.value,
                "result": e.result,
                "writer": writer,
                "user_id": user_id,
                "origin": origin.value,
                "resolution": e.resolution.value,
            }
            for e in edits
        ],
    )


async def update_work_item(
    session: AsyncSession,
    principal: Principal,
    work_item_id: UUID,
    patch: wire.WorkItemUpdate,
    *,
    base_xid: int | None = None,
) -> wire.WorkItemUpdated:
    """Apply an edit. `base_xid` is the snapshot of the phone's last pull, for edits made offline; online edits
    pass None (the editor saw the current state). The conflict rules are mobile_contract/conflicts.py's; every
    value sent is kept in the history, whatever became of it."""
    item = await session.scalar(
        select(WorkItem).where(WorkItem.id == work_item_id, WorkItem.tenant_id == principal.tenant_id).with_for_update()
    )
    if item is None:
        raise not_found("work item")
    if patch.assignee_id is not msgspec.UNSET:
        return await _reassign(session, principal, item, patch.assignee_id)
    writer = writer_of(principal)
    origin = Origin.ONLINE if base_xid is None else Origin.SYNC
    if item.assignee_id != principal.user_id:
        if await _was_assignee(session, item.tenant_id, item.id, principal.user_id):
            return await _late_edit(session, principal, item, patch, writer=writer, origin=origin, base_xid=base_xid)
        raise not_found("work item") if principal.role is Role.BD else forbidden("Only the assignee edits a work item.")
    campaign = await session.get_one(Campaign, (item.tenant_id, item.campaign_id))
    last_sent = await _history_for_replay(session, item.tenant_id, item.id, writer) if base_xid is not None else {}
    edits: list[_Edit] = []
    values: dict[str, Any] = {}

    if patch.notes is not msgspec.UNSET and patch.notes != item.notes:
        if _is_replay(last_sent, "notes", patch.notes, base_xid):
            pass
        elif _conflicts(item, "notes", base_xid, writer):
            assert base_xid is not None
            notes = merge_notes(await _notes_as_of(session, item.tenant_id, item.id, base_xid), item.notes, patch.notes)
            values["notes"] = notes
            edits.append(_Edit("notes", patch.notes, notes, Resolution.MERGED))
        else:
            values["notes"] = patch.notes
            edits.append(_Edit("notes", patch.notes, patch.notes, Resolution.APPLIED))
    for field in ("answers", "outcome"):
        incoming = getattr(patch, field)
        if incoming is msgspec.UNSET:
            continue
        incoming = msgspec.to_builtins(incoming)
        if field == "outcome":
            incoming = {k: v for k, v in incoming.items() if v is not None}
        current = getattr(item, field)
        merged = {**current, **incoming}
        if merged == current or _is_replay(last_sent, field, incoming, base_xid):
            continue
        values[field] = merged
        conflicted = _conflicts(item, field, base_xid, writer)
        edits.append(_Edit(field, incoming, merged, Resolution.MERGED if conflicted else Resolution.APPLIED))
    answers = values.get("answers", item.answers)
    outcome = values.get("outcome", item.outcome)
    if (
        patch.status is not msgspec.UNSET
        and patch.status != item.status
        and not _is_replay(last_sent, "status", patch.status, base_xid)
    ):
        if item.status == wire.WorkItemStatus.EXPIRED or _conflicts(item, "status", base_xid, writer):
            edits.append(_Edit("status", patch.status, item.status, Resolution.SERVER_KEPT))
        else:
            try:
                closing = patch.status in ("goal_met", "visited_not_met")
                _check_answers(campaign.form, answers, complete=closing)
                if patch.status == "goal_met":
                    # Measured from business events where an order or contract system reports them; the BD's
                    # recorded outcome only where none is connected.
                    measured = await events_service.goal_measured(session, item.tenant_id, item.id, campaign.goal)
                    if measured is False:
                        raise DomainError(
                            ErrorCode.GOAL_NOT_MET,
                            "No credited business event meets the campaign's goal yet (the order or contract system"
                            " reports them); set the status once it has.",
                        )
                    if measured is None and not _goal_met(campaign.goal, outcome):
                        raise DomainError(
                            ErrorCode.GOAL_NOT_MET, "The outcome does not meet the campaign's goal; record it first."
                        )
            except DomainError as refused:
                if origin is Origin.ONLINE:
                    raise  # the person is there to read the problem and fix the edit
                # Queued offline: the notes and answers typed with a status the rules refuse are not lost with
                # it. The rest is applied; the status stays, kept in the history and told to the phone.
                edits.append(_Edit("status", patch.status, item.status, Resolution.REFUSED, refused.code.value))
            else:
                values["status"] = patch.status
                edits.append(_Edit("status", patch.status, patch.status, Resolution.APPLIED))
    if "answers" in values and "status" not in values:
        _check_answers(campaign.form, answers, complete=False)

    item_id, assignee_id, poi_id = item.id, item.assignee_id, item.poi_id
    await _apply(session, item, values, writer)
    if "status" in values:
        await bump_merchants(session, principal.tenant_id, [poi_id])  # its open work items changed
    await _record_history(
        session, principal.tenant_id, item_id, edits, writer=writer, user_id=principal.user_id, origin=origin
    )
    if edits:  # a logged follow-up: the merchant's later business events may now be credited to it
        await events_service.follow_up_recorded(session, principal.tenant_id, poi_id, None)
    # Bump even when nothing changed: the phone's view may be behind (a kept server value, a no-op replay).
    await record_changes(session, principal.tenant_id, [Change(assignee_id, WORK_ITEMS, item_id)])
    loaded = await load_wire(session, principal.tenant_id, [item_id])
    conflicts = [
        wire.FieldConflict(field=e.field, resolution=e.resolution, code=e.code)
        for e in edits
        if e.resolution != "applied"
    ]
    return wire.WorkItemUpdated(work_item=loaded[item_id], conflicts=conflicts)


async def _apply(session: AsyncSession, item: WorkItem, values: dict[str, Any], writer: str) -> None:
    if not values:
        return
    await session.execute(
        update(WorkItem)
        .where(WorkItem.tenant_id == item.tenant_id, WorkItem.id == item.id)
        .values(**values, **_stamp(values, writer), updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    session.expire(item)


async def _was_assignee(session: AsyncSession, tenant_id: UUID, item_id: UUID, user_id: UUID) -> bool:
    """Was the item reassigned away from this user? (The history keeps every reassignment.)"""
    found = await session.scalar(
        select(WorkItemEdit.id)
        .where(
            WorkItemEdit.tenant_id == tenant_id,
            WorkItemEdit.work_item_id == item_id,
            WorkItemEdit.field == "assignee_id",
            WorkItemEdit.value["from"].astext == str(user_id),
        )
        .limit(1)
    )
    return found is not None


async def _late_edit(
    session: AsyncSession,
    principal: Principal,
    item: WorkItem,
    patch: wire.WorkItemUpdate,
    *,
    writer: str,
    origin: Origin,
    base_xid: int | None,
) -> wire.WorkItemUpdated:
    """An edit from a former assignee, made before the work item left their phone: nothing of it is dropped.
    Notes are merged in and answers/outcome keys nobody has filled since are applied (`late_applied`); whatever
    would overwrite the new assignee's work (a status, a different answer) is kept for a person to look at
    (`late_kept`, shown as the item's `late_edits`). Their phone gets the removal again on its next pull."""
    edits: list[_Edit] = []
    values: dict[str, Any] = {}
    if patch.notes is not msgspec.UNSET and patch.notes and patch.notes not in item.notes:
        # Against the text the phone had seen, so the lines both sides had are not doubled.
        seen = await _notes_as_of(session, item.tenant_id, item.id, base_xid) if base_xid is not None else None
        merged = merge_notes(seen, item.notes, patch.notes)
        values["notes"] = merged
        edits.append(_Edit("notes", patch.notes, merged, Resolution.LATE_APPLIED))
    for field in ("answers", "outcome"):
        incoming = getattr(patch, field)
        if incoming is msgspec.UNSET:
            continue
        incoming = {k: v for k, v in msgspec.to_builtins(incoming).items() if v is not None}
        current = getattr(item, field)
        fills = {k: v for k, v in incoming.items() if current.get(k) is None}
        clashes = {k: v for k, v in incoming.items() if current.get(k) is not None and current[k] != v}
        if fills:
            values[field] = {**current, **fills}
            edits.append(_Edit(field, fills, values[field], Resolution.LATE_APPLIED))
        if clashes:
            edits.append(_Edit(field, clashes, current, Resolution.LATE_KEPT))
    if patch.status is not msgspec.UNSET and patch.status != item.status:
        edits.append(_Edit("status", patch.status, item.status, Resolution.LATE_KEPT))
    if "answers" in values:
        campaign = await session.get_one(Campaign, (item.tenant_id, item.campaign_id))
        _check_answers(campaign.form, values["answers"], complete=False)
    item_id, assignee_id, tenant_id = item.id, item.assignee_id, item.tenant_id
    await _apply(session, item, values, writer)
    await _record_history(session, tenant_id, item_id, edits, writer=writer, user_id=principal.user_id, origin=origin)
    await record_changes(
        session,
        tenant_id,
        [Change(principal.user_id, WORK_ITEMS, item_id, "remove"), Change(assignee_id, WORK_ITEMS, item_id)],
    )
    if edits:
        await notify_users(
            session, tenant_id, [assignee_id], reason="changed", collection=WORK_ITEMS, record_id=item_id
        )
    loaded = await load_wire(session, tenant_id, [item_id])
    return wire.WorkItemUpdated(
        work_item=loaded[item_id],
        conflicts=[wire.FieldConflict(field=e.field, resolution=e.resolution) for e in edits],
    )


async def _reassign(
    session: AsyncSession, principal: Principal, item: WorkItem, assignee_id: UUID
) -> wire.WorkItemUpdated:
    await require(session, principal, Feature.REASSIGN_WORK_ITEMS, "Your role cannot reassign work items.")
    both = {item.assignee_id, assignee_id}
    if await users_in_scope(session, principal, both, active_only=True) != both:
        raise not_found("assignee")
    if item.status not in OPEN_STATUSES:
        raise DomainError(ErrorCode.WORK_ITEM_CLOSED, "A closed work item cannot be reassigned.")
    previous, item_id, poi_id, tenant_id = item.assignee_id, item.id, item.poi_id, item.tenant_id
    changes: list[Change] = []
    if previous != assignee_id:
        writer = writer_of(principal)
        await _apply(session, item, {"assignee_id": assignee_id}, writer)
        move = {"from": str(previous), "to": str(assignee_id)}
        await _record_history(
            session,
            tenant_id,
            item_id,
            [_Edit("assignee_id", move, str(assignee_id), Resolution.APPLIED)],
            writer=writer,
            user_id=principal.user_id,
            origin=Origin.ONLINE,
        )
        changes += [Change(previous, WORK_ITEMS, item_id, "remove")]
        if not await poi_in_scope(session, tenant_id, previous, poi_id):
            changes.append(Change(previous, POIS, poi_id, "remove"))
        changes += [Change(assignee_id, WORK_ITEMS, item_id), Change(assignee_id, POIS, poi_id)]
        await bump_merchants(session, tenant_id, [poi_id])
        await events_service.targets_added(session, tenant_id, [poi_id])  # credits follow the new assignee
        await notify_users(session, tenant_id, [previous], reason="removed", collection=WORK_ITEMS, record_id=item_id)
        await notify_users(
            session, tenant_id, [assignee_id], reason="assigned", collection=WORK_ITEMS, record_id=item_id
        )
    await record_changes(session, tenant_id, changes)
    loaded = await load_wire(session, principal.tenant_id, [item_id])
    return wire.WorkItemUpdated(work_item=loaded[item_id], conflicts=[])


async def link_visit(
    session: AsyncSession,
    tenant_id: UUID,
    user_id: UUID,
    poi_id: UUID,
    visit_id: UUID,
    *,
    writer: str | None = None,
) -> None:
    """A check-in at a merchant counts for the user's open work items there: linked, and the first check-in
    moves an assigned item to in progress. That move is the server's reaction to the phone's check-in, so it is
    stamped with the phone as its writer: it never conflicts with that phone's later edits."""
    # One round trip (it runs once per check-in, hundreds of times in one offline push): see _link_visit().
    await (await session.connection()).execute(
        _LINK_VISIT,
        {
            "tenant_id": tenant_id,
            "user_id": user_id,
            "poi_id": poi_id,
            "visit_id": visit_id,
            "writer": writer or SERVER,
        },
    )


def _link_visit() -> Any:
    """link_visit as one statement: the open items, their links, the move to in progress (stamped with its
    writer, and kept in the history) and their feed rows are data-modifying CTEs over one snapshot, which is what
    the statements it replaces saw too. Text, because SQLAlchemy 2.0 loses the bound values of an
    UPDATE ... VALUES nested in a CTE."""
    open_statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    assigned, in_progress = wire.WorkItemStatus.ASSIGNED.value, wire.WorkItemStatus.IN_PROGRESS.value
    return text(
        f"""
        WITH items AS (
            SELECT work_items.id, work_items.status FROM work_items
            JOIN campaigns ON campaigns.tenant_id = work_items.tenant_id AND campaigns.id = work_items.campaign_id
            WHERE work_items.tenant_id = :tenant_id AND work_items.assignee_id = :user_id
              AND work_items.poi_id = :poi_id AND work_items.status IN ({open_statuses})
        ), linked AS (
            INSERT INTO work_item_visits (work_item_id, visit_id, tenant_id)
            SELECT items.id, CAST(:visit_id AS uuid), CAST(:tenant_id AS uuid) FROM items
            ON CONFLICT DO NOTHING
        ), moved AS (
            UPDATE work_items SET status = '{in_progress}', updated_at = now(),
                field_xids = work_items.field_xids || jsonb_build_object('status', pg_current_xact_id()::text),
                field_writers = work_items.field_writers || jsonb_build_object('status', CAST(:writer AS text))
            WHERE work_items.tenant_id = :tenant_id
              AND work_items.id IN (SELECT items.id FROM items WHERE items.status = '{assigned}')
              AND work_items.status = '{assigned}'
            RETURNING work_items.id
        ), history AS (
            INSERT INTO work_item_history
                (tenant_id, work_item_id, field, value, result, writer, user_id, origin, resolution, xid)
            SELECT CAST(:tenant_id AS uuid), moved.id, 'status', '"{in_progress}"'::jsonb, '"{in_progress}"'::jsonb,
                   CAST(:writer AS text), CAST(:user_id AS uuid), '{Origin.SERVER.value}', '{Resolution.APPLIED.value}',
                   pg_current_xact_id()::text::bigint
            FROM moved
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


def link_visit_ctes(new: Any) -> list[Any]:
    """link_visit() as CTEs of the statement that inserts the visit (`new`: a CTE returning the visit's id,
    tenant_id, user_id and poi_id), so that a check-in is one round trip fewer: the same open items, links, move
    to in progress (stamped with the writer bound as `:writer`, kept in the history) and feed rows, over the same
    snapshot the separate statement saw (it reads nothing the visit's insert writes). No visit inserted, no rows."""
    assigned, in_progress = wire.WorkItemStatus.ASSIGNED.value, wire.WorkItemStatus.IN_PROGRESS.value
    items = (
        select(WorkItem.id, WorkItem.status)
        .join(Campaign, (Campaign.tenant_id == WorkItem.tenant_id) & (Campaign.id == WorkItem.campaign_id))
        .where(
            WorkItem.tenant_id == new.c.tenant_id,
            WorkItem.assignee_id == new.c.user_id,
            WorkItem.poi_id == new.c.poi_id,
            WorkItem.status.in_([literal_column(f"'{status}'") for status in OPEN_STATUSES]),
        )
        .cte("link_items")
    )
    # The writer as a column of its own CTE: the UPDATE below then holds no bound value (SQLAlchemy 2.0 loses the
    # bound values of an UPDATE nested in a CTE, see _link_visit()).
    params = select(cast(bindparam("writer", type_=String), String).label("writer")).cte("link_params")
    writer = select(params.c.writer).scalar_subquery()
    with_visit = items.join(new, true())
    linked = (
        insert(typing_cast(Table, WorkItemVisit.__table__))
        .from_select(
            ["work_item_id", "visit_id", "tenant_id"],
            select(items.c.id, new.c.id, new.c.tenant_id).select_from(with_visit),
        )
        .on_conflict_do_nothing()
        .cte("link_rows")
    )
    work_items = typing_cast(Table, WorkItem.__table__)
    moved = (
        update(work_items)
        .where(
            work_items.c.tenant_id == select(new.c.tenant_id).scalar_subquery(),
            work_items.c.id.in_(select(items.c.id).where(items.c.status == literal_column(f"'{assigned}'"))),
            work_items.c.status == literal_column(f"'{assigned}'"),
        )
        .values(
            status=literal_column(f"'{in_progress}'"),
            updated_at=func.now(),
            field_xids=work_items.c.field_xids.op("||")(
                func.jsonb_build_object(literal_column("'status'"), text("pg_current_xact_id()::text"))
            ),
            field_writers=work_items.c.field_writers.op("||")(
                func.jsonb_build_object(literal_column("'status'"), writer)
            ),
        )
        .returning(work_items.c.id)
        .cte("link_moved")
    )
    history = (
        insert(WorkItemEdit)
        .from_select(
            [
                "tenant_id",
                "work_item_id",
                "field",
                "value",
                "result",
                "writer",
                "user_id",
                "origin",
                "resolution",
                "xid",
            ],
            select(
                new.c.tenant_id,
                moved.c.id,
                literal_column("'status'"),
                literal_column(f"'\"{in_progress}\"'::jsonb"),
                literal_column(f"'\"{in_progress}\"'::jsonb"),
                writer,
                new.c.user_id,
                literal_column(f"'{Origin.SERVER.value}'"),
                literal_column(f"'{Resolution.APPLIED.value}'"),
                text("pg_current_xact_id()::text::bigint"),
            ).select_from(moved.join(new, true())),
        )
        .cte("link_history")
    )
    feed = (
        insert(sync_changes)
        .from_select(
            ["user_id", "collection", "record_id", "tenant_id", "op"],
            select(
                new.c.user_id,
                literal_column(f"'{WORK_ITEMS}'"),
                items.c.id,
                new.c.tenant_id,
                literal_column("'upsert'"),
            ).select_from(with_visit),
        )
        .on_conflict_do_update(
            index_elements=["user_id", "collection", "record_id"],
            set_={"op": literal_column("excluded.op"), "xid": text("pg_current_xact_id()"), "changed_at": func.now()},
        )
        .cte("link_feed")
    )
    return [items, params, linked, moved, history, feed]


async def expire_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Close, as expired, the open work items of campaigns whose window has ended. Safe to run anywhere, often."""
    moment = now or datetime.now(UTC)
    expired = (
        await session.execute(
            update(WorkItem)
            .prefix_with("/* all-tenants: the scheduler's expiry sweeps every tenant's ended campaigns */")
            .where(
                WorkItem.status.in_(OPEN_STATUSES),
                WorkItem.campaign_id.in_(select(Campaign.id).where(Campaign.ends_at <= moment)),
            )
            .values(status=wire.WorkItemStatus.EXPIRED.value, **_stamp(["status"], SERVER), updated_at=func.now())
            .returning(WorkItem.id, WorkItem.tenant_id, WorkItem.assignee_id, WorkItem.poi_id)
        )
    ).all()
    if expired:
        await session.execute(
            insert(WorkItemEdit).values(xid=text("pg_current_xact_id()::text::bigint")),
            [
                {
                    "tenant_id": row.tenant_id,
                    "work_item_id": row.id,
                    "field": "status",
                    "value": "expired",
                    "result": "expired",
                    "writer": SERVER,
                    "user_id": None,
                    "origin": Origin.SERVER.value,
                    "resolution": Resolution.APPLIED.value,
                }
                for row in expired
            ],
        )
    by_tenant: dict[UUID, list[Change]] = {}
    for row in expired:
        by_tenant.setdefault(row.tenant_id, []).append(Change(row.assignee_id, WORK_ITEMS, row.id))
    for tenant_id, changes in by_tenant.items():
        await record_changes(session, tenant_id, changes)
        await bump_merchants(session, tenant_id, [row.poi_id for row in expired if row.tenant_id == tenant_id])
        await notify_users(session, tenant_id, {c.user_id for c in changes}, reason="changed", collection=WORK_ITEMS)
    return len(expired)


async def history(
    session: AsyncSession, principal: Principal, work_item_id: UUID, *, limit: int, cursor: str | None
) -> wire.HistoryPage:
    """Every value set on the work item, oldest first, for whoever may see the item."""
    await get_work_item(session, principal, work_item_id)
    statement = select(WorkItemEdit).where(
        WorkItemEdit.work_item_id == work_item_id, WorkItemEdit.tenant_id == principal.tenant_id
    )
    if cursor:
        (after,) = decode_cursor(cursor, tuple[int])
        statement = statement.where(WorkItemEdit.id > after)
    rows = list(await session.scalars(statement.order_by(WorkItemEdit.id).limit(limit + 1)))
    page = rows[:limit]
    return wire.HistoryPage(
        items=[
            wire.HistoryEntry(
                id=r.id,
                at=r.at,
                field=r.field,
                value=r.value,
                result=r.result,
                writer=r.writer,
                user_id=r.user_id,
                origin=Origin(r.origin),
                resolution=Resolution(r.resolution),
            )
            for r in page
        ],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


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
