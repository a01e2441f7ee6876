"""The Litestar application: wiring of settings, database, errors and every domain's routes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import openapi_ui_bundles
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from backend.admin.routes import PermissionController, SetPasswordController, TeamController, UserController
from backend.assignment.routes import AssignmentController, TerritoryController
from backend.auth.passwords import Passwords
from backend.auth.routes import AuthController
from backend.auth.throttle import KnownLocks
from backend.auth.tokens import TokenCodec
from backend.auth.userstate import UserState, UserStates, hot_loader
from backend.bodies import BoundedRequest
from backend.console.routes import CONSOLE_ROUTES
from backend.db.engine import Database
from backend.db.shares import RequestScope
from backend.deps import DEPENDENCIES
from backend.errors import EXCEPTION_HANDLERS
from backend.events import tasks as events_tasks
from backend.events.routes import EventController
from backend.health import ROUTES as HEALTH_ROUTES
from backend.intake import tasks as intake_tasks
from backend.intake.routes import IntakeController
from backend.jobs import sync as jobs_sync
from backend.jobs import tasks as jobs_tasks
from backend.jobs.codelocks import KnownCodeLocks
from backend.jobs.routes import JobController, JobTypeController, TechnicianController
from backend.leads import pool_sync as leads_sync
from backend.leads import pool_tasks as leads_tasks
from backend.leads.routes import LeadController
from backend.limits import UserConcurrency
from backend.media.routes import PhotoController
from backend.observability import configure_logging, install, metrics, observe_pool_wait
from backend.offline import tasks as offline_tasks
from backend.offline.fastpull import FastPull
from backend.offline.registry import build_registry
from backend.offline.routes import PullPages, sync_controller
from backend.openapi import DecodedStructSchema, finish_openapi
from backend.pois import sync as pois_sync
from backend.pois.routes import PoiController
from backend.push import tasks as push_tasks
from backend.push.routes import DeviceController
from backend.queue.scheduler import Periodic
from backend.queue.worker import HandlerProvider
from backend.settings import Settings, get_settings
from backend.tarpit import Holds, Tarpit
from backend.tasks import sync as tasks_sync
from backend.tasks import tasks as tasks_tasks
from backend.tasks.routes import CampaignController, WorkItemController
from backend.tenants.routes import TenantController
from backend.tracking import tasks as tracking_tasks
from backend.tracking.live_routes import LiveController
from backend.tracking.routes import TrackingController, TrackingDayController
from backend.tracking.stream import LiveHub
from backend.visits import sync as visits_sync
from backend.visits import tasks as visits_tasks
from backend.visits.routes import VisitController
from sync.cursor import CursorCodec

# The domains whose records live on phones: each registers its collections, mutations and WatermelonDB table.
SYNC_REGISTRY = build_registry([pois_sync, leads_sync, visits_sync, tasks_sync, jobs_sync])
# The pull's pages: the route's work, and its fast path's (FastPull, in front of the router).
PULL_PAGES = PullPages(SYNC_REGISTRY)

# The domains' periodic work, run by every `groundwork worker` at most once per period (backend/queue/scheduler.py).
PERIODIC: list[Periodic] = [
    *offline_tasks.PERIODIC,
    *tasks_tasks.PERIODIC,
    *tracking_tasks.PERIODIC,
    *leads_tasks.PERIODIC,
]
# The domains' queue handlers (push delivery, ...), run by every `groundwork worker`.
QUEUE_HANDLERS: list[HandlerProvider] = [
    push_tasks.handlers,
    jobs_tasks.handlers,
    intake_tasks.handlers,
    events_tasks.handlers,
    visits_tasks.handlers,
    tracking_tasks.handlers,
]

ROUTES: list[ControllerRouterHandler] = [
    AuthController,
    PoiController,
    IntakeController,
    LeadController,
    VisitController,
    CampaignController,
    WorkItemController,
    JobController,
    TechnicianController,
    JobTypeController,
    UserController,
    TeamController,
    SetPasswordController,
    PermissionController,
    PhotoController,
    sync_controller(SYNC_REGISTRY, PULL_PAGES),
    TenantController,
    DeviceController,
    TrackingController,
    EventController,
    LiveController,
    TrackingDayController,
    AssignmentController,
    TerritoryController,
    *HEALTH_ROUTES,
]

# The API docs pages load their scripts from the app itself (openapi_ui_bundles ships Swagger UI 5 and ReDoc):
# behind a firewall, pages that load them from CDNs render blank.
DOCS_ASSETS = "/schema/assets"
DOCS_ROUTES: list[ControllerRouterHandler] = [
    create_static_files_router(
        path=f"{DOCS_ASSETS}/swagger", directories=[openapi_ui_bundles.swagger_ui.static_path], include_in_schema=False
    ),
    create_static_files_router(
        path=f"{DOCS_ASSETS}/redoc", directories=[openapi_ui_bundles.redoc.static_path], include_in_schema=False
    ),
]
_NO_FAVICON = "<link rel='icon' href='data:,'>"  # Litestar's default favicon is fetched from a CDN


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.database = await Database.connect(settings, observe_wait=observe_pool_wait)
        app.state.live_hub = LiveHub(settings.database_url)
        if settings.gc_freeze:
            freeze_start_up_objects()
        try:
            yield
        finally:
            await app.state.live_hub.close()
            app.state.passwords.close()
            await app.state.database.close()

    app = Litestar(
        route_handlers=[*ROUTES, metrics, *DOCS_ROUTES, CONSOLE_ROUTES],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=BoundedRequest,
        plugins=[DecodedStructSchema()],
        lifespan=[lifespan],
        state=_initial_state(settings),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        # A first sync is megabytes of JSON that gzip shrinks ten-fold (bench/); small answers are sent as they
        # are, and the hottest route is left out so it pays nothing for the check.
        compression_config=CompressionConfig(
            backend="gzip",
            minimum_size=16 * 1024,
            gzip_compress_level=5,
            exclude=["/v1/pois/nearby", "/healthz", "/v1/tracking/live/stream"],
        ),
        debug=False,
        # Our own log handler (observability.py) writes every line, with its request id; Litestar's would add a
        # second, unformatted one.
        logging_config=None,
    )
    # Built now rather than at the first /schema request, so the pass below runs before anyone reads it.
    finish_openapi(app.openapi_schema)
    # A phone's poll of the pull is answered in front of the router (backend/offline/fastpull.py); anything else
    # goes through. install() then wraps both in the request id and metrics layer.
    app.asgi_handler = FastPull(app.asgi_handler, PULL_PAGES)
    # Abuse refusals (locked, too many at once) wait there before they are answered, holding no connection.
    app.asgi_handler = Tarpit(app.asgi_handler, app.state.holds)
    # Each request's state is bound to its task: the ORM pool reads the tenant's share from it (db/shares.py).
    app.asgi_handler = RequestScope(app.asgi_handler)
    return install(app)


def freeze_start_up_objects() -> None:
    """Keep the cyclic GC's full collections off the objects every process builds at start-up (routes, OpenAPI,
    SQLAlchemy mappers, ~150,000 objects): a full collection walked them all, 60-250 ms during which the event
    loop served nobody. The logins bench found it: a storm of held refusals promotes enough objects to trigger
    full collections, and each one stalled every tenant's requests (tenant B's nearby p99 350-440 ms, one pause per
    run). Frozen, a full collection walks only what requests made since. Garbage made at start-up is collected
    first; frozen objects are still freed by reference counting."""
    gc.collect()
    gc.freeze()


def _initial_state(settings: Settings) -> Any:
    from litestar.datastructures import State

    state = State(
        {
            "settings": settings,
            "tokens": TokenCodec(settings),
            "cursors": CursorCodec(settings.jwt_secret.encode()),
            "limits": UserConcurrency(settings.user_concurrency, settings.retry_after_s),
            "passwords": Passwords.from_settings(settings),
            "login_locks": KnownLocks(),
            "holds": Holds(settings.refusal_delay_s),
            "code_locks": KnownCodeLocks(),
        }
    )

    async def load_user_state(user_id: UUID, tenant_id: UUID) -> UserState:
        # The database joins the state in the lifespan, after this is built: look it up at call time.
        return await hot_loader(state.database.hot.fetch)(user_id, tenant_id)

    state.user_states = UserStates(load_user_state, ttl_s=settings.user_state_ttl_s)
    return state


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
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{DOCS_ASSETS}/swagger/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger/swagger-ui-standalone-preset.js",
                favicon=_NO_FAVICON,
            ),
            RedocRenderPlugin(
                js_url=f"{DOCS_ASSETS}/redoc/redoc.standalone.js", google_fonts=False, favicon=_NO_FAVICON
            ),
        ],
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the code, without touching a database."""
    app = Litestar(
        route_handlers=ROUTES,
        dependencies=DEPENDENCIES,
        openapi_config=openapi_config(),
        plugins=[DecodedStructSchema()],
        logging_config=None,
    )
    return finish_openapi(app.openapi_schema).to_schema()
