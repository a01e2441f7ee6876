"""What the engine syncs and applies, filled in by the application: collections and mutations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

ActorT = TypeVar("ActorT")

# fetch(session, actor, record ids) -> the records still in the actor's scope, by id, in wire shape.
# Ids missing from the answer reach the phone as removed.
Fetch = Callable[[AsyncSession, Any, list[UUID]], Awaitable[dict[UUID, Any]]]


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    name: str
    fetch: Fetch


@dataclass(frozen=True, slots=True)
class MutationMeta:
    client_id: str
    mutation_id: int
    created_at: datetime  # the phone's clock, when it queued the mutation
    received_at: datetime  # ours, when the push arrived
    base_xid: int | None  # the snapshot of the phone's last pull: what it had seen when it made the change
    # What the application hands its handlers with every mutation (its settings, say): passed in by whoever calls
    # push or rerun_failed, opaque to the engine.
    context: Any = None


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    detail: str
    # True: what the handler wrote before it refused stays (released, not rolled back), e.g. a wrong customer
    # code still counts as an attempt. The mutation is still stored as `rejected`.
    keep_effects: bool = False


# touches(raw args as the phone sent them) -> the records the mutation is about. Raw, not validated: a refused
# mutation whose args did not validate still bumps what it names, so the phone's next pull corrects its copy.
Touches = Callable[[Mapping[str, Any]], list[tuple[str, UUID]]]


def lenient_uuid(args: Mapping[str, Any], key: str) -> UUID | None:
    """`args[key]` as a UUID if it is one; None for anything else (missing, not a string, not an id)."""
    value = args.get(key)
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def touching(*pairs: tuple[str, str]) -> Touches:
    """touches() for mutations naming their records in plain args: touching(("visits", "id"), ...) bumps
    `args["id"]` of `visits` when it is a valid id, and ignores it otherwise."""

    def touches(args: Mapping[str, Any]) -> list[tuple[str, UUID]]:
        found = []
        for collection, key in pairs:
            record_id = lenient_uuid(args, key)
            if record_id is not None:
                found.append((collection, record_id))
        return found

    return touches


def _touches_nothing(args: Mapping[str, Any]) -> list[tuple[str, UUID]]:
    return []


@dataclass(frozen=True, slots=True)
class MutationSpec(Generic[ActorT]):
    name: str
    args_type: type[Any]
    # Writes only through the session it is given: the engine may run it again after rolling back (a push runs
    # without savepoints until a mutation raises), and only the run that commits counts.
    handler: Callable[[AsyncSession, ActorT, Any, MutationMeta], Awaitable[Any]]
    # The records a mutation is about, from its RAW args (see Touches): bumped for the pushing user when it is
    # refused or fails, so their next pull brings back the server's truth over whatever the phone shows.
    touches: Touches = _touches_nothing


@dataclass
class Registry(Generic[ActorT]):
    # Which exceptions are business refusals (stored as `rejected`), and their code; anything else is a bug
    # (stored as `failed`, re-runnable by an operator) or an outage (the push fails and is retried).
    refusal: Callable[[BaseException], Refusal | None]
    collections: dict[str, CollectionSpec] = field(default_factory=dict)
    mutations: dict[str, MutationSpec[ActorT]] = field(default_factory=dict)

    def collection(self, spec: CollectionSpec) -> None:
        if spec.name in self.collections:
            raise ValueError(f"collection {spec.name} registered twice")
        self.collections[spec.name] = spec

    def mutation(self, spec: MutationSpec[ActorT]) -> None:
        if spec.name in self.mutations:
            raise ValueError(f"mutation {spec.name} registered twice")
        self.mutations[spec.name] = spec
