"""Offline sync: pull the changes of everything in the caller's scope, push queued business commands."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from mobile_contract.base import AwareDatetime, Request, Response

Cursor = Annotated[str, msgspec.Meta(min_length=1, max_length=512, description="opaque; from the last pull")]


class PullRequest(Request):
    cursor: Cursor | None = None  # none: a first sync, everything in scope
    limit: Annotated[int, msgspec.Meta(ge=1, le=5_000)] = 1_000


def changes_shape(shapes: Mapping[str, type[Any]]) -> type[msgspec.Struct]:
    """The pull's `changes`: per collection, the current state of every record that changed, in the online
    endpoints' shapes (`upserted`), and the ids of those that left the caller's scope (`removed`). Built from the
    collections the server registers (backend/<domain>/sync.py), so adding a synced domain edits nothing here."""
    fields = []
    for name, shape in shapes.items():
        title = "".join(part.capitalize() for part in name.removesuffix("s").split("_"))  # work_items: WorkItem
        delta = msgspec.defstruct(
            f"{title}Changes",
            [("upserted", list[shape]), ("removed", list[UUID])],  # type: ignore[valid-type]
            bases=(Response,),
            module=__name__,
            kw_only=True,
        )
        fields.append((name, delta))
    return msgspec.defstruct("Changes", fields, bases=(Response,), module=__name__, kw_only=True)


def pull_response_shape(changes: type[msgspec.Struct]) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        "PullResponse",
        [
            ("changes", changes),
            # send it with the next pull (and with pushes, as the base of conflict checks)
            ("cursor", str),
            # pull again at once with `cursor`: a large first sync comes in pages
            ("has_more", bool),
        ],
        bases=(Response,),
        module=__name__,
        kw_only=True,
    )


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


class MutationResult(Response):
    id: int
    status: MutationStatus
    code: str | None = None
    detail: str | None = None
    result: dict[str, Any] | None = None
    original_status: MutationStatus | None = None  # for a duplicate: what happened the first time
    applied_at: datetime | None = None


class PushResponse(Response):
    results: list[MutationResult]
