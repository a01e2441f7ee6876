"""The Litestar application: wiring of settings, database, errors and every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Controller, Litestar, get
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from backend.auth.routes import AuthController
from backend.auth.tokens import TokenCodec
from backend.bodies import BoundedRequest
from backend.db.engine import Database
from backend.deps import DEPENDENCIES
from backend.errors import EXCEPTION_HANDLERS
from backend.jobs import sync as jobs_sync
from backend.jobs import tasks as jobs_tasks
from backend.jobs.routes import JobController, TechnicianController
from backend.media.routes import PhotoController
from backend.offline import tasks as offline_tasks
from backend.offline.registry import build_registry
from backend.offline.routes import sync_controller
from backend.pois import sync as pois_sync
from backend.pois.routes import PoiController
from backend.push import tasks as push_tasks
from backend.push.routes import DeviceController
from backend.queue.scheduler import Periodic
from backend.queue.worker import HandlerProvider
from backend.settings import Settings, get_settings
from backend.tasks import sync as tasks_sync
from backend.tasks import tasks as tasks_tasks
from backend.tasks.routes import CampaignController, WorkItemController
from backend.tenants.routes import TenantController
from backend.visits import sync as visits_sync
from backend.visits.routes import VisitController
from sync.cursor import CursorCodec

# The domains whose records live on phones: each registers its collections, mutations and WatermelonDB table.
SYNC_REGISTRY = build_registry([pois_sync, visits_sync, tasks_sync, jobs_sync])

# The domains' periodic work, run by every `groundwork worker` at most once per period (backend/queue/scheduler.py).
PERIODIC: list[Periodic] = [*offline_tasks.PERIODIC, *tasks_tasks.PERIODIC]
# The domains' queue handlers (push delivery, ...), run by every `groundwork worker`.
QUEUE_HANDLERS: list[HandlerProvider] = [push_tasks.handlers, jobs_tasks.handlers]

ROUTES: list[type[Controller]] = [
    AuthController,
    PoiController,
    VisitController,
    CampaignController,
    WorkItemController,
    JobController,
    TechnicianController,
    PhotoController,
    sync_controller(SYNC_REGISTRY),
    TenantController,
    DeviceController,
]


@get("/healthz", operation_id="health", tags=["ops"], summary="Liveness", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.database = await Database.connect(settings)
        try:
            yield
        finally:
            await app.state.database.close()

    return Litestar(
        route_handlers=[*ROUTES, healthz],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=BoundedRequest,
        lifespan=[lifespan],
        state=_initial_state(settings),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        # A first sync is megabytes of JSON that gzip shrinks ten-fold (bench/); small answers are sent as they
        # are, and the hottest route is left out so it pays nothing for the check.
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=16 * 1024, gzip_compress_level=5, exclude=["/v1/pois/nearby", "/healthz"]
        ),
        debug=False,
    )


def _initial_state(settings: Settings) -> Any:
    from litestar.datastructures import State

    return State(
        {
            "settings": settings,
            "tokens": TokenCodec(settings),
            "cursors": CursorCodec(settings.jwt_secret.encode()),
        }
    )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Groundwork mobile API",
        version="1.0.0",
        description="The contract the phone apps are built against. Errors are RFC 9457 problems with a `code`.",
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
        ),
        security=[{"bearer": []}],
        use_handler_docstrings=False,
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the code, without touching a database."""
    app = Litestar(route_handlers=ROUTES, dependencies=DEPENDENCIES, openapi_config=openapi_config())
    return app.openapi_schema.to_schema()
