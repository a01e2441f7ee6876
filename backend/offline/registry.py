"""The registry the sync engine runs on, filled by the domains.

Every domain with something on the phone has a `sync.py` whose `register(registry)` adds its collections (what a
phone mirrors, in which wire shape), its mutations (the commands a phone may queue, calling the very service
functions the online routes call) and its WatermelonDB table (how a record becomes a row and rows become those
commands). `backend/app.py` lists the domains; nothing here or in `sync/` knows them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import DomainError
from mobile_contract.sync import Mutation
from sync.registry import CollectionSpec, Fetch, Refusal, Registry

# Names one queued WatermelonDB edit (the device, the push's last_pulled_at, the row): see watermelon.py.
EditKey = Callable[[dict[str, Any]], bytes]
# created rows, updated rows, the edit key -> the business commands they stand for, in order
RowsToMutations = Callable[[list[dict[str, Any]], list[dict[str, Any]], EditKey], list[Mutation]]
# records by id whatever the caller's scope (of the caller's tenant): rows sent marked gone
FetchGone = Callable[[AsyncSession, Principal, list[UUID]], Awaitable[dict[UUID, Any]]]


@dataclass(frozen=True, slots=True)
class WatermelonTable:
    """A domain's table in the WatermelonDB app (schema: tests/watermelon/driver.mjs)."""

    name: str  # the table, named as its sync collection
    row: Callable[[Any], dict[str, Any]]  # a record in its wire shape -> the app's row
    mutations: RowsToMutations
    push_order: int  # tables are turned into commands in this order: merchants, then visits, then work items
    # Records leaving the phone's scope are sent marked gone (`removed_at`) before they are deleted, because
    # WatermelonDB deletes before it pushes: for tables the phone edits.
    fetch_gone: FetchGone | None = None


@dataclass
class SyncRegistry(Registry[Principal]):
    shapes: dict[str, type[Any]] = field(default_factory=dict)  # collection -> wire shape of its records
    watermelon: dict[str, WatermelonTable] = field(default_factory=dict)

    def collection_of(self, name: str, shape: type[Any], fetch: Fetch) -> None:
        """A collection a phone mirrors, whose records are sent in `shape` (the online endpoints' shape)."""
        self.collection(CollectionSpec(name, fetch))
        self.shapes[name] = shape

    def table(self, spec: WatermelonTable) -> None:
        if spec.name not in self.collections:
            raise ValueError(f"WatermelonDB table {spec.name} has no collection of that name")
        if spec.name in self.watermelon:
            raise ValueError(f"WatermelonDB table {spec.name} registered twice")
        self.watermelon[spec.name] = spec

    def tables_in_push_order(self) -> list[WatermelonTable]:
        return sorted(self.watermelon.values(), key=lambda table: table.push_order)


class SyncDomain(Protocol):
    """A domain's sync.py."""

    def register(self, registry: SyncRegistry) -> None: ...


def refusal(exc: BaseException) -> Refusal | None:
    """Business refusals (stored as `rejected`, the queue goes on) are the domains' DomainErrors."""
    if isinstance(exc, DomainError):
        return Refusal(code=exc.code.value, detail=exc.detail)
    return None


def build_registry(domains: Iterable[SyncDomain]) -> SyncRegistry:
    registry = SyncRegistry(refusal=refusal)
    for domain in domains:
        domain.register(registry)
    return registry
