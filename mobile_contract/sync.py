"""Offline sync: pull the changes of everything in the caller's scope, push queued business commands."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, AwareDatetime, Id64, JsonObject, Request, Response
from mobile_contract.errors import ErrorCode

Cursor = Annotated[
    str, msgspec.Meta(min_length=1, max_length=512, pattern=SINGLE_LINE, description="opaque; from the last pull")
]


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
    """One queued business command, as the engine applies it: every field bounded (ids within int64, a sane
    `created_at`, args NUL-free, finite and at most 32 deep, see mobile_contract.base)."""

    id: Annotated[Id64, msgspec.Meta(description="increases per client; the idempotency key")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SINGLE_LINE)]
    args: JsonObject
    created_at: AwareDatetime  # when the phone queued it, by the phone's clock


class QueuedMutation(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A mutation as the phone sent it, checked one by one against `Mutation` (`screen`): a value the contract
    refuses (U+0000, an id past int64, a date at the calendar's edge...) refuses that mutation alone, as a
    `rejected` result, and the mutations behind it still apply. A whole-push 422 would wedge the phone's queue."""

    __checked_as__: ClassVar[type[Request]] = Mutation

    id: Annotated[int, msgspec.Meta(description="increases per client, 1..2^63-1; the idempotency key")]
    name: Annotated[str, msgspec.Meta(description="1..64 characters")]
    args: dict[str, Any]
    created_at: Annotated[datetime, msgspec.Meta(description="RFC 3339 with an offset, between 1970 and 2200")]


class PushRequest(Request):
    client_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=128, pattern=SINGLE_LINE, description="stable per app install")
    ]
    mutations: Annotated[list[QueuedMutation], msgspec.Meta(max_length=1_000)]
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


def screen(queued: QueuedMutation) -> Mutation | MutationResult:
    """The mutation, bounded; or its refusal, which is answered as that mutation's result."""
    try:
        return msgspec.convert(
            {"id": queued.id, "name": queued.name, "args": queued.args, "created_at": queued.created_at}, Mutation
        )
    except msgspec.ValidationError as exc:
        return MutationResult(
            id=queued.id, status=MutationStatus.REJECTED, code=ErrorCode.VALIDATION_FAILED.value, detail=str(exc)
        )
