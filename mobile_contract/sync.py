"""Offline sync: pull the changes of everything in the caller's scope, push queued business commands."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from mobile_contract.base import AwareDatetime, Request, Response
from mobile_contract.jobs import Job
from mobile_contract.pois import PoiDetail
from mobile_contract.tasks import WorkItem
from mobile_contract.visits import Visit

Cursor = Annotated[str, msgspec.Meta(min_length=1, max_length=512, description="opaque; from the last pull")]


class PullRequest(Request):
    cursor: Cursor | None = None  # none: a first sync, everything in scope
    limit: Annotated[int, msgspec.Meta(ge=1, le=5_000)] = 1_000


class PoiChanges(Response):
    upserted: list[PoiDetail]
    removed: list[UUID]


class WorkItemChanges(Response):
    upserted: list[WorkItem]
    removed: list[UUID]


class VisitChanges(Response):
    upserted: list[Visit]
    removed: list[UUID]


class JobChanges(Response):
    upserted: list[Job]
    removed: list[UUID]


class Changes(Response):
    """Per collection, the current state of every record that changed, in the online endpoints' shapes."""

    pois: PoiChanges
    work_items: WorkItemChanges
    visits: VisitChanges
    jobs: JobChanges


class PullResponse(Response):
    changes: Changes
    cursor: str  # send it with the next pull (and with pushes, as the base of conflict checks)
    has_more: bool  # pull again at once with `cursor`: a large first sync comes in pages


class Mutation(Request):
    id: Annotated[int, msgspec.Meta(ge=1, description="increases per client; the idempotency key")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    args: dict[str, Any]
    created_at: AwareDatetime  # when the phone queued it, by the phone's clock


class PushRequest(Request):
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128, description="stable per app install")]
    mutations: Annotated[list[Mutation], msgspec.Meta(max_length=1_000)]
    cursor: Cursor | None = None  # the cursor of the phone's last pull: what it had seen when it edited


class MutationStatus(enum.StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"  # a permanent business refusal; stored, so the queue moves on
    DUPLICATE = "duplicate"  # already applied earlier: the stored outcome, nothing changed now
    # The fault is ours (a bug): the server kept the mutation with its args and will re-run it once the bug is
    # fixed (an operator runs `groundwork sync rerun`); its records are bumped, so a later pull brings the
    # outcome. Do NOT resend it: drop it from the queue like any other result. `code` is `internal_error`.
    FAILED = "failed"


class MutationResult(Response):
    id: int
    status: MutationStatus
    code: str | None = None
    detail: str | None = None
    result: dict[str, Any] | None = None
    # for a duplicate: what happened the first time (or, for a `failed` one since re-run, what the re-run did)
    original_status: MutationStatus | None = None
    applied_at: datetime | None = None


class PushResponse(Response):
    results: list[MutationResult]
