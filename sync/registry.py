"""What the engine syncs and applies, filled in by the application: collections and mutations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class MutationSpec(Generic[ActorT]):
    name: str
    args_type: type[Any]
    handler: Callable[[AsyncSession, ActorT, Any, MutationMeta], Awaitable[Any]]
    # The records a mutation is about: bumped for the pushing user when it is refused, so their next pull
    # brings back the server's truth over whatever the phone shows.
    touches: Callable[[Any], list[tuple[str, UUID]]] = lambda args: []


def ids_in(args: Any, collection: str, *keys: str) -> list[tuple[str, UUID]]:
    """The records of `collection` that a mutation's args name under `keys`, read leniently (args that did not
    validate still name what the phone holds): for `MutationSpec.touches`."""
    found = []
    for key in keys:
        value = args.get(key) if isinstance(args, dict) else getattr(args, key, None)
        if isinstance(value, UUID):
            found.append((collection, value))
        elif isinstance(value, str):
            try:
                found.append((collection, UUID(value)))
            except ValueError:
                continue
    return found


@dataclass
class Registry(Generic[ActorT]):
    # Which exceptions are business refusals (stored as `rejected`), and their code; anything else is a bug.
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
